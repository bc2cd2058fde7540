"""Painters of the night classes of the scenes data set: city skyline at night, starry sky.

Each painter maps a :class:`~arpg.data.scenes_canvas.Canvas` to a (B, H, W, 3) float32 image
in [0, 1]; see :mod:`arpg.data.scenes_canvas` for the coordinates and the seeded values.
"""

from __future__ import annotations

import numpy as np

from .scenes_canvas import Canvas, hash32, lattice, paint, rgb, smooth, treeline, unit


def _skyline(c: Canvas, what: int, ground: np.ndarray, width: float, height: tuple[float, float]):
    """Rooftops (B, 1, W) of a row of buildings on ``ground``, one per cell of ``width`` units with a
    seeded height (some with a spire), and the building index of each column (B, 1, W)."""
    k = np.floor(c.x / width).astype(np.int64)
    k = np.broadcast_to(k, np.broadcast_shapes(k.shape, c.keys.shape))
    h = height[0] + (height[1] - height[0]) * c.cell(what, k) ** 1.5
    inset = (c.x / width - k).astype(np.float32)
    spire = (c.cell(what + 1, k) > 0.8) & (np.abs(inset - 0.5) < 0.06)
    h = np.where(spire, h + np.float32(0.08), h)
    gap = (inset < 0.06) | (inset > 0.94)  # a sliver of sky between neighbours
    return np.where(gap & (c.cell(what + 2, k) < 0.3), ground, ground - h), k


def _windows(c: Canvas, what: int, k: np.ndarray, lit: float) -> np.ndarray:
    """Coverage (B, H, W) of lit windows on a grid 3 x 4 pixels at scale 1 (per building ``k``)."""
    gx, gy = c.x * (64 / 3), c.y * np.float32(16)
    ix, iy = np.floor(gx), np.floor(gy)
    inside = ((gx - ix) > 0.34) & ((gy - iy) > 0.4)  # (1, H, W)
    column = hash32(c.salt(what) ^ k.astype(np.uint32)) ^ ix.astype(np.uint32)  # (B, 1, W)
    on = unit(hash32(hash32(column) + iy.astype(np.uint32)))
    return (inside & (on < lit)).astype(np.float32)


def city(c: Canvas) -> np.ndarray:
    """A city skyline at night: dark towers with lit windows, a glowing horizon, the moon and a few stars."""
    img = c.fill(
        c.vgrad(c.tint(rgb(0.02, 0.03, 0.1), 1, 0.02), c.tint(rgb(0.3, 0.16, 0.36), 2, 0.05), 0.0, 0.9, gamma=1.6)
    )
    stars, v = lattice(c, 3, 0.06, 0.006, fill=0.4)
    paint(img, stars * v * np.float32(0.8), rgb(0.9, 0.9, 1.0))
    moon_x = np.floor(c.x / 2.0) * 2.0 + c.rand(4, 0.2, 1.8)
    moon_y = c.rand(5, 0.1, 0.25)
    d2 = (c.x - moon_x).astype(np.float32) ** 2 + (c.y - moon_y) ** 2
    paint(img, np.exp(-d2 / np.float32(0.01)) * np.float32(0.25), rgb(0.8, 0.8, 0.9))
    paint(img, c.disc(moon_x, moon_y, np.float32(0.04)), rgb(0.98, 0.95, 0.82))
    ground = np.float32(0.9) + c.rand(6, -0.03, 0.03)
    far, _ = _skyline(c, 10, ground, 0.07, (0.15, 0.45))
    paint(img, c.below(far), c.tint(rgb(0.16, 0.14, 0.26), 13, 0.03))
    near, k = _skyline(c, 20, ground + np.float32(0.02), 0.11, (0.1, 0.38))
    body = c.below(near)
    paint(img, body, c.tint(rgb(0.05, 0.05, 0.09), 23, 0.02))
    warm = c.cell(24, k)[..., None] > 0.25
    glow = np.where(warm, rgb(1.0, 0.82, 0.4), rgb(0.7, 0.85, 1.0))
    paint(img, body * _windows(c, 25, k, 0.45) * smooth((c.y - near) / np.float32(0.02)), glow)
    street = c.below(ground + np.float32(0.02))
    paint(img, street, rgb(0.12, 0.08, 0.1))
    lights, v = lattice(c, 30, 0.03, 0.005, fill=0.7)
    paint(img, street * lights, np.where((v > 0.5)[..., None], rgb(1.0, 0.7, 0.3), rgb(1.0, 0.95, 0.8)))
    return img


def stars(c: Canvas) -> np.ndarray:
    """A starry night: thousands of stars, a few bright ones, the Milky Way, black hills and trees."""
    img = c.fill(c.vgrad(c.tint(rgb(0.01, 0.01, 0.05), 1, 0.01), c.tint(rgb(0.06, 0.1, 0.24), 2, 0.03), 0.0, 0.85))
    centre = c.rand(3, 0.25, 0.5) + np.float32(0.18) * c.waves(4, 0.2, 2)
    width = c.rand(5, 0.07, 0.12)
    band = np.exp(-(((c.y - centre) / width) ** 2))
    dust = np.float32(0.6) + np.float32(0.4) * np.sin(np.float32(40.0) * c.y + np.float32(5.0) * c.noise1(6, 3.0, 3))
    paint(img, band * dust * np.float32(0.45), c.tint(rgb(0.6, 0.55, 0.8), 7, 0.05))
    glow = np.float32(1.0) + band * np.float32(1.5)
    faint, v = lattice(c, 8, 0.035, 0.007, fill=0.45)
    paint(img, np.clip(faint * (0.2 + 0.8 * v**2) * glow, 0.0, 1.0), rgb(0.95, 0.95, 1.0))
    bright, v = lattice(c, 9, 0.12, 0.014, fill=0.5)
    tone = np.where((v < 0.5)[..., None], rgb(0.75, 0.85, 1.0), rgb(1.0, 0.92, 0.75))
    paint(img, bright, tone)
    hills = np.float32(0.85) + c.rand(10, -0.04, 0.04) - np.float32(0.08) * c.noise1(11, 1.0, 3)
    trees = treeline(c, 12, hills + np.float32(0.005), 0.12, (0.0, 0.2))
    paint(img, c.below(np.minimum(hills, trees)), rgb(0.0, 0.0, 0.01))
    return img
