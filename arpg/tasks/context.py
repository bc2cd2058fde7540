"""What every task shares: its result, its step policy, its decoding, and the context it decodes with.

The result (:class:`TaskResult`, with what its decode used: :class:`arpg.windows.Used`), the step policy
(:func:`fit_steps`), a task's decoding (:func:`decoding_for`, :func:`settled`), the canvas limit
(:func:`check_cells`), and the context: which cells of a grid are known (:func:`outpaint_known`,
:func:`lattice_known`, worked out from shapes alone, so that :mod:`arpg.tasks.planning` sees the very cells
a task keeps) and the grids of known tokens built on them (:func:`place`, :func:`lattice_context`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..options import DEFAULT_DECODING, SamplingOptions, with_overrides
from ..pipeline import Pipeline
from ..sampling import Trace
from ..validation import check_choice, check_seed
from ..windows import DECODINGS, Used, used_by

__all__ = [
    "DEFAULT_DECODING",
    "MAX_CELLS",
    "TaskResult",
    "Used",
    "cells_from_mask",
    "check_cells",
    "decoding_for",
    "fit_steps",
    "lattice_context",
    "lattice_known",
    "outpaint_known",
    "place",
    "settled",
]

#: The most token cells of a canvas task's result (outpaint, panorama, resize): what bounds its decode to
#: pixels and the memory it takes, whatever its decoding.
MAX_CELLS = 4096


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


# -- policies ----------------------------------------------------------------------------------
def check_cells(what: str, rows: int, cols: int, max_cells: int = MAX_CELLS) -> None:
    """Refuse a canvas of ``rows`` x ``cols`` token cells over ``max_cells`` with ``ValueError``
    (``what`` names it: "the extended grid"); the one canvas limit of the tasks and of :mod:`arpg.cost`."""
    if rows * cols > max_cells:
        raise ValueError(f"{what} {rows}x{cols} has {rows * cols} cells; at most {max_cells}")


def fit_steps(options: SamplingOptions, n_free: int) -> tuple[SamplingOptions, str | None]:
    """Policy: a task never asks for more steps than cells to decode; ``steps`` above the
    number of free cells becomes one step per cell, with a note saying so."""
    if options.steps > n_free >= 1:
        many = n_free != 1
        return options.replace(steps=n_free), (
            f"only {n_free} token{'s' if many else ''} to decode, so {n_free} step{'s were' if many else ' was'} used"
        )
    return options, None


def decoding_for(task: str, decoding: str | None = None, defaults: Mapping[str, str] | None = None) -> str:
    """``decoding`` checked against :data:`arpg.windows.DECODINGS`; None: ``task``'s entry of
    ``defaults`` (a model's, :attr:`arpg.pipeline.Pipeline.decodings`), else of :data:`DEFAULT_DECODING`."""
    task = check_choice("task", task, DEFAULT_DECODING)
    if decoding is not None:
        return check_choice("decoding", decoding, DECODINGS)
    return (defaults or DEFAULT_DECODING)[task]


def settled(
    pipe: Pipeline, task: str, options: SamplingOptions | None, overrides: Mapping[str, Any], decoding: str | None
) -> tuple[SamplingOptions, str]:
    """A canvas task's options and decoding as it runs them, resolved once at its entry: ``options`` (None:
    the model's, ``pipe.defaults``) with ``overrides`` on top, and ``decoding`` (None: the model's for
    ``task``, ``pipe.decodings``). The layers below take them as they are."""
    return with_overrides(options, overrides, pipe.defaults), decoding_for(task, decoding, pipe.decodings)


# -- known cells -------------------------------------------------------------------------------
def cells_from_mask(mask: np.ndarray, factor: int, dilate: int = 0) -> torch.Tensor:
    """Pixel mask (H, W) bool -> cell mask (H/f, W/f) bool: a cell counts when the mask
    touches any of its pixels; ``dilate`` grows the region by that many cells."""
    t = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    cells = F.max_pool2d(t, factor)
    if dilate > 0:
        cells = F.max_pool2d(cells, 2 * dilate + 1, stride=1, padding=dilate)
    return cells[0, 0] > 0


def outpaint_known(shape: tuple[int, int], left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """The known cells of a (r, c) grid put inside a (top + r + bottom, left + c + right) one: (rows, cols) bool."""
    r, c = shape
    known = torch.zeros((top + r + bottom, left + c + right), dtype=torch.bool)
    known[top : top + r, left : left + c] = True
    return known


def lattice_known(shape: tuple[int, int], rows: int, cols: int) -> torch.Tensor:
    """The known cells of a (r, c) grid spread on a sub-lattice of a (rows, cols) one: cell (i, j) goes to
    (floor(i * rows / r), floor(j * cols / c)). (rows, cols) bool."""
    r, c = shape
    if rows < r or cols < c:
        raise ValueError(f"target grid {rows}x{cols} must not be smaller than the source {r}x{c}")
    known = torch.zeros((rows, cols), dtype=torch.bool)
    known[((torch.arange(r) * rows) // r)[:, None], ((torch.arange(c) * cols) // c)[None, :]] = True
    return known


def _spread(tokens: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """A grid of ``known``'s shape with ``tokens`` (r, c) on its known cells, in raster order, and -1 elsewhere."""
    grid = torch.full(known.shape, -1, dtype=torch.long)
    grid[known] = tokens.reshape(-1).long().cpu()
    return grid


def place(tokens: torch.Tensor, left: int, right: int, top: int, bottom: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Put (r, c) tokens inside a (top + r + bottom, left + c + right) grid.

    Returns (grid tokens (-1 where new), known mask)."""
    known = outpaint_known(tuple(tokens.shape), left, right, top, bottom)
    return _spread(tokens, known), known


def lattice_context(tokens: torch.Tensor, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spread (r, c) tokens on a sub-lattice of a (rows, cols) grid (see :func:`lattice_known`).
    Returns (grid tokens, known mask)."""
    known = lattice_known(tuple(tokens.shape), rows, cols)
    return _spread(tokens, known), known


# -- results -----------------------------------------------------------------------------------
def unchanged(
    pipe: Pipeline,
    img: np.ndarray,
    codes: torch.Tensor,
    seed: int | None,
    note: str,
    options: SamplingOptions,
    decoding: str,
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


def join_notes(*notes: str | None) -> str | None:
    """The notes that are not None, joined with "; " (None when there are none)."""
    return "; ".join(n for n in notes if n) or None
