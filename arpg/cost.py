"""What one request will cost, before it runs, and a ceiling on it.

The unit is a *cell-pass*: one forward pass over one cell of the grid for one image (the
guidance branch counts as a second image). A decode of ``cells`` grid cells in
``forward_passes`` passes for ``batch`` images costs::

    units = batch x (2 with guidance) x (forward_passes x cells + QUERY_WEIGHT x queries)

``queries`` are the target queries run through the model: one per decoded cell for the fixed
orders, but every remaining cell at every step for the confidence-first order (its extra
queries make it 5-20x dearer). On this project's 2-core CPU machine the shipped model runs at
about 10-25 microseconds a unit on one thread (docs/reliability.md has the measurements), so
the default ceiling of :data:`CPU_MAX_COST` (2 M units) keeps one request under about 30 s
there. :data:`GPU_MAX_COST` is the default on CUDA; ``ARPG_MAX_COST`` (an integer) overrides
both, for example on a GPU Space serving a released model.

:func:`for_options` turns :class:`~arpg.options.SamplingOptions` and a task's geometry into a
:class:`Cost`; :func:`task_cost` gives that geometry for each task of :mod:`arpg.tasks`;
:func:`check_cost` refuses a request over the ceiling with a sentence naming cheaper settings;
:func:`check_request` is the one call a request handler makes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .images import working_size
from .options import SamplingOptions
from .schedules import token_counts
from .task_core import DEFAULT_DECODING, decoding_for
from .validation import check_choice, check_int
from .windows import pick_window, plan_windows

__all__ = [
    "QUERY_WEIGHT",
    "CPU_MAX_COST",
    "GPU_MAX_COST",
    "COST_ENV",
    "TASKS",
    "Cost",
    "estimate",
    "for_options",
    "task_cost",
    "max_cost",
    "check_cost",
    "check_task_cost",
    "check_request",
]

QUERY_WEIGHT = 16  # a query costs about as much as 16 cell-passes (fitted on the shipped model, CPU)
CPU_MAX_COST = 2_000_000  # about 30 s for one request of the shipped model on 2 CPU cores
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

    @property
    def units(self) -> int:
        """Cell-passes, guidance and the weight of queries included."""
        return (
            self.batch * (2 if self.guidance else 1) * (self.forward_passes * self.cells + QUERY_WEIGHT * self.queries)
        )

    def describe(self) -> str:
        """``"4.2 M units (4096 cells x 32 forward passes x 2 with guidance, 4,096 queries)"``."""
        images = f" x {self.batch} images" if self.batch != 1 else ""
        cfg = " x 2 with guidance" if self.guidance else ""
        return (
            f"{_millions(self.units)} units ({self.cells} cells x {self.forward_passes} forward passes{images}"
            f"{cfg}, {self.queries:,} queries)"
        )


def _millions(units: float) -> str:
    return f"{units / 1e6:.1f} M" if units >= 100_000 else f"{units:,.0f}"


def estimate(
    cells: int, forward_passes: int, batch: int = 1, queries: int | None = None, *, guidance: bool = True
) -> Cost:
    """The cost of ``forward_passes`` passes over ``cells`` cells for ``batch`` images;
    ``queries`` defaults to ``cells`` (every cell queried once, as the fixed orders do)."""
    return Cost(
        check_int("cells", cells, 1),
        check_int("forward_passes", forward_passes, 1),
        check_int("batch", batch, 1),
        check_int("queries", cells if queries is None else queries, 0),
        bool(guidance),
    )


def _counts(options: SamplingOptions, n_free: int) -> list[int]:
    """Cells decoded at each step, with the tasks' rule of at most one step per free cell."""
    return token_counts(n_free, min(options.steps, n_free), options.schedule)


def for_options(
    options: SamplingOptions, cells: int, n_free: int | None = None, batch: int = 1, rounds: int = 1
) -> Cost:
    """The cost of decoding ``n_free`` of ``cells`` grid cells (default all) with ``options``,
    ``rounds`` times (a panorama's rounds) for ``batch`` images."""
    cells = check_int("cells", cells, 1)
    n_free = cells if n_free is None else check_int("free cells", n_free, 1, cells)
    counts = _counts(options, n_free)
    if options.order == "confidence":  # every remaining cell is queried at every step
        queries = sum(n_free - done for done in _cumulative(counts))
    else:
        queries = n_free
    return estimate(cells, rounds * len(counts), batch, rounds * queries, guidance=options.cfg_scale != 1.0)


def _cumulative(counts: list[int]) -> list[int]:
    """Cells already decoded before each step."""
    done, out = 0, []
    for n in counts:
        out.append(done)
        done += n
    return out


def _panorama_geometry(rows: int, cols: int, times: int, side: str) -> tuple[int, int, int]:
    """(cells, free cells, rounds) of each round of :func:`arpg.tasks.panorama` on a square native
    grid of ``rows`` (each round decodes a trained-size grid: the last columns and the new ones)."""
    step = max(1, rows // 2)
    if side in ("top", "bottom"):  # the image grows downwards or upwards, ``cols`` wide
        return rows * cols, step * cols, math.ceil(rows * (times - 1) / step)
    return rows * rows, rows * step, math.ceil(cols * (times - 1) / step)


def _task_geometry(task: str, grid: tuple[int, int], params: dict[str, Any]) -> tuple[int, int, int]:
    """(cells, free cells, rounds) of ``task`` on an image of ``grid`` cells (upper bounds)."""
    check_choice("task", task, TASKS)
    rows, cols = check_int("rows", grid[0], 1), check_int("cols", grid[1], 1)
    if task == "outpaint":
        left, right, top, bottom = (check_int(k, params.get(k, 0), 0) for k in ("left", "right", "top", "bottom"))
        big = (rows + top + bottom) * (cols + left + right)
        return big, max(1, big - rows * cols), 1
    if task == "panorama":
        times = check_int("times", params.get("times", 4), 1, 8)
        cells, free, rounds = _panorama_geometry(rows, cols, times, params.get("side", "right"))
        return cells, free, max(1, rounds)
    if task == "resize":
        scale = float(params.get("scale", 1.5))
        big = round(rows * scale) * round(cols * scale)
        return big, max(1, big - rows * cols), 1
    return rows * cols, rows * cols, 1


def _canvas(task: str, grid: tuple[int, int], params: dict[str, Any]) -> tuple[int, int]:
    """The (rows, cols) of the finished canvas of an outpaint, panorama or resize."""
    rows, cols = grid
    if task == "outpaint":
        return (
            rows + params.get("top", 0) + params.get("bottom", 0),
            cols + params.get("left", 0) + params.get("right", 0),
        )
    if task == "panorama":
        times = params.get("times", 4)
        return (rows * times, cols) if params.get("side", "right") in ("top", "bottom") else (rows, cols * times)
    scale = float(params.get("scale", 1.5))
    return round(rows * scale), round(cols * scale)


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
    (rows, cols) token cells (the native grid for ``generate``).

    params: outpaint ``left/right/top/bottom`` (cells); panorama ``times`` and ``side``; resize
    ``scale``. Inpainting counts every cell as free (the mask can only lower it). With
    ``decoding="windowed"`` (the tasks' default, :func:`arpg.tasks.decoding_for`) and trained
    sizes ``window`` smaller than the canvas, every window of :func:`arpg.windows.plan_windows`
    counts as a full decode of a window-sized grid."""
    cells, n_free, rounds = _geometry(task, grid, window, decoding, params)
    return for_options(options, cells, n_free, batch, rounds)


def _geometry(
    task: str, grid: tuple[int, int], window: Any, decoding: str | None, params: dict[str, Any]
) -> tuple[int, int, int]:
    """(cells, free cells, rounds) of ``task``, whole or in windows (see :func:`task_cost`)."""
    cells, n_free, rounds = _task_geometry(task, grid, params)
    if task in ("outpaint", "panorama", "resize") and window is not None and decoding_for(task, decoding) == "windowed":
        rows, cols = _canvas(task, grid, params)
        wr, wc = pick_window(rows, cols, window)
        if (wr, wc) != (rows, cols):
            return wr * wc, wr * wc, len(plan_windows(rows, cols, (wr, wc)))
    return cells, n_free, rounds


def max_cost(device: Any = None) -> int:
    """The ceiling: ``$ARPG_MAX_COST`` when set, else :data:`GPU_MAX_COST` on CUDA and
    :data:`CPU_MAX_COST` elsewhere (``device``: a ``torch.device`` or its name)."""
    text = os.environ.get(COST_ENV, "").strip()
    if text:
        return check_int(COST_ENV, text.replace("_", ""), 1)
    kind = getattr(device, "type", str(device or "cpu"))
    return GPU_MAX_COST if kind.startswith("cuda") else CPU_MAX_COST


def _cheaper(
    options: SamplingOptions, cells: int, n_free: int | None, batch: int, rounds: int, ceiling: int
) -> list[str]:
    """Settings that would fit under ``ceiling``, in the order a user would try them."""

    def fits(opts: SamplingOptions, b: int = batch) -> bool:
        return for_options(opts, cells, n_free, b, rounds).units <= ceiling

    tips = []
    if options.order == "confidence" and fits(options.replace(order="random")):
        tips.append("the random order instead of confidence-first")
    fitting = [s for s in range(1, min(options.steps, n_free or cells)) if fits(options.replace(steps=s))]
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
) -> Cost:
    """:func:`for_options`, refused with ``ValueError`` over ``ceiling`` (default :func:`max_cost`);
    the message says what it would cost and names cheaper settings that fit."""
    cost = for_options(options, cells, n_free, batch, rounds)
    ceiling = max_cost() if ceiling is None else check_int("ceiling", ceiling, 1)
    if cost.units > ceiling:
        tips = _cheaper(options, cells, n_free, batch, rounds, ceiling)
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
    cells, n_free, rounds = _geometry(task, grid, window, decoding, params)
    return check_cost(options, cells, n_free, batch, rounds, ceiling)


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
    return check_task_cost(
        task, options, grid, batch, ceiling=max_cost(pipe.device), window=list(pipe.model.cfg.trained_sizes), **params
    )
