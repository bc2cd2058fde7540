"""Which pixels an inpainting or class edit regenerates, and how the result is pasted back.

**Edit regions.** A stroke painted across a glyph covers a few token cells; decoded as another
class, those cells cannot turn a 3 into an 8 while the rest of the 3 stays as context. For an
edit (a class other than the image's) the painted region is grown before decoding
(:func:`edit_region`):

* ``"box"``: the bounding box of the stroke and every connected foreground shape it touches,
  widened by ``margin`` pixels (foreground: pixels whose colour is far from the background, the
  median colour of the image's border);
* ``"shape"``: the stroke plus those shapes themselves, widened by ``margin`` pixels;
* ``"dilate"``: the stroke widened by ``margin`` pixels in every direction;
* ``"painted"``: the stroke as painted.

:data:`EDIT_REGION` is the one that measures best on the shipped model: a 4 px stroke across
held-out digits, another class, judged (``scripts/bench_tasks.py``, ``docs/benchmarks/tasks.json``).

**Blending** (:func:`blend`, :func:`paste_into`). The tokenizer does not reproduce colours exactly,
so regenerated pixels pasted next to original ones showed a band of another tone (and a panorama's
colours drifted round after round); the decoded pixels are first mapped to the original's colours by
an affine colour map fitted on the cells that were kept (:func:`match_colours`), then pasted (with a
soft edge for inpainting).

Everything is NumPy and torch (no SciPy at import time: the tasks import this module).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

__all__ = [
    "EDIT_REGIONS",
    "EDIT_REGION",
    "EDIT_MARGIN",
    "FOREGROUND_DISTANCE",
    "background_colour",
    "foreground",
    "shapes_under",
    "widen",
    "edit_region",
    "is_edit",
    "match_colours",
    "soft_mask",
    "blend",
    "paste_into",
]

EDIT_REGIONS = ("box", "shape", "dilate", "painted")
EDIT_REGION = "box"  # 4 px strokes, 100 digits: new class read in 98% (shape 74%, dilate 12 px 86%, painted 0%)
EDIT_MARGIN = 4  # pixels around the grown region (one token cell of the shipped model)
FOREGROUND_DISTANCE = 60.0  # summed |RGB - background| above which a pixel is foreground
COLOUR_RIDGE = 2e-4  # pull of the colour map towards "unchanged", per fitted pixel
MIN_KEPT_PIXELS = 16  # fewer kept pixels than this: no colour map


def _pool(mask: np.ndarray, radius: int) -> np.ndarray:
    """Max-pool a bool (H, W) mask over a (2r+1)^2 square: a dilation by ``radius`` pixels."""
    t = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    return F.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)[0, 0].numpy() > 0


def background_colour(image: np.ndarray) -> np.ndarray:
    """The median colour (3,) float of the one-pixel border of ``image`` (H, W, 3)."""
    img = np.asarray(image, dtype=np.float64)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return np.median(border, axis=0)


def foreground(image: np.ndarray, distance: float = FOREGROUND_DISTANCE) -> np.ndarray:
    """Pixels (H, W) bool whose colour differs from :func:`background_colour` by more than
    ``distance`` (the sum of the absolute RGB differences)."""
    img = np.asarray(image, dtype=np.float64)
    return np.abs(img - background_colour(img)).sum(-1) > distance


def shapes_under(fg: np.ndarray, stroke: np.ndarray) -> np.ndarray:
    """The 8-connected shapes of ``fg`` (H, W) bool that ``stroke`` (H, W) bool touches, as one
    mask (grown from the touched pixels until it stops changing)."""
    fg = np.asarray(fg, dtype=bool)
    region = fg & np.asarray(stroke, dtype=bool)
    while region.any():
        grown = _pool(region, 1) & fg
        if np.array_equal(grown, region):
            break
        region = grown
    return region


def widen(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` (H, W) bool grown by ``pixels`` in every direction (a square neighbourhood)."""
    mask = np.asarray(mask, dtype=bool)
    if pixels <= 0 or not mask.any():
        return mask.copy()
    return _pool(mask, pixels)


def _box(mask: np.ndarray) -> np.ndarray:
    """The bounding box of ``mask`` (H, W) bool, filled."""
    out = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    if len(ys):
        out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    return out


def edit_region(image: np.ndarray, stroke: np.ndarray, how: str = EDIT_REGION, margin: int = EDIT_MARGIN) -> np.ndarray:
    """The pixels (H, W) bool an edit regenerates for a ``stroke`` (H, W) bool on ``image`` (H, W, 3).

    how: one of :data:`EDIT_REGIONS` (see the module docstring); the stroke itself is always included.
    """
    if how not in EDIT_REGIONS:
        raise ValueError(f"how must be one of {', '.join(EDIT_REGIONS)}, got {how!r}")
    stroke = np.asarray(stroke, dtype=bool)
    if how == "painted":
        return stroke.copy()
    if how == "dilate":
        return widen(stroke, margin)
    shapes = shapes_under(foreground(image), stroke)
    if how == "box":
        return widen(_box(stroke | shapes), margin)
    return stroke | widen(shapes, margin)


def is_edit(image_class: int | None, label: int) -> bool:
    """Whether regenerating as ``label`` is an edit: the image's class is known and another one."""
    return image_class is not None and int(image_class) != int(label)


# -- pasting back --------------------------------------------------------------------------------
def match_colours(raw: np.ndarray, image: np.ndarray, kept: np.ndarray, ridge: float = COLOUR_RIDGE) -> np.ndarray:
    """``raw`` (H, W, 3) uint8 mapped to ``image``'s colours: an affine RGB map (3x3 + offset) fitted
    by least squares on the ``kept`` (H, W) bool pixels, pulled towards the identity by ``ridge``.
    Returns float (H, W, 3) in [0, 255]; ``raw`` unchanged when fewer than 16 pixels are kept."""
    kept = np.asarray(kept, dtype=bool)
    n = int(kept.sum())
    src = np.asarray(raw, dtype=np.float64) / 255.0
    if n < MIN_KEPT_PIXELS:
        return src * 255.0
    x = np.concatenate([src[kept], np.ones((n, 1))], axis=1)  # (n, 4)
    y = np.asarray(image, dtype=np.float64)[kept] / 255.0  # (n, 3)
    prior = np.concatenate([np.eye(3), np.zeros((1, 3))])  # the identity map
    lam = ridge * n
    a = np.linalg.solve(x.T @ x + lam * np.eye(4), x.T @ y + lam * prior)  # (4, 3)
    mapped = np.concatenate([src, np.ones(src.shape[:2] + (1,))], axis=-1) @ a
    return np.clip(mapped * 255.0, 0.0, 255.0)


def soft_mask(cells: torch.Tensor, pixel_mask: np.ndarray, factor: int, feather: float) -> np.ndarray:
    """Blend weight (H, W, 1) float32 in [0, 1]: 1 on the painted pixels, a soft edge of ``feather``
    px (a Gaussian blur) around them, never outside the regenerated ``cells`` (rows, cols) bool."""
    region = np.kron(np.asarray(cells, dtype=np.uint8), np.ones((factor, factor), np.uint8))
    base = Image.fromarray((np.asarray(pixel_mask) * 255).astype(np.uint8))
    if feather > 0:
        base = base.filter(ImageFilter.GaussianBlur(feather))
    w = np.asarray(base, dtype=np.float32) / 255.0
    w = np.maximum(w, np.asarray(pixel_mask, dtype=np.float32)) * region
    return w[..., None]


def blend(
    image: np.ndarray,
    raw: np.ndarray,
    cells: torch.Tensor,
    pixel_mask: np.ndarray,
    factor: int,
    feather: float | None = None,
) -> np.ndarray:
    """The regenerated pixels of ``raw`` pasted into ``image`` (both (H, W, 3) uint8): colours matched
    on the kept cells (:func:`match_colours`), then a soft edge of ``feather`` px (default half a cell)
    inside the regenerated ``cells`` (rows, cols) bool. Returns (H, W, 3) uint8."""
    region = np.kron(np.asarray(cells, dtype=bool), np.ones((factor, factor), bool))
    matched = match_colours(raw, image, ~region)
    w = soft_mask(cells, pixel_mask, factor, factor / 2 if feather is None else feather)
    return (np.asarray(image, np.float64) * (1 - w) + matched * w + 0.5).astype(np.uint8)


def paste_into(raw: np.ndarray, image: np.ndarray, top: int, left: int) -> np.ndarray:
    """``image`` (h, w, 3) uint8 placed at pixel (``top``, ``left``) of a decode ``raw`` (H, W, 3) uint8
    that extends it, the rest of ``raw`` mapped to ``image``'s colours (:func:`match_colours`, fitted
    where they overlap), so the new part has no band of another tone. Returns (H, W, 3) uint8."""
    h, w = image.shape[:2]
    canvas = np.array(raw, dtype=np.uint8)
    canvas[top : top + h, left : left + w] = image
    kept = np.zeros(canvas.shape[:2], dtype=bool)
    kept[top : top + h, left : left + w] = True
    out = np.rint(match_colours(raw, canvas, kept)).astype(np.uint8)
    out[kept] = canvas[kept]
    return out
