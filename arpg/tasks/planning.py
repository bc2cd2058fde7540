"""What a task will decode, told before it runs: its :class:`TaskPlan`.

A plan is worked out from shapes alone, by the functions the tasks build their grids with
(:mod:`arpg.tasks.canvas`, :mod:`arpg.tasks.masked`, :mod:`arpg.tasks.context`) and the windows a canvas
decode takes (:func:`arpg.windows.canvas_window`, :func:`arpg.windows.window_parts`): the grid of each
decode, the cells it decodes, its windows, the steps and forward passes, the VQ work. :func:`plan` is the
plan of a task on a pipeline, with the task's own defaults; the ``plan_*`` functions take every setting
resolved and need no pipeline (:mod:`arpg.cost` prices their plans).

Where the cells to decode are not known before the run (an inpainting without its mask, a re-encoding
resize without its seed), the plan counts them as the task would (every cell of the image; the
``regenerate`` fraction) and each window as decoding every cell it reaches first: upper bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from .. import masks
from ..config import ARPGConfig
from ..images import ImageSource, prepare_image, working_size
from ..options import ResizeDefaults, SamplingOptions, with_overrides
from ..pipeline import Pipeline
from ..schedules import token_counts
from ..validation import check_choice, check_int, check_seed
from ..windows import Used, canvas_window, used_by, window_parts
from . import canvas
from .canvas import SIDES
from .context import MAX_CELLS, outpaint_known, settled
from .masked import masked_cells

__all__ = [
    "PLANNED",
    "Decode",
    "TaskPlan",
    "plan",
    "plan_inpaint",
    "plan_outpaint",
    "plan_panorama",
    "plan_resize",
]

PLANNED = ("inpaint", "edit", "outpaint", "panorama", "resize")  # the tasks :func:`plan` tells


@dataclass(frozen=True)
class Decode:
    """One decode of a plan: a grid of token cells and the cells it decodes.

    grid: the (rows, cols) decoded; window: the (rows, cols) of the windows it is decoded in, None for one
    decode of the whole grid (:func:`arpg.windows.canvas_window`); free: the cells it decodes; parts: the
    cells of each decode call, window by window in their order (``(free,)`` for one decode)."""

    grid: tuple[int, int]
    window: tuple[int, int] | None
    free: int
    parts: tuple[int, ...]

    @property
    def cells(self) -> int:
        """The cells of its grid."""
        return self.grid[0] * self.grid[1]


@dataclass(frozen=True)
class TaskPlan:
    """What a task decodes, before it runs (see the module docstring).

    task: its name; decoding: "whole" or "windowed", as it runs; canvas: the (rows, cols) cells of its
    result's image; decodes: its decodes in order (a panorama's rounds, one for the other tasks, none when
    there is nothing to decode: the input comes back); decoded / encoded: the cells the VQ tokenizer turns
    into pixels / tokens, every call together; options: the sampling options, as the task resolves them."""

    task: str
    decoding: str
    canvas: tuple[int, int]
    decodes: tuple[Decode, ...]
    decoded: int
    encoded: int
    options: SamplingOptions

    @property
    def grid(self) -> tuple[int, int]:
        """The (rows, cols) of the result's tokens: the last decode's grid (the canvas when none)."""
        return self.decodes[-1].grid if self.decodes else self.canvas

    @property
    def steps(self) -> int:
        """The steps each decode is asked for, the most of any (one per cell at most), 0 with no decode."""
        return max((min(self.options.steps, d.free) for d in self.decodes), default=0)

    @property
    def forward_passes(self) -> int:
        """Forward passes of every decode call together (one per step)."""
        schedule, passes = self.options.schedule, 0
        for d in self.decodes:
            steps = min(self.options.steps, d.free)
            passes += sum(len(token_counts(n, min(steps, n), schedule)) for n in d.parts)
        return passes

    @property
    def windows(self) -> tuple[int, tuple[int, int]] | None:
        """(count, largest (rows, cols)) of the windows of every decode together; None for whole decodes."""
        if self.decoding == "whole" or not self.decodes:
            return None
        sizes = [d.window or d.grid for d in self.decodes]
        return sum(len(d.parts) for d in self.decodes), (max(r for r, _ in sizes), max(c for _, c in sizes))

    @property
    def used(self) -> Used:
        """The :class:`~arpg.windows.Used` the task's result will record."""
        windows = self.windows
        size, count = (None, None) if windows is None else (windows[1], windows[0])
        return replace(used_by(self.options, self.decoding, size, count), steps=self.steps)


def _decode(
    grid: tuple[int, int], known: torch.Tensor | None, free: int, decoding: str, window: Any, cfg: ARPGConfig | None
) -> Decode:
    """The :class:`Decode` of ``free`` cells of ``grid`` (``known``: its context, None when not known yet)."""
    size = canvas_window(decoding, grid, window, cfg)
    if size is None:
        return Decode(grid, None, free, (free,))
    return Decode(grid, size, free, tuple(window_parts(*grid, size, known)[1]))


# -- the plans, every setting resolved --------------------------------------------------------
def plan_inpaint(
    grid: tuple[int, int], options: SamplingOptions, cells: torch.Tensor | None = None, task: str = "inpaint"
) -> TaskPlan:
    """An inpainting (or an edit, ``task``) of an image of ``grid`` cells: one decode of its own grid,
    ``cells`` ((rows, cols) bool, None: every cell) decoded; the image encoded and decoded once."""
    free = grid[0] * grid[1] if cells is None else int(cells.sum())
    decode = Decode(tuple(grid), None, free, (free,))
    return TaskPlan(task, "whole", tuple(grid), (decode,), grid[0] * grid[1], grid[0] * grid[1], options)


def plan_outpaint(
    grid: tuple[int, int],
    options: SamplingOptions,
    decoding: str,
    sides: tuple[int, int, int, int],
    window: Any = None,
    cfg: ARPGConfig | None = None,
    max_cells: int = MAX_CELLS,
) -> TaskPlan:
    """An outpaint of an image of ``grid`` cells by ``sides`` (left, right, top, bottom) cells: the input
    encoded, the extended grid decoded once (whole or in windows), to pixels once."""
    size = canvas.extended_size(grid, sides, max_cells)
    cells = grid[0] * grid[1]
    if size == tuple(grid):
        return TaskPlan("outpaint", decoding, tuple(grid), (), cells, cells, options)
    known = outpaint_known(grid, *sides)
    decode = _decode(size, known, size[0] * size[1] - cells, decoding, window, cfg)
    return TaskPlan("outpaint", decoding, size, (decode,), size[0] * size[1], cells, options)


def plan_panorama(
    grid: tuple[int, int],
    options: SamplingOptions,
    decoding: str,
    times: int,
    side: str,
    window: Any = None,
    cfg: ARPGConfig | None = None,
    max_cells: int = MAX_CELLS,
) -> TaskPlan:
    """A panorama of an image of ``grid`` cells: one decode per round (:func:`arpg.tasks.canvas.panorama_rounds`).
    "whole": each round encodes its kept cells and decodes its grid to pixels; "windowed": the input encoded
    once, each round's grid decoded to pixels and the canvas once at the end."""
    times = canvas.check_panorama(times, side)
    size = canvas.panorama_size(grid, times, side, max_cells)
    vertical = side in ("top", "bottom")
    along, across = (grid[0], grid[1]) if vertical else (grid[1], grid[0])
    trained = canvas.trained_extent(across, vertical, window, cfg)
    rounds = canvas.panorama_rounds(along, times, max(1, grid[0] // 2), trained)
    cells = grid[0] * grid[1]
    if not rounds:
        return TaskPlan("panorama", decoding, tuple(grid), (), cells, cells, options)
    decodes = []
    for keep, add in rounds:  # the round's grid: the kept cells and the new ones, as the task places them
        part = (keep, across) if vertical else (across, keep)
        known = outpaint_known(part, *(add if s == side else 0 for s in SIDES))
        decodes.append(_decode(tuple(known.shape), known, add * across, decoding, window, cfg))
    grids = sum(d.cells for d in decodes)
    if decoding == "whole":
        encoded = sum(keep * across for keep, _ in rounds)
        return TaskPlan("panorama", decoding, size, tuple(decodes), grids, encoded, options)
    return TaskPlan("panorama", decoding, size, tuple(decodes), grids + size[0] * size[1], cells, options)


def plan_resize(
    grid: tuple[int, int],
    options: SamplingOptions,
    decoding: str,
    settings: ResizeDefaults,
    seed: int | None = None,
    window: Any = None,
    cfg: ARPGConfig | None = None,
    max_cells: int = MAX_CELLS,
) -> TaskPlan:
    """A resolution change of an image of ``grid`` cells with ``settings``: the bigger grid decoded once
    (whole or in windows), to pixels once; "lattice" encodes the input, "reencode" the upsampled image.
    seed: the task's (a re-encode's cells are drawn from it); None: not known yet (see the module docstring)."""
    size = canvas.resize_size(grid, settings.scale, max_cells)
    cells, total = grid[0] * grid[1], size[0] * size[1]
    known = canvas.resize_known(grid, size, settings, seed)
    lattice = settings.strategy == "lattice"
    free = total - cells if lattice else canvas.regenerated(size, settings.regenerate)
    if free == 0:  # the lattice on the image's own grid
        return TaskPlan("resize", decoding, size, (), total, cells, options)
    decode = _decode(size, known, free, decoding, window, cfg)
    return TaskPlan("resize", decoding, size, (decode,), total, cells if lattice else total, options)


# -- the plan of a task on a pipeline -----------------------------------------------------------
def _is_shape(image: Any) -> bool:
    return isinstance(image, tuple) and len(image) in (2, 3) and all(isinstance(v, (int, np.integer)) for v in image)


def image_grid(pipe: Pipeline, image: Any) -> tuple[int, int]:
    """The (rows, cols) cells a task works ``image`` on (an image, or its (height, width) shape)."""
    rows, f = pipe.grid[0], pipe.factor
    if _is_shape(image):
        height, width = check_int("image height", image[0], 1), check_int("image width", image[1], 1)
        return rows, working_size(width, height, f, rows)[0] // f
    img = prepare_image(image, f, rows)
    return img.shape[0] // f, img.shape[1] // f


def _inpaint(
    pipe: Pipeline,
    image: Any,
    options: SamplingOptions | None,
    task: str,
    mask: ImageSource | None = None,
    dilate: int = 0,
    region: str | None = None,
    seed: Any = None,  # an inpainting's cells do not depend on it
    **overrides: Any,
) -> TaskPlan:
    options, dilate = with_overrides(options, overrides, pipe.defaults), check_int("dilate", dilate, 0, 64)
    if mask is None:
        return plan_inpaint(image_grid(pipe, image), options, None, task)
    if _is_shape(image):
        raise ValueError("the plan of an inpainting with its mask needs the image itself, not its shape")
    img = prepare_image(image, pipe.factor, pipe.grid[0])
    if region is None:  # the task's own
        region = masks.EDIT_REGION if task == "edit" else "painted"
    cells = masked_cells(img, mask, pipe.factor, region, dilate)[1]
    return plan_inpaint((img.shape[0] // pipe.factor, img.shape[1] // pipe.factor), options, cells, task)


def _canvas_task(
    pipe: Pipeline, task: str, image: Any, options: SamplingOptions | None, settings: dict[str, Any]
) -> TaskPlan:
    """:func:`plan` of the canvas tasks: ``settings`` are the task's keyword arguments."""
    decoding, window = settings.pop("decoding", None), settings.pop("window", None)
    max_cells, seed = settings.pop("max_cells", MAX_CELLS), settings.pop("seed", None)
    named = {"outpaint": SIDES, "panorama": ("times", "side"), "resize": ("scale", "strategy", "regenerate")}[task]
    asked = {k: settings.pop(k) for k in named if k in settings}
    options, decoding = settled(pipe, task, options, settings, decoding)
    common = (window, pipe.model.cfg, max_cells)
    if task == "outpaint":
        sides = canvas.check_sides(*(asked.get(k, 0) for k in SIDES))
        return plan_outpaint(image_grid(pipe, image), options, decoding, sides, *common)
    if task == "panorama":
        times, side = asked.get("times", 4), asked.get("side", "right")
        canvas.check_panorama(times, side)
        return plan_panorama(image_grid(pipe, image), options, decoding, times, side, *common)
    chosen, grid = canvas.resize_settings(pipe, *(asked.get(k) for k in named)), image_grid(pipe, image)
    return plan_resize(grid, options, decoding, chosen, None if seed is None else check_seed(seed), *common)


def plan(pipe: Pipeline, task: str, image: Any, options: SamplingOptions | None = None, **settings: Any) -> TaskPlan:
    """The :class:`TaskPlan` of ``task`` (one of :data:`PLANNED`) on ``pipe``, run on ``image`` (an image, or
    its (height, width) shape) with ``settings``: the task's own keyword arguments that shape its decode
    (inpaint/edit: mask, dilate, region; outpaint: left, right, top, bottom; panorama: times, side; resize:
    scale, strategy, regenerate; the canvas tasks: decoding, window, max_cells; any: seed, which only a
    re-encoding resize's cells depend on) and SamplingOptions fields, each left out as the task leaves it.
    Nothing is decoded or encoded; the settings are checked as the task checks them (``ValueError``)."""
    task = check_choice("task", task, PLANNED)
    if task in ("inpaint", "edit"):
        return _inpaint(pipe, image, options, task, **settings)
    return _canvas_task(pipe, task, image, options, dict(settings))
