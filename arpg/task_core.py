"""What every task of :mod:`arpg.tasks` shares, and the tasks that decode no bigger canvas.

The shared part: the result (:class:`TaskResult`, with what its decode used:
:class:`arpg.windows.Used`), the step policy (:func:`fit_steps`), cells from a
pixel mask, grids of known tokens (:func:`place`, :func:`lattice_context`) and each task's default
decoding (:func:`decoding_for`). The tasks: inpainting and class-conditional editing, which regenerate
cells of the image's own grid. :mod:`arpg.tasks` re-exports all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import masks
from .images import ImageSource, mask_to_array, prepare_image
from .options import DEFAULT_DECODING, SamplingOptions, with_overrides
from .sampling import Context, StepCallback, Trace
from .validation import check_choice, check_int, check_number, check_seed
from .windows import DECODINGS, Used, generate_canvas, used_by


@dataclass
class TaskResult:
    image: np.ndarray  # (H, W, 3) uint8, the final output (blended when asked)
    raw: np.ndarray  # (H, W, 3) uint8, the decoded tokens without blending
    tokens: torch.Tensor  # (rows, cols)
    known: torch.Tensor  # (rows, cols) bool: cells that were context
    trace: Trace
    seed: int
    note: str | None = None
    used: Used | None = None  # what the decode used (order, steps, decoding, windows): every task records it


# -- masks and cells ---------------------------------------------------------------------------
def cells_from_mask(mask: np.ndarray, factor: int, dilate: int = 0) -> torch.Tensor:
    """Pixel mask (H, W) bool -> cell mask (H/f, W/f) bool: a cell counts when the mask
    touches any of its pixels; ``dilate`` grows the region by that many cells."""
    t = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    cells = F.max_pool2d(t, factor)
    if dilate > 0:
        cells = F.max_pool2d(cells, 2 * dilate + 1, stride=1, padding=dilate)
    return cells[0, 0] > 0


def fit_steps(options: SamplingOptions, n_free: int) -> tuple[SamplingOptions, str | None]:
    """Policy: a task never asks for more steps than cells to decode; ``steps`` above the
    number of free cells becomes one step per cell, with a note saying so."""
    if options.steps > n_free >= 1:
        many = n_free != 1
        return options.replace(steps=n_free), (
            f"only {n_free} token{'s' if many else ''} to decode, so {n_free} step{'s were' if many else ' was'} used"
        )
    return options, None


def _unchanged(
    pipe, img: np.ndarray, codes: torch.Tensor, seed: int | None, note: str, options: SamplingOptions, decoding: str
) -> TaskResult:
    """The input returned as is when a task has nothing to decode (an empty trace, 0 steps used)."""
    trace = Trace(*codes.shape, torch.empty(0, dtype=torch.long), [], [], torch.full(codes.shape, -1))
    return TaskResult(
        img,
        pipe.decode(codes[None])[0],
        codes,
        torch.ones(codes.shape, dtype=torch.bool),
        trace,
        check_seed(seed),
        note,
        replace(used_by(options, decoding), steps=0),
    )


def _join(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def decoding_for(task: str, decoding: str | None = None, defaults: Mapping[str, str] | None = None) -> str:
    """``decoding`` checked against :data:`arpg.windows.DECODINGS`; None: ``task``'s entry of
    ``defaults`` (a model's, :attr:`arpg.pipeline.Pipeline.decodings`), else of :data:`DEFAULT_DECODING`."""
    task = check_choice("task", task, DEFAULT_DECODING)
    if decoding is not None:
        return check_choice("decoding", decoding, DECODINGS)
    return (defaults or DEFAULT_DECODING)[task]


def place(tokens: torch.Tensor, left: int, right: int, top: int, bottom: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Put (r, c) tokens inside a (top + r + bottom, left + c + right) grid.

    Returns (grid tokens (-1 where new), known mask)."""
    r, c = tokens.shape
    grid = torch.full((top + r + bottom, left + c + right), -1, dtype=torch.long)
    grid[top : top + r, left : left + c] = tokens
    return grid, grid >= 0


def lattice_context(tokens: torch.Tensor, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spread (r, c) tokens on a sub-lattice of a (rows, cols) grid: token (i, j) goes to
    (floor(i * rows / r), floor(j * cols / c)).  Returns (grid tokens, known mask)."""
    r, c = tokens.shape
    if rows < r or cols < c:
        raise ValueError(f"target grid {rows}x{cols} must not be smaller than the source {r}x{c}")
    ri = (torch.arange(r) * rows) // r
    ci = (torch.arange(c) * cols) // c
    grid = torch.full((rows, cols), -1, dtype=torch.long)
    grid[ri[:, None], ci[None, :]] = tokens
    return grid, grid >= 0


# -- mask tasks --------------------------------------------------------------------------------
def inpaint(
    pipe,
    image: ImageSource,
    mask: ImageSource,
    label,
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
    rows = pipe.grid[0]
    f = pipe.factor
    img = prepare_image(image, f, rows)
    H, W = img.shape[:2]
    pix = mask_to_array(mask, (W, H))
    if not pix.any():
        raise ValueError("the mask is empty: paint the region to regenerate")
    pix = masks.edit_region(img, pix, region)
    cells = cells_from_mask(pix, f, dilate)
    codes = pipe.encode(img[None])[0]
    known = ~cells
    note = None
    if not known.any():
        note = "the mask covers the whole image: this is plain generation"
    options, capped = fit_steps(options, int(cells.sum()))
    note = _join(note, capped)
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
    pipe, image: ImageSource, mask: ImageSource, label, options: SamplingOptions | None = None, **kw: Any
) -> TaskResult:
    """Class-conditional editing: inpainting with the new class (e.g. turn a 3 into an 8); see :func:`inpaint`.

    The painted mask grows to :data:`arpg.masks.EDIT_REGION` unless ``region`` says otherwise: a stroke
    across a glyph regenerates the whole glyph."""
    kw.setdefault("region", masks.EDIT_REGION)
    return inpaint(pipe, image, mask, label, options, **kw)
