"""What one request will cost, before it runs, and a ceiling on it.

The unit is a *cell-pass*: one forward pass over one cell of the grid for one image (the
guidance branch counts as a second image). A request that decodes ``cells`` grid cells in
``forward_passes`` passes for ``batch`` images, and turns ``decoded`` cells into pixels and
``encoded`` cells of pixels into tokens with the VQ tokenizer, costs::

    units = batch x ((2 with guidance) x (forward_passes x cells + QUERY_WEIGHT x queries)
                     + DECODE_WEIGHT x decoded + ENCODE_WEIGHT x encoded)
            + PASS_WEIGHT x forward_passes

``queries`` are the target queries run through the model: one per decoded cell for the fixed
orders, but every remaining cell at every step for an adaptive order that scores them all
(:meth:`arpg.orders.OrderPolicy.queries`; its extra queries make it several times dearer). Every VQ
decode and encode of a request counts (a panorama decodes each round's grid and, at the end, its
canvas; a re-encoding resize encodes the whole bigger image). ``PASS_WEIGHT`` is a forward
pass's own work whatever its size (every layer's kernels and their Python): a windowed canvas or
a panorama runs thousands of small passes, and without it they cost several times what their cells say.
The weights are fitted on the worst requests of every endpoint (``scripts/worst_requests.py``), and the
default ceiling :data:`CPU_MAX_COST` is chosen from that fit: docs/reliability.md ("Work: a cost estimate
and a ceiling") has the CPU time of a unit, of a request at the ceiling and of every endpoint's worst
request. :data:`GPU_MAX_COST` is the default on CUDA; ``ARPG_MAX_COST`` (an integer) overrides both,
for example on a GPU Space serving a released model.

:func:`for_options` turns :class:`~arpg.options.SamplingOptions` and a task's geometry into a
:class:`Cost`. The geometry is the task's own plan (:class:`arpg.tasks.TaskPlan`: its grids, windows, rounds
and VQ work, worked out by the code the task builds its grids with, :mod:`arpg.tasks.planning`); this module
only prices it (:func:`plan_cost`), as an upper bound: every window a full decode, every round as its biggest.
:func:`task_cost` prices a task on a grid of cells (and refuses a canvas over :data:`arpg.tasks.MAX_CELLS`,
as the tasks do); :func:`check_cost` refuses a request over the ceiling with a sentence naming cheaper
settings; :func:`check_request` is the one call a request handler makes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from .options import DEFAULT_RESIZE, ResizeDefaults, SamplingOptions
from .orders import order_policy
from .pipeline import Pipeline
from .schedules import token_counts
from .tasks import TaskPlan, decoding_for, plan
from .tasks.canvas import SIDES, check_sides
from .tasks.planning import image_grid, plan_inpaint, plan_outpaint, plan_panorama, plan_resize
from .validation import check_choice, check_int
from .windows import plan_windows

__all__ = [
    "QUERY_WEIGHT",
    "DECODE_WEIGHT",
    "ENCODE_WEIGHT",
    "CPU_MAX_COST",
    "GPU_MAX_COST",
    "COST_ENV",
    "TASKS",
    "Cost",
    "Geometry",
    "estimate",
    "for_options",
    "task_plan",
    "plan_cost",
    "task_cost",
    "max_cost",
    "check_cost",
    "check_task_cost",
    "check_request",
]

QUERY_WEIGHT = 16  # a query, in cell-passes (fitted on the shipped model, CPU)
DECODE_WEIGHT = 16  # a cell decoded to pixels by the VQ decoder, in cell-passes (fitted on both shipped models, CPU)
ENCODE_WEIGHT = 8  # a cell of pixels encoded to a token, in cell-passes (the encoder is the lighter half)
PASS_WEIGHT = 1750  # a forward pass's fixed work in cell-passes, whatever its batch (fitted: shipped model)
CPU_MAX_COST = 3_000_000  # the shipped model on 2 CPU cores: its CPU time in docs/reliability.md ("Work")
GPU_MAX_COST = 40_000_000
COST_ENV = "ARPG_MAX_COST"
TASKS = ("generate", "inpaint", "outpaint", "panorama", "resize")


@dataclass(frozen=True)
class Cost:
    """The estimated work of one request (see the module docstring for the formula)."""

    cells: int  # cells of the grid each forward pass can reach
    forward_passes: int  # all rounds together
    batch: int  # images
    queries: int  # target queries per image, all rounds together
    guidance: bool  # classifier-free guidance doubles the batch
    decoded: int = 0  # cells decoded to pixels per image, every VQ decode together
    encoded: int = 0  # cells encoded from pixels per image, every VQ encode together

    @property
    def units(self) -> int:
        """Cell-passes with guidance, queries, VQ decodes and encodes and the passes' own work."""
        model = (2 if self.guidance else 1) * (self.forward_passes * self.cells + QUERY_WEIGHT * self.queries)
        per_image = model + DECODE_WEIGHT * self.decoded + ENCODE_WEIGHT * self.encoded
        return self.batch * per_image + PASS_WEIGHT * self.forward_passes

    def describe(self) -> str:
        """``"4.2 M units (4096 cells x 32 forward passes x 2 with guidance, 4,096 queries, 4,096 cells
        decoded to pixels)"``."""
        images = f" x {self.batch} images" if self.batch != 1 else ""
        cfg = " x 2 with guidance" if self.guidance else ""
        vq = f", {self.decoded:,} cells decoded to pixels" if self.decoded else ""
        vq += f", {self.encoded:,} encoded" if self.encoded else ""
        return (
            f"{_millions(self.units)} units ({self.cells} cells x {self.forward_passes} forward passes{images}"
            f"{cfg}, {self.queries:,} queries{vq})"
        )


class Geometry(NamedTuple):
    """What a task decodes, per image: ``rounds`` decodes of ``free`` of ``cells`` grid cells (upper
    bounds where rounds differ), and the cells it ``decoded`` to pixels and ``encoded`` from them."""

    cells: int
    free: int
    rounds: int = 1
    decoded: int = 0
    encoded: int = 0


def _millions(units: float) -> str:
    return f"{units / 1e6:.1f} M" if units >= 100_000 else f"{units:,.0f}"


def estimate(
    cells: int,
    forward_passes: int,
    batch: int = 1,
    queries: int | None = None,
    *,
    guidance: bool = True,
    decoded: int = 0,
    encoded: int = 0,
) -> Cost:
    """The cost of ``forward_passes`` passes over ``cells`` cells for ``batch`` images;
    ``queries`` defaults to ``cells`` (every cell queried once, as the fixed orders do); ``decoded`` /
    ``encoded``: cells turned into pixels / tokens by the VQ tokenizer, per image."""
    return Cost(
        check_int("cells", cells, 1),
        check_int("forward_passes", forward_passes, 1),
        check_int("batch", batch, 1),
        check_int("queries", cells if queries is None else queries, 0),
        bool(guidance),
        check_int("decoded cells", decoded, 0),
        check_int("encoded cells", encoded, 0),
    )


def _counts(options: SamplingOptions, n_free: int) -> list[int]:
    """Cells decoded at each step, with the tasks' rule of at most one step per free cell."""
    return token_counts(n_free, min(options.steps, n_free), options.schedule)


def for_options(
    options: SamplingOptions,
    cells: int,
    n_free: int | None = None,
    batch: int = 1,
    rounds: int = 1,
    decoded: int = 0,
    encoded: int = 0,
) -> Cost:
    """The cost of decoding ``n_free`` of ``cells`` grid cells (default all) with ``options``,
    ``rounds`` times (a panorama's rounds, a canvas's windows) for ``batch`` images, with ``decoded``
    and ``encoded`` cells of VQ work per image."""
    cells = check_int("cells", cells, 1)
    n_free = cells if n_free is None else check_int("free cells", n_free, 1, cells)
    counts = _counts(options, n_free)
    queries = order_policy(options.order).queries(counts)  # every remaining cell at every step, or each once
    guidance = options.cfg_scale != 1.0
    return estimate(
        cells, rounds * len(counts), batch, rounds * queries, guidance=guidance, decoded=decoded, encoded=encoded
    )


def _geometry(plan: TaskPlan, windowed: bool = True) -> Geometry:
    """What :func:`plan_cost` prices of ``plan``: its biggest decode, as many times as it has decodes. A decode
    in windows (``windowed``; False: trained sizes not known, each decode priced as one of its grid) counts
    every window :func:`arpg.windows.plan_windows` lays on its grid as a full decode of a window-sized grid
    (the upper bound, whatever its context); a plan with nothing to decode, one pass over one cell."""
    if not plan.decodes:
        return Geometry(plan.canvas[0] * plan.canvas[1], 1, 1, plan.decoded, plan.encoded)
    biggest = max(plan.decodes, key=lambda d: d.cells)
    if windowed and biggest.window is not None:
        cells = biggest.window[0] * biggest.window[1]
        windows = len(plan_windows(*biggest.grid, biggest.window))
        return Geometry(cells, cells, len(plan.decodes) * windows, plan.decoded, plan.encoded)
    free = max(d.free for d in plan.decodes)
    return Geometry(biggest.cells, free, len(plan.decodes), plan.decoded, plan.encoded)


def _resize_asked(params: dict[str, Any]) -> ResizeDefaults:
    """A resize request's settings as priced: ``scale`` left out is :data:`DEFAULT_RESIZE`'s; ``strategy``
    left out is the dearer "reencode", and ``regenerate`` left out is every cell."""
    strategy, regenerate = params.get("strategy"), params.get("regenerate")
    return DEFAULT_RESIZE.replace(
        scale=params.get("scale"),
        strategy="reencode" if strategy is None else strategy,
        regenerate=1.0 if regenerate is None else regenerate,
    )


def task_plan(
    task: str,
    options: SamplingOptions,
    grid: tuple[int, int],
    window: Any = None,
    decoding: str | None = None,
    **params: Any,
) -> TaskPlan:
    """The :class:`~arpg.tasks.TaskPlan` :func:`task_cost` prices: ``task`` (a task of :data:`TASKS` but
    "generate") on an image of ``grid`` = (rows, cols) cells, planned by :mod:`arpg.tasks.planning` with
    ``window`` as its trained sizes (None: not known; planned on the ``rows`` x ``rows`` native grid, which
    sizes a panorama's rounds, and :func:`task_cost` prices each decode whole) and ``decoding`` (None:
    :func:`arpg.tasks.decoding_for`'s). params: as in
    :func:`task_cost`; inpainting plans every cell (the mask can only lower it), a resize's seed is not
    known (its cells decoded again counted, not placed)."""
    task = check_choice("task", task, TASKS[1:])
    grid = check_int("rows", grid[0], 1), check_int("cols", grid[1], 1)
    if task == "inpaint":
        return plan_inpaint(grid, options)
    decoding = decoding_for(task, decoding)
    sizes = (grid[0], grid[0]) if window is None else window
    if task == "outpaint":
        sides = check_sides(*(params.get(k, 0) for k in SIDES))
        return plan_outpaint(grid, options, decoding, sides, sizes)
    if task == "panorama":
        return plan_panorama(grid, options, decoding, params.get("times", 4), params.get("side", "right"), sizes)
    return plan_resize(grid, options, decoding, _resize_asked(params), None, sizes)


def _task_geometry(
    task: str, options: SamplingOptions, grid: tuple[int, int], window: Any, decoding: str | None, params: dict
) -> Geometry:
    """The :class:`Geometry` :func:`task_cost` prices (see there)."""
    if check_choice("task", task, TASKS) == "generate":
        rows, cols = check_int("rows", grid[0], 1), check_int("cols", grid[1], 1)
        return Geometry(rows * cols, rows * cols, 1, rows * cols, 0)
    return _geometry(task_plan(task, options, grid, window, decoding, **params), window is not None)


def plan_cost(plan: TaskPlan, batch: int = 1) -> Cost:
    """The cost of ``plan`` (:func:`arpg.tasks.plan`) for ``batch`` images, every window a full decode."""
    return for_options(plan.options, *_unpack(_geometry(plan), batch))


def task_cost(
    task: str,
    options: SamplingOptions,
    grid: tuple[int, int],
    batch: int = 1,
    window: Any = None,
    decoding: str | None = None,
    **params: Any,
) -> Cost:
    """An upper bound of the cost of one task of :mod:`arpg.tasks` on an image of ``grid`` =
    (rows, cols) token cells (the native grid for ``generate``), VQ decodes and encodes included.

    params: outpaint ``left/right/top/bottom`` (cells); panorama ``times`` and ``side``; resize
    ``scale``, ``strategy`` and ``regenerate`` (left out: priced as the dearer strategy). Inpainting
    counts every cell as free (the mask can only lower it). With ``decoding="windowed"`` (the tasks'
    default, :func:`arpg.tasks.decoding_for`) and trained sizes ``window`` smaller than the canvas,
    every window of :func:`arpg.windows.plan_windows` counts as a full decode of a window-sized grid.
    A canvas over :data:`arpg.tasks.MAX_CELLS` is refused (``ValueError``), as the tasks refuse it."""
    return for_options(options, *_unpack(_task_geometry(task, options, grid, window, decoding, params), batch))


def _unpack(geometry: Geometry, batch: int) -> tuple[int, int, int, int, int, int]:
    """The arguments of :func:`for_options` after ``options``."""
    return geometry.cells, geometry.free, batch, geometry.rounds, geometry.decoded, geometry.encoded


def max_cost(device: Any = None) -> int:
    """The ceiling: ``$ARPG_MAX_COST`` when set, else :data:`GPU_MAX_COST` on CUDA and
    :data:`CPU_MAX_COST` elsewhere (``device``: a ``torch.device`` or its name)."""
    text = os.environ.get(COST_ENV, "").strip()
    if text:
        return check_int(COST_ENV, text.replace("_", ""), 1)
    kind = getattr(device, "type", str(device or "cpu"))
    return GPU_MAX_COST if kind.startswith("cuda") else CPU_MAX_COST


def _cheaper(options: SamplingOptions, geometry: Geometry, batch: int, ceiling: int) -> list[str]:
    """Settings that would fit under ``ceiling``, in the order a user would try them."""

    def fits(opts: SamplingOptions, b: int = batch) -> bool:
        return for_options(opts, *_unpack(geometry, b)).units <= ceiling

    tips = []
    policy = order_policy(options.order)
    if policy.queries_remaining and fits(options.replace(order="random")):
        tips.append(f"the random order instead of {policy.label}")
    fitting = [s for s in range(1, min(options.steps, geometry.free)) if fits(options.replace(steps=s))]
    if fitting and not options.schedule.startswith("k="):
        tips.append(f"at most {fitting[-1]} steps")
    if batch > 1:
        fewer = [b for b in range(1, batch) if fits(options, b)]
        if fewer:
            tips.append(f"at most {fewer[-1]} images")
    if options.cfg_scale != 1.0 and fits(options.replace(cfg_scale=1.0)):
        tips.append("guidance 1 (no guidance branch)")
    tips.append("a smaller image, scale or extension")
    return tips


def check_cost(
    options: SamplingOptions,
    cells: int,
    n_free: int | None = None,
    batch: int = 1,
    rounds: int = 1,
    ceiling: int | None = None,
    decoded: int = 0,
    encoded: int = 0,
) -> Cost:
    """:func:`for_options`, refused with ``ValueError`` over ``ceiling`` (default :func:`max_cost`);
    the message says what it would cost and names cheaper settings that fit."""
    cost = for_options(options, cells, n_free, batch, rounds, decoded, encoded)
    ceiling = max_cost() if ceiling is None else check_int("ceiling", ceiling, 1)
    if cost.units > ceiling:
        geometry = Geometry(cost.cells, cells if n_free is None else n_free, rounds, decoded, encoded)
        tips = _cheaper(options, geometry, batch, ceiling)
        raise ValueError(
            f"this request is too expensive for this server: about {cost.describe()}, over the "
            f"limit of {_millions(ceiling)}; try {', or '.join(tips)}"
        )
    return cost


def check_task_cost(
    task: str,
    options: SamplingOptions,
    grid: tuple[int, int],
    batch: int = 1,
    ceiling: int | None = None,
    window: Any = None,
    decoding: str | None = None,
    **params: Any,
) -> Cost:
    """:func:`task_cost`, refused over the ceiling as :func:`check_cost` does (one call per handler)."""
    return _checked(options, _task_geometry(task, options, grid, window, decoding, params), batch, ceiling)


def _checked(options: SamplingOptions, g: Geometry, batch: int, ceiling: int | None) -> Cost:
    return check_cost(options, g.cells, g.free, batch, g.rounds, ceiling, g.decoded, g.encoded)


def check_request(
    pipe: Pipeline, task: str, options: SamplingOptions, image: Any = None, batch: int = 1, **params: Any
) -> Cost:
    """The one call a request handler makes before decoding: the task's own plan on ``pipe``
    (:func:`arpg.tasks.plan`: the model's decoding, resize settings and trained sizes where ``params``
    name none) on ``pipe``'s native grid, or on the grid ``image`` (an (H, W, ...) array or a PIL image)
    becomes, priced as :func:`task_cost` prices it and refused over the ceiling of ``pipe``'s device
    (:func:`max_cost`) as :func:`check_cost` refuses."""
    shape = (pipe.grid[0] * pipe.factor, pipe.grid[1] * pipe.factor)
    if image is not None:
        shape = image.size[::-1] if isinstance(image, Image.Image) else np.asarray(image).shape[:2]
    shape = tuple(int(n) for n in shape)
    if check_choice("task", task, TASKS) == "generate":
        geometry = _task_geometry(task, options, image_grid(pipe, shape), None, None, {})
    else:
        geometry = _geometry(plan(pipe, task, shape, options, **params))
    return _checked(options, geometry, batch, max_cost(pipe.device))
