"""Coordinates, seeded randomness and drawing primitives of the scenes data set (:mod:`arpg.data.scenes`).

A scene is a function of continuous coordinates in scene units: ``x`` grows to the right without
bound, ``y`` is 0 at the top of the canvas and 1 at the bottom at scale 1 (one unit is
:data:`BASE` pixels at scale 1, ``BASE * scale`` pixels at scale ``scale``).  Every random choice
is a hash of (scene key, what is drawn, where), never a draw from a stream, so a pixel depends
only on its own coordinates: any window of a scene, at any resolution, renders the same picture.

Arrays broadcast over (B, H, W): per-scene values are (B, 1, 1), functions of x (ridgelines,
skylines) are (B, 1, W), functions of y (sky gradients) are (1 | B, H, 1), colours add a last axis of 3.
Edges are anti-aliased over one pixel, so a render at twice the scale, box-downscaled, is close
to the render at scale 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BASE = 64  # pixels per scene unit at scale 1

_M1, _M2 = np.uint32(0x7FEB352D), np.uint32(0x846CA68B)
_UNIT = np.float32(1.0 / (1 << 24))


def hash32(v: np.ndarray) -> np.ndarray:
    """An avalanche hash of integers, elementwise: uint32 array of ``v``'s shape (values wrap to 32 bits)."""
    h = np.asarray(v).astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= _M1
    h ^= h >> np.uint32(15)
    h *= _M2
    h ^= h >> np.uint32(16)
    return h


def unit(h: np.ndarray) -> np.ndarray:
    """uint32 hashes -> float32 uniform in [0, 1)."""
    return (h >> np.uint32(8)).astype(np.float32) * _UNIT


def scene_keys(labels: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """(B,) class ids and int seeds -> (B,) uint32 keys, one per scene (class and seed mixed)."""
    s = np.asarray(seeds, dtype=np.int64).astype(np.uint64)
    lo = (s & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    hi = (s >> np.uint64(32)).astype(np.uint32)
    lab = np.asarray(labels, dtype=np.int64).astype(np.uint32)
    return hash32(hash32(hash32(lo) ^ (hi + np.uint32(0x9E3779B9))) + lab * np.uint32(0x85EBCA6B))


def rgb(r: float, g: float, b: float) -> np.ndarray:
    """A colour: (3,) float32 in [0, 1]."""
    return np.array([r, g, b], dtype=np.float32)


def mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``a + t * (b - a)`` with ``t`` given without the colour axis (it gets one)."""
    return a + np.asarray(t, dtype=np.float32)[..., None] * (b - a)


def smooth(t: np.ndarray) -> np.ndarray:
    """Smoothstep of ``t`` clipped to [0, 1]."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class Canvas:
    """The pixels being rendered and the scenes they show.

    keys: (B, 1, 1) uint32 scene keys; x: (1, 1, W) float64 scene x of the column centres;
    y: (1, H, 1) float32 scene y of the row centres; px: one pixel in scene units.
    """

    keys: np.ndarray
    x: np.ndarray
    y: np.ndarray
    px: float

    @classmethod
    def make(cls, keys: np.ndarray, height: int, width: int, scale: float, left: int) -> Canvas:
        """The canvas of ``height`` x ``width`` pixels at ``scale`` whose first column is pixel ``left``."""
        px = 1.0 / (BASE * scale)
        x = (np.arange(width, dtype=np.float64) + (left + 0.5)) * px
        y = ((np.arange(height, dtype=np.float64) + 0.5) * px).astype(np.float32)
        return cls(np.asarray(keys, dtype=np.uint32).reshape(-1, 1, 1), x[None, None], y[None, :, None], px)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, H, W)."""
        return len(self.keys), self.y.shape[1], self.x.shape[2]

    # -- seeded values -------------------------------------------------------------------
    def salt(self, what: int) -> np.ndarray:
        """(B, 1, 1) uint32: the scene keys hashed with ``what`` (the root of every value named ``what``)."""
        return hash32(self.keys ^ hash32(np.uint32((what * 0x27D4EB2F + 0x165667B1) & 0xFFFFFFFF)))

    def rand(self, what: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
        """(B, 1, 1) float32 uniform in [lo, hi): one value per scene, named by ``what``."""
        return np.float32(lo) + np.float32(hi - lo) * unit(self.salt(what))

    def cell(self, what: int, k: np.ndarray, j: np.ndarray | None = None) -> np.ndarray:
        """Uniform [0, 1) float32 per integer cell ``k`` (and row ``j`` for a 2-D lattice), broadcast with (B, 1, 1)."""
        h = hash32(self.salt(what) ^ np.asarray(k).astype(np.uint32))
        if j is not None:
            h = hash32(h + np.asarray(j).astype(np.uint32))
        return unit(h)

    def tint(self, colour: np.ndarray, what: int, amount: float) -> np.ndarray:
        """(B, 1, 1, 3) ``colour`` jittered per scene by up to ``amount`` per channel."""
        jitter = np.stack([self.rand(what * 8 + i) for i in range(3)], axis=-1) - 0.5
        return np.clip(colour + np.float32(2 * amount) * jitter, 0.0, 1.0)

    # -- functions of x ----------------------------------------------------------------------
    def noise1(
        self, what: int, freq: float | np.ndarray, octaves: int = 1, gain: float = 0.5, x: np.ndarray | None = None
    ) -> np.ndarray:
        """Fractal value noise along x in [-1, 1]: (B, 1, W) float32. ``freq``: cells per unit of the first octave."""
        x = self.x if x is None else x
        total = np.float32(0.0)
        amp, norm = 1.0, 0.0
        for o in range(octaves):
            t = x * (np.asarray(freq) * 2.0**o)
            k = np.floor(t)
            f = smooth((t - k).astype(np.float32))
            k = k.astype(np.int64)
            a, b = self.cell(what * 16 + o, k), self.cell(what * 16 + o, k + 1)
            total = total + np.float32(amp) * (a + (b - a) * f)
            norm += amp
            amp *= gain
        return total * np.float32(2.0 / norm) - np.float32(1.0)

    def waves(self, what: int, freq: float, terms: int = 3, x: np.ndarray | None = None) -> np.ndarray:
        """Sum of ``terms`` sinusoids along x with seeded frequencies (about ``freq`` cycles per unit) and
        phases, in [-1, 1]: (B, 1, W) float32."""
        x = self.x if x is None else x
        total = np.float32(0.0)
        for i in range(terms):
            f = freq * (0.6 + 0.8 * self.rand(what * 16 + 2 * i)) * (1.7**i)
            p = 2 * np.pi * self.rand(what * 16 + 2 * i + 1)
            total = total + np.sin(2 * np.pi * f * x + p).astype(np.float32) / np.float32(1.5**i)
        return total / np.float32(sum(1.5**-i for i in range(terms)))

    def slope(self, fn: Callable[[np.ndarray], np.ndarray], d: float = 1.0 / 128) -> np.ndarray:
        """d fn(x) / dx by a central difference of ``d`` scene units (the same at every scale)."""
        return (fn(self.x + d) - fn(self.x - d)) / np.float32(2 * d)

    # -- coverage (B, H, W) in [0, 1] -------------------------------------------------------------
    def below(self, h: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Coverage of the region under the line ``y = h(x)`` (anti-aliased over one pixel)."""
        y = self.y if y is None else y
        return np.clip((y - h) * np.float32(1.0 / self.px) + np.float32(0.5), 0.0, 1.0)

    def band(self, top: np.ndarray, bottom: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Coverage of the region between the lines ``top(x)`` and ``bottom(x)``."""
        y = self.y if y is None else y
        inv = np.float32(1.0 / self.px)
        return np.clip(np.minimum(y - top, bottom - y) * inv + np.float32(0.5), 0.0, 1.0)

    def disc(self, cx: np.ndarray, cy: np.ndarray, r: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """Coverage of discs of radius ``r`` at (cx, cy) (arrays broadcast with the canvas)."""
        y = self.y if y is None else y
        d = np.sqrt((self.x - cx).astype(np.float32) ** 2 + (y - cy) ** 2)
        return np.clip((r - d) * np.float32(1.0 / self.px) + np.float32(0.5), 0.0, 1.0)

    def vgrad(
        self,
        top: np.ndarray,
        bottom: np.ndarray,
        y0: float | np.ndarray,
        y1: float | np.ndarray,
        gamma: float = 1.0,
        y: np.ndarray | None = None,
    ) -> np.ndarray:
        """Colour ``top`` above y0 blending into ``bottom`` at y1: (B, H, 1, 3) (or y's shape plus 3)."""
        y = self.y if y is None else y
        t = np.clip((y - y0) / np.maximum(np.asarray(y1) - y0, np.float32(1e-6)), 0.0, 1.0) ** np.float32(gamma)
        return mix(top, bottom, t)

    def fill(self, colour: np.ndarray) -> np.ndarray:
        """A new (B, H, W, 3) float32 image of ``colour`` (broadcast)."""
        img = np.empty((*self.shape, 3), dtype=np.float32)
        img[...] = colour
        return img


def paint(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Lay ``colour`` over ``img`` (B, H, W, 3) with coverage ``alpha`` (B, H, W) in place; returns ``img``."""
    img += alpha[..., None] * (colour - img)
    return img


def lattice(
    c: Canvas, what: int, size: float, radius: float, y: np.ndarray | None = None, fill: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Dots on a square lattice of ``size`` scene units, one per cell at a seeded place; a cell has a
    dot with probability ``fill``. Returns (coverage (B, H, W), a uniform value per dot for its
    colour or brightness). Dot radius: ``radius`` times a seeded factor in [0.5, 1]."""
    y = c.y if y is None else y
    tx, ty = c.x / size, (y / np.float32(size)).astype(np.float64)
    kx, ky = np.floor(tx).astype(np.int64), np.floor(ty).astype(np.int64)
    kx, ky = np.broadcast_arrays(kx, ky)
    h = hash32(c.salt(what) ^ kx.astype(np.uint32))
    h = hash32(h + ky.astype(np.uint32))  # (B, H, W) one hash per cell
    r = np.float32(radius) * (np.float32(0.5) + np.float32(0.5) * unit(hash32(h + np.uint32(3))))
    margin = r / np.float32(size)
    ox = margin + (1 - 2 * margin) * unit(hash32(h + np.uint32(1)))
    oy = margin + (1 - 2 * margin) * unit(hash32(h + np.uint32(2)))
    dx = ((tx - kx) - ox).astype(np.float32) * np.float32(size)
    dy = ((ty - ky) - oy).astype(np.float32) * np.float32(size)
    cover = np.clip((r - np.sqrt(dx * dx + dy * dy)) * np.float32(1.0 / c.px) + np.float32(0.5), 0.0, 1.0)
    value = unit(hash32(h + np.uint32(4)))
    if fill < 1.0:
        cover = cover * (value < fill)
        value = value / np.float32(fill)
    return cover, value


# -- parts shared by several classes --------------------------------------------------------------
def clouds(
    c: Canvas,
    img: np.ndarray,
    what: int,
    y_mid: float | np.ndarray,
    thick: float,
    amount: float,
    light: np.ndarray,
    dark: np.ndarray,
    freq: float = 2.5,
    y: np.ndarray | None = None,
) -> np.ndarray:
    """Puffy clouds along the line ``y_mid``: bulging tops, flatter bases, ``light`` on top and ``dark``
    below; ``amount`` in [0, 1] is how much of the line they cover. Paints ``img`` in place and returns it."""
    y = c.y if y is None else y
    d = np.clip(c.noise1(what, freq, octaves=4) + np.float32(2 * amount - 1), 0.0, None)  # (B, 1, W)
    top = y_mid - np.float32(thick) * d
    bottom = y_mid + np.float32(0.3 * thick) * d
    a = c.band(top, bottom, y) * smooth(d * 8)
    t = np.clip((y - top) / (bottom - top + np.float32(1e-3)), 0.0, 1.0)
    return paint(img, a, mix(light, dark, t))


def treeline(
    c: Canvas,
    what: int,
    base: float | np.ndarray,
    spacing: float,
    height: tuple[float, float],
    x: np.ndarray | None = None,
) -> np.ndarray:
    """Top edge (B, 1, W) of a row of conifers standing on ``base``: one tree per cell of ``spacing``
    units at a seeded place, of seeded height in ``height``, outline stepped like branch tiers."""
    x = c.x if x is None else x
    k0 = np.floor(x / spacing).astype(np.int64)
    top = np.zeros(np.broadcast_shapes(c.keys.shape, x.shape), dtype=np.float32)
    for dk in (-1, 0, 1):
        k = k0 + dk
        xk = (k + 0.15 + 0.7 * c.cell(what, k)) * spacing
        hk = height[0] + (height[1] - height[0]) * c.cell(what + 1, k)
        q = 1.0 - np.abs(x - xk).astype(np.float32) / (np.float32(0.36) * hk)  # 1 at the trunk, 0 at the edge
        tiers = q + np.float32(0.14) * (1.0 - np.modf(np.clip(q, 0, 1) * np.float32(4.0))[0])
        top = np.maximum(top, hk * np.clip(np.where(q > 0, tiers, 0.0), 0.0, 1.0))
    return base - top
