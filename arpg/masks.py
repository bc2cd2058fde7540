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
an affine colour map fitted on the cells that were kept (:func:`match_colours`), applied only to the
colours the kept pixels cover (:func:`colour_coverage`: an edit over a whole glyph keeps only
background, and a map fitted there washed the new glyph towards it). The tokenizer also blurs: a
decoded part pasted beside the sharp original met it with a step. So the decode covers the kept
pixels too, and the two are mixed over a band of :data:`SEAM_BAND` px on the original's side of
every join (:func:`seam_blend`); further from the join the original is untouched.

Everything is NumPy and torch (no SciPy at import time: the tasks import this module).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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
    "colour_coverage",
    "match_colours",
    "seam_weights",
    "seam_blend",
    "blend",
    "paste_into",
]

EDIT_REGIONS = ("box", "shape", "dilate", "painted")
EDIT_REGION = "box"  # the region that measured best on the shipped model (README, "Edits from a stroke")
EDIT_MARGIN = 4  # pixels around the grown region (one token cell of the shipped model)
FOREGROUND_DISTANCE = 60.0  # summed |RGB - background| above which a pixel is foreground
COLOUR_RIDGE = 2e-4  # pull of the colour map towards "unchanged", per fitted pixel
MIN_KEPT_PIXELS = 16  # fewer kept pixels than this: no colour map
COLOUR_BINS = 16  # levels a channel of the colour histogram that says which colours the kept pixels cover
MIN_BIN_PIXELS = 2  # kept pixels a bin needs to count as covered (one stray pixel does not)
SEAM_BAND = 4  # px of the original's side of a join mixed with its decode (one token cell of the shipped models)


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
def colour_coverage(colours: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """How well the ``kept`` colours (n, 3) in [0, 1] cover each of ``colours`` (m, 3) in [0, 1]: (m,) in
    [0, 1]. 1 within one bin of :data:`COLOUR_BINS` levels a channel of a bin that holds kept colours, 0.5
    within two, 0 further: a colour map fitted on the kept colours is trusted only near them."""
    bins = COLOUR_BINS

    def index(c: np.ndarray) -> np.ndarray:
        q = np.clip((c * bins).astype(np.int64), 0, bins - 1)
        return (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]

    counts = np.bincount(index(kept), minlength=bins**3).reshape(1, 1, bins, bins, bins)
    occupied = torch.from_numpy((counts >= MIN_BIN_PIXELS).astype(np.float32))
    near = F.max_pool3d(occupied, 3, stride=1, padding=1) + F.max_pool3d(occupied, 5, stride=1, padding=2)
    return near.reshape(-1).numpy()[index(colours)].astype(np.float64) / 2.0


def match_colours(raw: np.ndarray, image: np.ndarray, kept: np.ndarray, ridge: float = COLOUR_RIDGE) -> np.ndarray:
    """``raw`` (H, W, 3) uint8 mapped to ``image``'s colours: an affine RGB map (3x3 + offset) fitted
    by least squares on the ``kept`` (H, W) bool pixels, pulled towards the identity by ``ridge``, and
    applied to each colour only as far as the kept pixels' raw colours cover it (:func:`colour_coverage`):
    a map fitted on the background alone says nothing of a new glyph's colour, so that one is left as
    decoded. Returns float (H, W, 3) in [0, 255]; ``raw`` unchanged when fewer than 16 pixels are kept."""
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
    trust = colour_coverage(src.reshape(-1, 3), src[kept]).reshape(src.shape[:2] + (1,))
    return np.clip((src + trust * (mapped - src)) * 255.0, 0.0, 255.0)


def seam_weights(new: np.ndarray, band: int = SEAM_BAND) -> np.ndarray:
    """The weight (H, W) float64 of decoded pixels where ``new`` (H, W) bool pixels meet kept ones: 1 on
    ``new``, a cosine ramp down to 0 across the ``band`` px of kept pixels nearest to it (by the
    chessboard distance: whole rows and columns along a straight join), 0 beyond, where the original
    stays as it is."""
    new = np.asarray(new, dtype=bool)
    w = new.astype(np.float64)
    if band <= 0 or not new.any():
        return w
    inside = new
    for d in range(1, band + 1):
        grown = _pool(new, d)
        w[grown & ~inside] = 0.5 + 0.5 * np.cos(np.pi * d / (band + 1))
        inside = grown
    return w


def seam_blend(original: np.ndarray, decoded: np.ndarray, new: np.ndarray, band: int = SEAM_BAND) -> np.ndarray:
    """``decoded`` (H, W, 3) on the ``new`` (H, W) bool pixels, ``original`` (H, W, 3) elsewhere, the two
    mixed over ``band`` px of the original's side of every join (:func:`seam_weights`): decoded and kept
    pixels meet without a step. Pixels further than ``band`` from ``new`` are the original's. Returns uint8."""
    w = seam_weights(new, band)[..., None]
    out = np.asarray(original, np.float64) * (1.0 - w) + np.asarray(decoded, np.float64) * w
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def blend(
    image: np.ndarray,
    raw: np.ndarray,
    cells: torch.Tensor,
    pixel_mask: np.ndarray,
    factor: int,
    feather: float | None = None,
) -> np.ndarray:
    """The regenerated pixels of ``raw`` pasted into ``image`` (both (H, W, 3) uint8): colours matched
    on the pixels outside the regenerated ``cells`` (rows, cols) bool (:func:`match_colours`), then the
    painted ``pixel_mask`` (H, W) bool pasted with a seam band of ``feather`` px (default
    :data:`SEAM_BAND`; :func:`seam_blend`): ``raw`` in the kept cells is the decode of the original's own
    tokens, so the band mixes the original into its decode. Returns (H, W, 3) uint8."""
    region = np.kron(np.asarray(cells, dtype=bool), np.ones((factor, factor), bool))
    matched = match_colours(raw, image, ~region)
    band = SEAM_BAND if feather is None else int(round(feather))
    return seam_blend(image, matched, np.asarray(pixel_mask, dtype=bool) & region, band)


def paste_into(raw: np.ndarray, image: np.ndarray, top: int, left: int, band: int = SEAM_BAND) -> np.ndarray:
    """``image`` (h, w, 3) uint8 placed at pixel (``top``, ``left``) of a decode ``raw`` (H, W, 3) uint8
    that extends it, the rest of ``raw`` mapped to ``image``'s colours (:func:`match_colours`, fitted
    where they overlap), so the new part has no band of another tone, and the two mixed over ``band`` px
    of the image's edge (:func:`seam_blend`) so they meet without a step. Returns (H, W, 3) uint8."""
    h, w = image.shape[:2]
    canvas = np.array(raw, dtype=np.uint8)
    canvas[top : top + h, left : left + w] = image
    kept = np.zeros(canvas.shape[:2], dtype=bool)
    kept[top : top + h, left : left + w] = True
    return seam_blend(canvas, match_colours(raw, canvas, kept), ~kept, band)
