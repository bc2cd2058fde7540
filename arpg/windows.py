"""Windowed decoding: canvases larger than the grids a model was trained on, decoded window by window.

A model trained on 16x16 token grids never saw a RoPE position beyond row or column 15, so on a
16x32 canvas every query of columns 16-31 is out of distribution. Here the canvas is covered by
windows of a trained size sliding with overlap (:func:`plan_windows`), and each window is one
plain :func:`arpg.sampling.generate` call on a grid of the window's own size (RoPE positions
0..rows-1, 0..cols-1 of the window), with every known or already decoded token inside it as
context. Windows are visited greedily, the one with the most known cells first, so a right
outpaint or a panorama runs left to right, each window continuing what the one before decoded.

Every window decodes its free cells in ``options.steps`` steps (fewer when it has fewer free
cells, as :func:`arpg.tasks.fit_steps` does), so the forward passes of a windowed decode add up
over its windows. A canvas that fits in a window is exactly one plain ``generate`` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from .config import ARPGConfig
from .model import ARPG
from .options import DECODINGS, SamplingOptions, with_overrides
from .orders import check_permutation
from .pipeline import Output, Pipeline
from .sampling import Context, GenerationResult, StepCallback, Trace, check_options, generate
from .validation import check_choice, check_int, check_seed, show


@dataclass(frozen=True)
class Used:
    """What a task's decode used, as its result records it (:attr:`arpg.tasks.TaskResult.used`).

    order: the decoding order, a name of :data:`arpg.sampling.SAMPLER_ORDERS` or "permutation" for a
    given one; steps: the steps each decode was asked for (after :func:`arpg.tasks.fit_steps`; a window
    with fewer free cells takes fewer), 0 when nothing was decoded; decoding: "windowed" or "whole"
    (:data:`DECODINGS`), the one asked for or the model's; window: the (rows, cols) of the windows and
    windows: how many there were (a windowed canvas that fits in one window: the canvas, 1), both None
    for a "whole" decode or when nothing was decoded.
    """

    order: str
    steps: int
    decoding: str
    window: tuple[int, int] | None = None
    windows: int | None = None


def used_by(
    options: SamplingOptions, decoding: str, window: tuple[int, int] | None = None, windows: int | None = None
) -> Used:
    """The :class:`Used` of a decode of ``options`` (``window``/``windows``: as there)."""
    order = options.order if isinstance(options.order, str) else "permutation"
    return Used(order, options.steps, decoding, window, windows)


@dataclass
class CanvasOutput(Output):
    """:func:`generate_canvas`'s :class:`~arpg.pipeline.Output`, with what the decode used."""

    used: Used | None = None


@dataclass(frozen=True)
class Window:
    """A window of the canvas: ``rows`` x ``cols`` token cells from (``top``, ``left``)."""

    top: int
    left: int
    rows: int
    cols: int

    @property
    def cells(self) -> tuple[slice, slice]:
        """The window's (row, column) slices of the canvas."""
        return slice(self.top, self.top + self.rows), slice(self.left, self.left + self.cols)


# -- the plan --------------------------------------------------------------------------------------
def _size(name: str, value: Any) -> tuple[int, int]:
    try:
        r, c = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (rows, cols), got {show(value)}") from None
    return check_int(f"{name} rows", r, 1, 4096), check_int(f"{name} cols", c, 1, 4096)


def pick_window(rows: int, cols: int, window: Any = None, cfg: ARPGConfig | None = None) -> tuple[int, int]:
    """The window for a ``rows`` x ``cols`` canvas, clipped to it.

    window: a trained size (rows, cols); a sequence of trained sizes (the one covering the most
    of the canvas wins, the first among equals); None: the sizes the model's config records
    (``cfg.trained_sizes``; released models: 16x16).
    """
    if window is None:
        if cfg is None:
            raise ValueError("pick_window needs a window or the model's config")
        window = list(cfg.trained_sizes)
    pair = isinstance(window, (tuple, list)) and len(window) == 2 and not isinstance(window[0], (tuple, list))
    sizes = [_size("window", window)] if pair else [_size("window", w) for w in window]
    if not sizes:
        raise ValueError("window: need at least one trained size")
    best = max(sizes, key=lambda s: min(s[0], rows) * min(s[1], cols))
    return min(best[0], rows), min(best[1], cols)


def _starts(n: int, w: int, stride: int) -> list[int]:
    """Window starts along an axis of ``n`` cells: every ``stride``, the last one flush with the end."""
    starts = list(range(0, n - w + 1, stride))
    return starts if starts[-1] == n - w else [*starts, n - w]


def plan_windows(
    rows: int,
    cols: int,
    window: tuple[int, int],
    overlap: int | tuple[int, int] | None = None,
    known: torch.Tensor | np.ndarray | None = None,
) -> list[Window]:
    """The windows that decode a ``rows`` x ``cols`` canvas, in decoding order.

    window: (rows, cols) of each window (clipped to the canvas); overlap: cells shared by
    neighbouring windows, one number or (rows, cols) (default: half the window); known:
    (rows, cols) bool, the context. Candidates slide by ``window - overlap`` (the last flush
    with the canvas's edge); the next window is always the one with the most known or already
    planned cells (the first in raster order among equals), and windows with nothing left to
    decode are skipped, so every cell is decoded by exactly one window.
    """
    wr, wc = min(window[0], rows), min(window[1], cols)
    orr, oc = (wr // 2, wc // 2) if overlap is None else (overlap, overlap) if np.isscalar(overlap) else overlap
    orr, oc = check_int("overlap rows", orr, 0, wr - 1), check_int("overlap cols", oc, 0, wc - 1)
    candidates = [Window(t, le, wr, wc) for t in _starts(rows, wr, wr - orr) for le in _starts(cols, wc, wc - oc)]
    covered = (
        np.zeros((rows, cols), dtype=bool)
        if known is None
        else torch.as_tensor(known, dtype=torch.bool).cpu().numpy().copy()
    )
    if covered.shape != (rows, cols):
        raise ValueError(f"known must have shape {(rows, cols)}, got {covered.shape}")
    plan = []
    while not covered.all():
        counts = [int(covered[w.cells].sum()) for w in candidates]
        best = max((i for i in range(len(candidates)) if counts[i] < wr * wc), key=counts.__getitem__)
        plan.append(candidates[best])
        covered[candidates[best].cells] = True
    return plan


# -- decoding ------------------------------------------------------------------------------------
def _own_generators(generator: Any, device: torch.device) -> Any:
    """Int seeds become generators once, so that every window continues the same random streams."""

    def one(g: Any) -> Any:
        if isinstance(g, int) and not isinstance(g, bool):
            return torch.Generator(device).manual_seed(g)
        return g

    return [one(g) for g in generator] if isinstance(generator, (list, tuple)) else one(generator)


def _canvas_context(model: ARPG, context: Context | None, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (1 | B, rows, cols) long with -1 where unknown, known (rows, cols) bool) of the canvas."""
    if context is None:
        return torch.full((1, rows, cols), -1, dtype=torch.long), torch.zeros(rows, cols, dtype=torch.bool)
    known = torch.as_tensor(context.known, dtype=torch.bool).cpu()
    tokens = torch.as_tensor(context.tokens).long().cpu()
    if known.shape != (rows, cols) or tokens.dim() not in (2, 3) or tokens.shape[-2:] != (rows, cols):
        raise ValueError(
            f"context.known must have shape {(rows, cols)} and context.tokens (rows, cols) or "
            f"(B, rows, cols) with {(rows, cols)}; got {tuple(known.shape)} and {tuple(tokens.shape)}"
        )
    tokens = torch.where(known, tokens, -1).reshape(-1, rows, cols)
    V = model.cfg.vocab_size
    if known.any() and (tokens[:, known].min() < 0 or tokens[:, known].max() >= V):
        raise ValueError(f"context tokens must be codes in 0..{V - 1}")
    if known.all():
        raise ValueError("nothing to decode: every cell is given by the context")
    return tokens, known


def _window_options(opts: SamplingOptions, rows: int, cols: int, w: Window, n_free: int) -> SamplingOptions:
    """``opts`` for one window: at most one step per free cell, and a canvas permutation restricted to the window."""
    changes: dict[str, Any] = {}
    if not opts.schedule.startswith("k=") and opts.steps > n_free:
        changes["steps"] = n_free
    if not isinstance(opts.order, str):
        perm = check_permutation(opts.order, rows * cols).cpu()
        rank = torch.empty_like(perm)
        rank[perm] = torch.arange(len(perm))
        changes["order"] = torch.argsort(rank.view(rows, cols)[w.cells].flatten())
    return opts.replace(**changes) if changes else opts


def _known_at_turn(plan: list[Window], known: torch.Tensor) -> list[torch.Tensor]:
    """Per window of ``plan``, its cells known or decoded when its turn comes: (window rows, cols) bool."""
    covered, masks = known.clone(), []
    for w in plan:
        masks.append(covered[w.cells].clone())
        covered[w.cells] = True
    return masks


def window_parts(
    rows: int,
    cols: int,
    size: tuple[int, int],
    known: torch.Tensor | None = None,
    overlap: int | tuple[int, int] | None = None,
) -> tuple[list[Window], list[int]]:
    """The windows of ``size`` that decode a ``rows`` x ``cols`` canvas (:func:`plan_windows`; ``known``: its
    context, None for none) and the cells each one decodes when its turn comes, as a windowed decode runs them."""
    known = torch.zeros(rows, cols, dtype=torch.bool) if known is None else torch.as_tensor(known, dtype=torch.bool)
    plan = plan_windows(rows, cols, size, overlap, known)
    return plan, [int((~seen).sum()) for seen in _known_at_turn(plan, known.cpu())]


class _Canvas:
    """A windowed decode in progress: the canvas's tokens and the trace pieces gathered window by window."""

    def __init__(self, tokens: torch.Tensor, known: torch.Tensor, total_steps: int) -> None:
        self.tokens, self.covered, self.total = tokens, known.clone(), total_steps
        self.orders: list[torch.Tensor] = []
        self.counts: list[int] = []
        self.cfg: list[float] = []
        self.step_of: torch.Tensor | None = None
        self.snapshots: list[torch.Tensor] = []
        self.passes = self.queries = self.cache_bytes = 0

    def place(self, w: Window, window_tokens: torch.Tensor) -> torch.Tensor:
        """The canvas (B, rows, cols) with the window's tokens so far put in (a copy)."""
        out = self.tokens.expand(len(window_tokens), -1, -1).clone()
        out[(slice(None), *w.cells)] = window_tokens
        return out

    def callback(self, w: Window, callback: StepCallback | None) -> StepCallback | None:
        """The window's step callback, reporting canvas-wide step numbers and tokens."""
        if callback is None:
            return None
        offset = len(self.counts)
        return lambda s, _, tokens: callback(offset + s, self.total, self.place(w, tokens))

    def add(self, w: Window, res: GenerationResult, cols: int) -> None:
        """Put one window's decode into the canvas and the trace."""
        t, offset = res.trace, len(self.counts)
        cells = ((torch.arange(w.rows) + w.top)[:, None] * cols + torch.arange(w.cols) + w.left).flatten()
        self.orders.append(cells[t.order])
        if t.snapshots is not None:
            self.snapshots += [self.place(w, snap) for snap in t.snapshots]
        if self.step_of is None:
            self.step_of = torch.full((*t.step_of.shape[:-2], *self.covered.shape), -1, dtype=torch.long)
        region = self.step_of[(..., *w.cells)]
        region[t.step_of >= 0] = (t.step_of + offset)[t.step_of >= 0]
        self.tokens = self.place(w, res.tokens)
        self.covered[w.cells] = True
        self.counts += t.counts
        self.cfg += t.cfg
        self.passes, self.queries = self.passes + t.forward_passes, self.queries + t.queries
        self.cache_bytes = max(self.cache_bytes, t.kv_cache_bytes)

    def result(self, snapshots: bool) -> GenerationResult:
        rows, cols = self.covered.shape
        trace = Trace(
            rows,
            cols,
            torch.cat(self.orders, dim=-1),
            self.counts,
            self.cfg,
            self.step_of,
            self.cache_bytes,
            self.passes,
            self.queries,
            self.snapshots if snapshots else None,
        )
        return GenerationResult(self.tokens, trace)


def canvas_window(
    decoding: str, grid: Any, window: Any = None, cfg: ARPGConfig | None = None
) -> tuple[int, int] | None:
    """The one rule of windowed against whole: the window a ``grid`` (rows, cols) canvas is decoded in with
    ``decoding`` (window, cfg: as in :func:`pick_window`), or None when it is one decode of the whole grid:
    ``decoding="whole"``, or a canvas that fits in its window (windowed or not, the same single decode)."""
    if check_choice("decoding", decoding, DECODINGS) == "whole":
        return None
    rows, cols = _size("grid", grid)
    size = pick_window(rows, cols, window, cfg)
    return None if size == (rows, cols) else size


@torch.inference_mode()
def _in_windows(
    model: ARPG,
    labels: Any,
    opts: SamplingOptions,
    grid: tuple[int, int],
    size: tuple[int, int],
    context: Context | None,
    overlap: int | tuple[int, int] | None,
    generator: Any,
    snapshots: bool,
    callback: StepCallback | None,
) -> tuple[GenerationResult, int]:
    """A ``grid`` canvas decoded in windows of ``size`` (smaller than it) with resolved ``opts``: the result
    and the count of windows."""
    (rows, cols), (wr, wc) = grid, size
    tokens, known = _canvas_context(model, context, rows, cols)
    plan, n_free = window_parts(rows, cols, (wr, wc), known, overlap)
    per_window = [_window_options(opts, rows, cols, w, n) for w, n in zip(plan, n_free)]
    total = sum(len(check_options(model, (wr, wc), o, n_free=n).counts) for o, n in zip(per_window, n_free))
    canvas, generators = _Canvas(tokens, known, total), _own_generators(generator, model.device)
    for w, w_opts in zip(plan, per_window):
        sub_known = canvas.covered[w.cells]
        sub_tokens = canvas.tokens[(slice(None), *w.cells)].clamp(min=0)
        res = generate(
            model,
            labels,
            w_opts,
            generator=generators,
            grid=(wr, wc),
            context=Context(sub_tokens, sub_known) if sub_known.any() else None,
            snapshots=snapshots,
            callback=canvas.callback(w, callback),
        )
        canvas.add(w, res, cols)
    return canvas.result(snapshots), len(plan)


@torch.inference_mode()
def generate_windowed(
    model: ARPG,
    labels: Any,
    options: SamplingOptions | None = None,
    *,
    grid: tuple[int, int] | None = None,
    context: Context | None = None,
    window: Any = None,
    overlap: int | tuple[int, int] | None = None,
    generator: torch.Generator | int | Sequence[torch.Generator | int] | None = None,
    snapshots: bool = False,
    callback: StepCallback | None = None,
    **overrides: Any,
) -> GenerationResult:
    """:func:`arpg.sampling.generate` on a canvas of any size, in windows of a trained size: the model-level
    decode (on a pipeline, :func:`generate_canvas` is the one canvas decode).

    window: a trained (rows, cols), a sequence of them, or None for the model's ``grid_size``
    square (see :func:`pick_window`); overlap: see :func:`plan_windows`. The other arguments are
    those of ``generate``; random draws continue through one generator (or one per image) from
    window to window. Returns tokens (B, rows, cols) and a :class:`~arpg.sampling.Trace` of the whole
    canvas: ``order``/``step_of`` cover every decoded cell, ``counts``/``cfg`` are the windows'
    steps one after another, ``forward_passes`` and ``queries`` their sums, ``kv_cache_bytes``
    the largest window's cache.
    """
    opts = with_overrides(options, overrides)
    rows, cols = _size("grid", grid) if grid is not None else (model.cfg.grid_size, model.cfg.grid_size)
    size = canvas_window("windowed", (rows, cols), window, model.cfg)
    if size is None:
        return generate(
            model,
            labels,
            opts,
            generator=generator,
            grid=(rows, cols),
            context=context,
            snapshots=snapshots,
            callback=callback,
        )
    return _in_windows(model, labels, opts, (rows, cols), size, context, overlap, generator, snapshots, callback)[0]


def generate_canvas(
    pipe: Pipeline,
    labels: Any,
    options: SamplingOptions,
    *,
    seed: int | None = None,
    grid: tuple[int, int] | None = None,
    context: Context | None = None,
    decoding: str = "windowed",
    window: Any = None,
    overlap: int | tuple[int, int] | None = None,
    snapshots: bool = False,
    callback: StepCallback | None = None,
) -> CanvasOutput:
    """The one decode of a canvas (any grid) on a pipeline, windowed or whole: what every task of
    :mod:`arpg.tasks` decodes with.

    options: resolved (the caller's boundary applied the model's defaults and any overrides; nothing here
    resolves them again); decoding: one of :data:`DECODINGS`, resolved too (see :func:`canvas_window`).
    One decode of the whole grid is exactly ``pipe.generate``; "windowed" on a canvas bigger than its window
    decodes ``pipe.model`` in windows with ``pipe.generator(seed)``, then ``pipe`` decodes the tokens.
    Returns a :class:`CanvasOutput`: the :class:`~arpg.pipeline.Output` and what the decode used."""
    if not isinstance(options, SamplingOptions):
        raise TypeError(f"options must be a SamplingOptions, got {type(options).__name__}")
    size = canvas_window(decoding, grid or pipe.grid, window, pipe.model.cfg)
    if size is None:
        out = pipe.generate(
            labels, options, seed=seed, grid=grid, context=context, snapshots=snapshots, callback=callback
        )
        one = None if decoding == "whole" else tuple(out.tokens.shape[-2:])  # windowed: one window, the canvas
        return _with_used(out, used_by(options, decoding, one, None if one is None else 1))
    seed = check_seed(seed)
    grid = _size("grid", grid or pipe.grid)
    generator = pipe.generator(seed)
    res, n = _in_windows(pipe.model, labels, options, grid, size, context, overlap, generator, snapshots, callback)
    labels = torch.as_tensor(labels).reshape(-1).tolist()
    out = Output(pipe.decode(res.tokens), res.tokens, res.trace, seed, labels)
    return _with_used(out, used_by(options, decoding, size, n))


def _with_used(out: Output, used: Used) -> CanvasOutput:
    """``out`` as a :class:`CanvasOutput` that records ``used``."""
    return CanvasOutput(**{f.name: getattr(out, f.name) for f in fields(Output)}, used=used)
