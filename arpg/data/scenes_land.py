"""Painters of the land classes of the scenes data set: mountains, desert dunes, forest, snowfield, flower meadow.

Each painter maps a :class:`~arpg.data.scenes_canvas.Canvas` to a (B, H, W, 3) float32 image
in [0, 1]; see :mod:`arpg.data.scenes_canvas` for the coordinates and the seeded values.
"""

from __future__ import annotations

import numpy as np

from .scenes_canvas import Canvas, clouds, lattice, mix, paint, rgb, smooth, treeline

WHITE = rgb(1.0, 1.0, 1.0)


def mountains(c: Canvas) -> np.ndarray:
    """Three ranges of jagged peaks fading into the haze, the far ones snow-capped, over a green valley."""
    img = c.fill(c.vgrad(c.tint(rgb(0.22, 0.42, 0.78), 1, 0.08), c.tint(rgb(0.78, 0.86, 0.94), 2, 0.05), 0.0, 0.75))
    clouds(c, img, 3, c.rand(4, 0.1, 0.2), 0.06, 0.2, rgb(0.98, 0.98, 1.0), rgb(0.75, 0.8, 0.88))
    haze = c.tint(rgb(0.72, 0.8, 0.9), 5, 0.04)
    layers = (
        (0.56, 0.44, 0.8, rgb(0.47, 0.53, 0.68), 0.45),
        (0.72, 0.3, 1.3, rgb(0.32, 0.38, 0.48), 0.35),
        (0.9, 0.16, 2.2, rgb(0.2, 0.34, 0.2), 0.1),
    )
    for i, (base, amp, freq, colour, misty) in enumerate(layers):

        def ridge(
            x: np.ndarray, i: int = i, base: float = base, amp: float = amp, freq: float = freq, octaves: int = 5
        ) -> np.ndarray:
            r = 1.0 - np.abs(c.noise1(10 + i, freq, octaves=octaves, gain=0.45, x=x))
            return np.float32(base) + c.rand(20 + i, -0.05, 0.05) - np.float32(amp) * r**2

        h = ridge(c.x)
        top = ridge(c.x, octaves=2)
        lit = np.clip(1.0 - 0.4 * c.slope(lambda x, f=ridge: f(x, octaves=3)), 0.6, 1.3)[..., None]  # sun: left
        col = c.tint(colour, 30 + i, 0.04)
        fade = smooth((c.y - h) / np.float32(0.2))  # the light on the faces fades into the haze below
        fade = np.maximum(fade, smooth((c.y - top) / np.float32(0.3)))
        body = mix(col * lit, mix(col, haze, np.float32(misty)), fade)
        paint(img, c.below(h), body)
        if i < 2:
            level = np.float32(base - amp * 0.72) + np.float32(0.015) * c.noise1(40 + i, 8.0, octaves=2)
            snow = np.clip(WHITE * (0.78 + 0.2 * lit), 0.0, 1.0)
            paint(img, c.below(h) * (1.0 - c.below(level)), snow)
    return img


def dunes(c: Canvas) -> np.ndarray:
    """Rolling sand dunes with sharp crests, one side in the sun and the other in shadow, under a hot pale sky."""
    img = c.fill(c.vgrad(c.tint(rgb(0.35, 0.6, 0.88), 1, 0.06), c.tint(rgb(0.98, 0.9, 0.72), 2, 0.04), 0.0, 0.6))
    sun_x = c.rand(3, 0.2, 0.8)
    sx = np.floor(c.x) + sun_x  # one sun per unit of x
    paint(img, c.disc(sx, c.rand(4, 0.12, 0.3), np.float32(0.045)), rgb(1.0, 0.98, 0.88))
    sand = c.tint(rgb(0.93, 0.62, 0.33), 5, 0.06)
    for i, (base, amp, freq) in enumerate(((0.5, 0.1, 1.1), (0.66, 0.14, 0.8), (0.86, 0.18, 0.55))):

        def dune(x: np.ndarray, i: int = i, base: float = base, amp: float = amp, freq: float = freq) -> np.ndarray:
            phase = c.rand(10 + i) * np.float32(6.283)
            w = np.sin(np.float32(2 * np.pi * freq) * x + phase + 0.6 * c.waves(14 + i, 0.7, 2, x=x))
            crest = 1.0 - np.abs(w.astype(np.float32))  # sharp crests where the sine crosses zero
            return np.float32(base) + c.rand(20 + i, -0.04, 0.04) - np.float32(amp) * crest**2

        h = dune(c.x)
        s = c.slope(dune)
        lit = np.where(s < 0, 1.08, 0.72 - 0.1 * np.tanh(s))[..., None].astype(np.float32)
        far = np.float32(1.0 - 0.15 * (2 - i))
        col = np.clip(sand * lit * far + np.float32(0.07 * (2 - i)), 0.0, 1.0)
        ripples = np.float32(1.0) + np.float32(0.05) * np.sin(np.float32(70.0) * (c.y - h) + 0.5 * c.x)[..., None]
        plain = sand * far + np.float32(0.07 * (2 - i))
        body = mix(col, plain * np.float32(0.9), smooth((c.y - h) / np.float32(0.25)))
        paint(img, c.below(h), body * ripples)
    return img


def forest(c: Canvas) -> np.ndarray:
    """Rows of conifers, paler with distance, on a hillside under a soft sky."""
    img = c.fill(c.vgrad(c.tint(rgb(0.5, 0.72, 0.9), 1, 0.06), c.tint(rgb(0.86, 0.92, 0.88), 2, 0.04), 0.0, 0.6))
    clouds(c, img, 3, c.rand(4, 0.1, 0.2), 0.06, 0.35, WHITE, rgb(0.8, 0.84, 0.9))
    rows = (
        (0.5, 0.09, (0.1, 0.2), rgb(0.42, 0.58, 0.58)),
        (0.68, 0.11, (0.15, 0.3), rgb(0.2, 0.42, 0.3)),
        (0.92, 0.16, (0.3, 0.55), rgb(0.06, 0.24, 0.12)),
    )
    for i, (base, spacing, height, colour) in enumerate(rows):
        ground = np.float32(base) + np.float32(0.03) * c.noise1(10 + i, 1.5, octaves=2)
        top = treeline(c, 20 + 2 * i, ground, spacing, height)
        col = c.tint(colour, 30 + i, 0.04)
        paint(img, c.below(top), c.vgrad(col * np.float32(1.12), col * np.float32(0.8), top, ground))
        paint(img, c.below(ground), col * np.float32(0.7))
    return img


def snowfield(c: Canvas) -> np.ndarray:
    """White rolling hills with blue shadows, a few dark snowy pines and falling snow under an overcast sky."""
    img = c.fill(c.vgrad(c.tint(rgb(0.56, 0.64, 0.78), 1, 0.05), c.tint(rgb(0.92, 0.94, 0.97), 2, 0.03), 0.0, 0.6))
    for i, (base, amp) in enumerate(((0.5, 0.08), (0.68, 0.1), (0.86, 0.12))):

        def hill(x: np.ndarray, i: int = i, base: float = base, amp: float = amp) -> np.ndarray:
            return np.float32(base) + c.rand(10 + i, -0.04, 0.04) - np.float32(amp) * c.noise1(12 + i, 1.2, 3, x=x)

        h = hill(c.x)
        lit = np.clip(1.0 - 0.6 * c.slope(hill), 0.7, 1.08)[..., None]
        snow = np.clip(c.tint(rgb(0.9, 0.93, 0.98), 20 + i, 0.02) * lit, 0.0, 1.0)
        paint(img, c.below(h), c.vgrad(snow, snow * rgb(0.8, 0.86, 1.0), h, h + np.float32(0.2)))
        if i == 1:
            trees = treeline(c, 30, h + np.float32(0.01), 0.3, (0.0, 0.22))
            paint(img, c.below(trees) * (1.0 - c.below(h + np.float32(0.01))), rgb(0.16, 0.24, 0.24))
    flakes, v = lattice(c, 40, 0.05, 0.008)
    paint(img, flakes * (np.float32(0.5) + np.float32(0.5) * v), WHITE)
    return img


_PETALS = np.array(
    [(0.95, 0.2, 0.25), (1.0, 0.85, 0.2), (0.95, 0.5, 0.8), (1.0, 1.0, 1.0), (0.6, 0.35, 0.9)], dtype=np.float32
)


def meadow(c: Canvas) -> np.ndarray:
    """A bright green meadow full of coloured flowers, distant hills and white clouds in a blue sky."""
    img = c.fill(c.vgrad(c.tint(rgb(0.2, 0.5, 0.92), 1, 0.06), c.tint(rgb(0.7, 0.85, 0.98), 2, 0.05), 0.0, 0.55))
    clouds(c, img, 3, c.rand(4, 0.15, 0.28), 0.09, 0.45, WHITE, rgb(0.78, 0.82, 0.9))
    hills = np.float32(0.48) + c.rand(5, -0.04, 0.04) - np.float32(0.06) * c.noise1(6, 1.0, 3)
    paint(img, c.below(hills), c.tint(rgb(0.38, 0.6, 0.45), 7, 0.05))
    field = np.float32(0.55) + c.rand(8, -0.04, 0.04) - np.float32(0.025) * c.noise1(9, 1.5, 2)
    grass = c.tint(rgb(0.35, 0.72, 0.22), 10, 0.06)
    blades = np.float32(1.0) + np.float32(0.05) * c.noise1(12, 24.0, 2)
    paint(
        img, c.below(field), c.vgrad(grass * np.float32(1.1), grass * np.float32(0.75), field, 1.0) * blades[..., None]
    )
    near = smooth((c.y - field) / np.float32(0.45))  # flowers grow with nearness
    pick = (c.rand(11) * 5).astype(np.int64)  # the scene's main flower colour
    for j, (size, radius) in enumerate(((0.035, 0.009), (0.06, 0.016))):
        dots, v = lattice(c, 20 + j, size, radius, fill=0.8)
        which = np.where(v < 0.6, pick, (v * 8).astype(np.int64) % 5)
        paint(img, dots * c.below(field + np.float32(0.02)) * np.minimum(near * 2.5, 1.0), _PETALS[which])
    return img
