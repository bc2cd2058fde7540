"""The tasks that regenerate cells of the image's own grid: inpainting and class-conditional editing.

A painted mask becomes the region to regenerate (:func:`arpg.masks.edit_region`), the region the cells
to decode (:func:`masked_cells`, what :func:`arpg.tasks.planning.plan` counts too), and every other
cell of the image's tokens is context for one decode of the whole grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import masks
from ..images import ImageSource, mask_to_array, prepare_image
from ..options import SamplingOptions, with_overrides
from ..pipeline import Pipeline
from ..sampling import Context, StepCallback
from ..validation import check_int, check_number
from ..windows import generate_canvas
from .context import TaskResult, cells_from_mask, fit_steps, join_notes


def masked_cells(
    img: np.ndarray, mask: ImageSource, factor: int, region: str, dilate: int
) -> tuple[np.ndarray, torch.Tensor]:
    """The pixels (H, W) bool a ``mask`` on ``img`` (prepared, (H, W, 3)) regenerates, grown as ``region``
    says, and their cells ((H/f, W/f) bool, grown by ``dilate`` cells): ``ValueError`` for an empty mask."""
    H, W = img.shape[:2]
    pix = mask_to_array(mask, (W, H))
    if not pix.any():
        raise ValueError("the mask is empty: paint the region to regenerate")
    pix = masks.edit_region(img, pix, region)
    return pix, cells_from_mask(pix, factor, dilate)


def inpaint(
    pipe: Pipeline,
    image: ImageSource,
    mask: ImageSource,
    label: int | str,
    options: SamplingOptions | None = None,
    *,
    dilate: int = 0,
    blend: bool = True,
    feather: float | None = None,
    region: str = "painted",
    seed: int | None = None,
    callback: StepCallback | None = None,
    **overrides: Any,
) -> TaskResult:
    """Regenerate the masked part of ``image`` as class ``label`` (same class: inpainting;
    another class: class-conditional editing).

    options: None for ``pipe.defaults``; ``overrides`` are SamplingOptions field names applied on
    top (as in :meth:`arpg.pipeline.Pipeline.generate`). dilate: grow the region by this many
    cells. blend/feather: paste the regenerated pixels back, colours matched, mixed with the original
    over a seam band of ``feather`` px around them (:func:`arpg.masks.blend`). region: how the painted
    mask grows first, one of :data:`arpg.masks.EDIT_REGIONS` ("painted": as painted; see
    :func:`arpg.masks.edit_region`).
    """
    options = with_overrides(options, overrides, pipe.defaults)
    dilate = check_int("dilate", dilate, 0, 64)
    if feather is not None:
        feather = check_number("feather", feather, 0.0, 64.0)
    f = pipe.factor
    img = prepare_image(image, f, pipe.grid[0])
    pix, cells = masked_cells(img, mask, f, region, dilate)
    codes = pipe.encode(img[None])[0]
    known = ~cells
    note = None
    if not known.any():
        note = "the mask covers the whole image: this is plain generation"
    options, capped = fit_steps(options, int(cells.sum()))
    note = join_notes(note, capped)
    out = generate_canvas(
        pipe,
        [pipe.label_of(label)],
        options,
        seed=seed,
        grid=tuple(known.shape),
        context=Context(codes, known) if known.any() else None,
        decoding="whole",  # the image's own grid
        callback=callback,
    )
    raw = out.images[0]
    final = masks.blend(img, raw, cells, pix, f, feather) if blend else raw
    return TaskResult(final, raw, out.tokens[0], known, out.trace, out.seed, note, out.used)


def edit(
    pipe: Pipeline,
    image: ImageSource,
    mask: ImageSource,
    label: int | str,
    options: SamplingOptions | None = None,
    **kw: Any,
) -> TaskResult:
    """Class-conditional editing: inpainting with the new class (e.g. turn a 3 into an 8); see :func:`inpaint`.

    The painted mask grows to :data:`arpg.masks.EDIT_REGION` unless ``region`` says otherwise: a stroke
    across a glyph regenerates the whole glyph."""
    kw.setdefault("region", masks.EDIT_REGION)
    return inpaint(pipe, image, mask, label, options, **kw)
