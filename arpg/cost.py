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
(:meth:`arpg.orders.OrderPolicy.queries`; its extra queries make it 5-20x dearer). Every VQ
decode and encode of a request counts (a panorama decodes each round's grid and, at the end, its
canvas; a re-encoding resize encodes the whole bigger image). ``PASS_WEIGHT`` is a forward
pass's own work whatever its size (every layer's kernels and their Python): a windowed canvas or
a panorama runs thousands of small passes, and without it they cost 3-4x what their cells say.
Fitted on the worst requests of every endpoint (``scripts/worst_requests.py``,
docs/reliability.md): the shipped model takes about 5.3 microseconds of CPU a unit on this
project's 2-core machine, so the default ceiling of :data:`CPU_MAX_COST` keeps one request near
16 CPU-seconds there. :data:`GPU_MAX_COST` is the default on CUDA; ``ARPG_MAX_COST`` (an
integer) overrides both, for example on a GPU Space serving a released model.

:func:`for_options` turns :class:`~arpg.options.SamplingOptions` and a task's geometry into a
:class:`Cost`; :func:`task_cost` gives that geometry for each task of :mod:`arpg.tasks` (and refuses
a canvas over :data:`arpg.tasks.MAX_CELLS`, as the tasks do); :func:`check_cost` refuses a request
over the ceiling with a sentence naming cheaper settings; :func:`check_request` is the one call a
request handler makes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from .images import working_size
from .options import DEFAULT_RESIZE, SamplingOptions
from .orders import order_policy
from .schedules import token_counts
from .task_core import DEFAULT_DECODING, decoding_for
from .tasks import RESIZE_STRATEGIES, SIDES, check_cells, resize_settings
from .validation import check_choice, check_int, check_number
from .windows import pick_window, plan_windows

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
    "task_geometry",
    "task_cost",
    "max_cost",
    "check_cost",
    "check_task_cost",
    "check_request",
]

QUERY_WEIGHT = 16  # a query costs about as much as 16 cell-passes (fitted on the shipped model, CPU)
DECODE_WEIGHT = 16  # a cell decoded to pixels by the VQ decoder, in cell-passes (fitted on both shipped models, CPU)
ENCODE_WEIGHT = 8  # a cell of pixels encoded to a token, in cell-passes (the encoder is the lighter half)
PASS_WEIGHT = 1750  # a forward pass's fixed work in cell-passes, whatever its batch (fitted: shipped model)
CPU_MAX_COST = 3_000_000  # about 16 CPU-seconds for one request of the shipped model on 2 CPU cores
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


def _in_windows(rows: int, cols: int, window: Any) -> tuple[int, int]:
    """(cells of each decode, decodes) of a ``rows`` x ``cols`` grid decoded in windows of ``window``
    (every window counted as a full decode, the upper bound), or (rows x cols, 1) when it fits one."""
    wr, wc = pick_window(rows, cols, window)
    if (wr, wc) == (rows, cols):
        return rows * cols, 1
    return wr * wc, len(plan_windows(rows, cols, (wr, wc)))


def _panorama(rows: int, cols: int, params: dict[str, Any], window: Any, decoding: str) -> Geometry:
    """The rounds of :func:`arpg.tasks.panorama` on an image of ``rows`` x ``cols`` cells, played out as
    the task plays them: each round decodes the last cells along the growing side and the new ones, a
    grid of a trained size (``window``; None: the ``rows`` x ``rows`` native grid). Windowed rounds decode
    their grid to pixels and the canvas once at the end; whole rounds re-encode their context, and decode
    their grid."""
    times = check_int("times", params.get("times", 4), 1, 8)
    side = check_choice("side", params.get("side", "right"), SIDES)
    vertical = side in ("top", "bottom")
    along, across = (rows, cols) if vertical else (cols, rows)
    check_cells("the panorama", *((along * times, across) if vertical else (across, along * times)))
    trained_size = (rows, rows) if window is None else window
    trained = pick_window(4096, across, trained_size)[0] if vertical else pick_window(across, 4096, trained_size)[1]
    step, length, grids = max(1, rows // 2), along, []
    while length < along * times:
        add = min(step, along * times - length)
        grids.append((min(max(1, trained - add), length), add))  # (context, new) cells along the growing side
        length += add
    if not grids:  # times 1: the input, encoded and decoded once
        return Geometry(rows * cols, 1, 1, rows * cols, rows * cols)
    biggest = max(k + a for k, a in grids)
    cells, free = biggest * across, max(a for _, a in grids) * across
    decoded = sum((k + a) * across for k, a in grids)
    if decoding == "whole":
        return Geometry(cells, free, len(grids), decoded, sum(k * across for k, _ in grids))
    if window is not None:  # a round wider than the trained grids is itself decoded in windows
        shape = (biggest, across) if vertical else (across, biggest)
        cells, windows = _in_windows(*shape, window)
        free = cells if windows > 1 else free
        return Geometry(cells, free, len(grids) * windows, decoded + along * times * across, rows * cols)
    return Geometry(cells, free, len(grids), decoded + along * times * across, rows * cols)


def _resize(rows: int, cols: int, params: dict[str, Any]) -> tuple[int, int, int, int]:
    """(rows, cols, free cells, encoded cells) of :func:`arpg.tasks.resize`. "lattice" decodes the new
    cells and encodes the input; "reencode" encodes the whole upsampled image and decodes a
    ``regenerate`` fraction of it; with no ``strategy`` (or no ``regenerate``) the dearer bound: every
    cell of the bigger grid encoded and decoded again."""
    scale = check_number("scale", params.get("scale", DEFAULT_RESIZE.scale), 1.0, 4.0)
    R, C = round(rows * scale), round(cols * scale)
    check_cells("the target grid", R, C)
    strategy = params.get("strategy")
    if strategy is not None and check_choice("strategy", strategy, RESIZE_STRATEGIES) == "lattice":
        return R, C, max(1, R * C - rows * cols), rows * cols
    regenerate = params.get("regenerate")
    regenerate = 1.0 if regenerate is None else check_number("regenerate", regenerate, 0.0, 1.0, lo_open=True)
    return R, C, max(1, round(regenerate * R * C)), R * C


def _outpaint(rows: int, cols: int, params: dict[str, Any]) -> tuple[int, int, int, int]:
    """(rows, cols, free cells, encoded cells) of :func:`arpg.tasks.outpaint`."""
    left, right, top, bottom = (check_int(k, params.get(k, 0), 0) for k in ("left", "right", "top", "bottom"))
    R, C = rows + top + bottom, cols + left + right
    check_cells("the extended grid", R, C)
    return R, C, max(1, R * C - rows * cols), rows * cols


def task_geometry(
    task: str, grid: tuple[int, int], window: Any = None, decoding: str | None = None, **params: Any
) -> Geometry:
    """The :class:`Geometry` of ``task`` on an image of ``grid`` = (rows, cols) cells (see :func:`task_cost`)."""
    check_choice("task", task, TASKS)
    rows, cols = check_int("rows", grid[0], 1), check_int("cols", grid[1], 1)
    if task in ("generate", "inpaint"):
        return Geometry(rows * cols, rows * cols, 1, rows * cols, 0 if task == "generate" else rows * cols)
    decoding = decoding_for(task, decoding)
    if task == "panorama":
        return _panorama(rows, cols, params, window, decoding)
    R, C, free, encoded = (_outpaint if task == "outpaint" else _resize)(rows, cols, params)
    if window is not None and decoding == "windowed":
        cells, windows = _in_windows(R, C, window)
        if windows > 1:
            return Geometry(cells, cells, windows, R * C, encoded)
    return Geometry(R * C, free, 1, R * C, encoded)


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
    return for_options(options, *_unpack(task_geometry(task, grid, window, decoding, **params), batch))


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
    g = task_geometry(task, grid, window, decoding, **params)
    return check_cost(options, g.cells, g.free, batch, g.rounds, ceiling, g.decoded, g.encoded)


def check_request(
    pipe: Any, task: str, options: SamplingOptions, image: Any = None, batch: int = 1, **params: Any
) -> Cost:
    """The one call a request handler makes before decoding: :func:`check_task_cost` for ``task`` on
    ``pipe``'s native grid, or on the grid ``image`` (an (H, W, ...) array or a PIL image) becomes,
    with the ceiling of ``pipe``'s device (:func:`max_cost`) and, for a canvas task, ``pipe``'s decoding
    unless ``decoding`` names one."""
    rows, factor = pipe.grid[0], pipe.factor
    grid = tuple(pipe.grid)
    if image is not None:
        width, height = image.size if isinstance(image, Image.Image) else np.asarray(image).shape[1::-1]
        grid = (rows, working_size(width, height, factor, rows)[0] // factor)
    if task in DEFAULT_DECODING:
        params["decoding"] = decoding_for(task, params.get("decoding"), pipe.decodings)
    if task == "resize":  # the settings left out are the model's
        names = ("scale", "strategy", "regenerate")
        settings = resize_settings(pipe, *(params.get(k) for k in names))
        params.update({k: getattr(settings, k) for k in names})
    return check_task_cost(
        task, options, grid, batch, ceiling=max_cost(pipe.device), window=list(pipe.model.cfg.trained_sizes), **params
    )
