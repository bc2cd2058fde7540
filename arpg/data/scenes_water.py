"""Painters of the water and evening classes of the scenes data set: sea, sunset clouds, lake with reflections.

Each painter maps a :class:`~arpg.data.scenes_canvas.Canvas` to a (B, H, W, 3) float32 image
in [0, 1]; see :mod:`arpg.data.scenes_canvas` for the coordinates and the seeded values.
"""

from __future__ import annotations

import numpy as np

from .scenes_canvas import Canvas, clouds, mix, paint, rgb, smooth, treeline

WHITE = rgb(1.0, 1.0, 1.0)


def _waves(c: Canvas, horizon: np.ndarray, what: int, density: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Waves on a flat sea seen in perspective: (pattern (B, H, W) in [-1, 1], fading out towards the
    horizon where they would be finer than a pixel, depth below the horizon (B, H, 1))."""
    z = np.maximum(c.y - horizon, np.float32(0.0))
    dist = np.float32(1.0) / (z + np.float32(0.04))  # distance on the water grows towards the horizon
    along = c.x * dist  # position across, on the water
    w = np.sin(np.float32(density) * dist * np.float32(6.0) + np.float32(2.5) * c.noise1(what, 0.9, 2, x=along))
    return w * smooth((z - np.float32(0.01)) / np.float32(0.1)), z


def sea(c: Canvas) -> np.ndarray:
    """The open sea under a bright sky: a flat horizon, waves with white crests, the sun's glitter."""
    horizon = c.rand(1, 0.4, 0.56)
    img = c.fill(c.vgrad(c.tint(rgb(0.16, 0.42, 0.85), 2, 0.06), c.tint(rgb(0.75, 0.88, 0.98), 3, 0.04), 0.0, horizon))
    clouds(c, img, 4, horizon * c.rand(5, 0.35, 0.7), 0.07, 0.35, WHITE, rgb(0.78, 0.82, 0.9))
    sun_x = np.floor(c.x / 1.5) * 1.5 + c.rand(6, 0.3, 1.2)  # one sun every 1.5 units
    sun_y = horizon * c.rand(7, 0.2, 0.6)
    paint(img, c.disc(sun_x, sun_y, np.float32(0.035)), rgb(1.0, 0.98, 0.85))
    w, z = _waves(c, horizon, 8, c.rand(9, 0.7, 1.0))
    water = c.vgrad(
        c.tint(rgb(0.3, 0.55, 0.75), 10, 0.05),
        c.tint(rgb(0.02, 0.2, 0.42), 11, 0.05),
        horizon,
        horizon + np.float32(0.45),
    )
    sea_cover = c.below(horizon)
    paint(img, sea_cover, water * (np.float32(1.0) + np.float32(0.15) * w)[..., None])
    spread = np.float32(0.02) + z * np.float32(0.4)
    glint = np.exp(-(((c.x - sun_x).astype(np.float32) / spread) ** 2)) * smooth(w * 2)
    caps = smooth((w - np.float32(0.8)) * 6) * smooth(c.noise1(12, 1.3, 2, x=c.x / (z + np.float32(0.04))) * 3)
    paint(img, sea_cover * np.clip(glint + caps * 0.7, 0.0, 1.0), rgb(0.96, 0.97, 1.0))
    return img


def sunset(c: Canvas) -> np.ndarray:
    """A setting sun in a purple-to-orange sky, streaks of clouds lit from below, a dark sea and islands."""
    horizon = c.rand(1, 0.62, 0.76)
    top, mid, low = (
        c.tint(rgb(0.2, 0.12, 0.38), 2, 0.06),
        c.tint(rgb(0.85, 0.32, 0.42), 3, 0.06),
        c.tint(rgb(1.0, 0.72, 0.32), 4, 0.05),
    )
    split = horizon * np.float32(0.5)
    sky = np.where((c.y < split)[..., None], c.vgrad(top, mid, 0.0, split), c.vgrad(mid, low, split, horizon))
    img = c.fill(sky)
    sun_x = np.floor(c.x / 1.5) * 1.5 + c.rand(5, 0.3, 1.2)
    sun_y = horizon - c.rand(6, -0.01, 0.08)
    d2 = (c.x - sun_x).astype(np.float32) ** 2 + (c.y - sun_y) ** 2
    paint(img, np.exp(-d2 / np.float32(0.02)) * np.float32(0.6), rgb(1.0, 0.85, 0.45))
    paint(img, c.disc(sun_x, sun_y, np.float32(0.06)), rgb(1.0, 0.95, 0.7))
    for i in range(3):
        y_mid = horizon * c.rand(10 + i, 0.2, 0.85)
        clouds(
            c, img, 20 + i, y_mid, 0.08, 0.5, c.tint(rgb(0.42, 0.2, 0.38), 30 + i, 0.06), rgb(1.0, 0.62, 0.42), freq=1.6
        )
    w, z = _waves(c, horizon, 40, 0.8)
    water = c.vgrad(rgb(0.45, 0.2, 0.3), rgb(0.08, 0.04, 0.12), horizon, horizon + np.float32(0.3))
    paint(img, c.below(horizon), water * (np.float32(1.0) + np.float32(0.2) * w)[..., None])
    spread = np.float32(0.03) + z * np.float32(0.3)
    glint = np.exp(-(((c.x - sun_x).astype(np.float32) / spread) ** 2)) * smooth(w * 1.5 + 0.3)
    paint(img, c.below(horizon) * glint, rgb(1.0, 0.75, 0.4))
    island = horizon + np.float32(0.005) - np.float32(0.09) * np.clip(c.noise1(41, 0.8, 3) - 0.2, 0.0, None)
    paint(img, c.below(island) * (1.0 - c.below(horizon + np.float32(0.006))), rgb(0.1, 0.04, 0.1))
    return img


def lake(c: Canvas) -> np.ndarray:
    """A calm lake mirroring blue mountains and a forested shore, with ripples on the water."""
    shore = c.rand(1, 0.5, 0.64)
    z = np.maximum(c.y - shore, np.float32(0.0))
    dist = np.float32(1.0) / (z + np.float32(0.03))
    ripple = np.float32(0.004) * np.sin(np.float32(1.5) * dist + np.float32(3.0) * c.noise1(2, 2.0, x=c.x * dist))
    y = np.where(c.y > shore, 2 * shore - c.y + ripple * smooth((z - 0.01) / np.float32(0.08)), c.y)  # mirrored
    img = c.fill(c.vgrad(c.tint(rgb(0.25, 0.5, 0.85), 3, 0.06), c.tint(rgb(0.8, 0.88, 0.95), 4, 0.04), 0.0, shore, y=y))
    clouds(c, img, 5, shore * c.rand(6, 0.2, 0.5), 0.06, 0.3, WHITE, rgb(0.8, 0.84, 0.9), y=y)
    peaks = shore - c.rand(7, 0.12, 0.22) * (np.float32(1.0) - np.abs(c.noise1(8, 1.3, 4))) ** 1.5
    rock = c.tint(rgb(0.42, 0.5, 0.66), 9, 0.05)
    paint(img, c.below(peaks, y), c.vgrad(rock, mix(rock, rgb(0.7, 0.78, 0.88), np.float32(0.5)), peaks, shore, y=y))
    green = c.tint(rgb(0.1, 0.3, 0.18), 12, 0.04)
    bank = shore - np.float32(0.015) - np.float32(0.02) * np.clip(c.noise1(11, 2.0, 2), 0.0, None)
    paint(img, c.below(bank, y), green * np.float32(0.85))
    trees = treeline(c, 10, bank + np.float32(0.004), 0.06, (0.02, 0.16))
    paint(img, c.below(trees, y), green)
    water = c.below(shore)
    paint(img, water * np.float32(0.3), c.tint(rgb(0.05, 0.2, 0.35), 13, 0.04))
    streaks = smooth((np.sin(np.float32(2.4) * dist + np.float32(2.0) * c.noise1(14, 1.0, x=c.x * dist)) - 0.9) * 8)
    paint(img, water * streaks * smooth((z - 0.01) / np.float32(0.1)) * np.float32(0.15), rgb(0.85, 0.92, 1.0))
    return img
