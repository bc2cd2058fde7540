"""The decode loop: randomized parallel decoding with a shared KV cache.

``generate`` follows the released ARPG sampler (hp-l33/ARPG ``Transformer.generate``):
one order per call shared by the batch, a tokens-per-step schedule, classifier-free
guidance with the conditional and null branches in one batch, and caches that grow by
the tokens decoded at the previous step.  Differences, all deliberate: every random draw
comes from an explicit ``torch.Generator``; caches are allocated once at their final size;
top-p is correct; known tokens (``context``) can be prefilled so zero-shot tasks decode
only the rest; any rows x cols grid works.

Pieces, in the order ``generate`` uses them: :func:`check_options` (a
:class:`~arpg.options.SamplingOptions` against the grid: counts and guidance per step),
:func:`_known_cells` (the context), an order policy (:func:`arpg.orders.make_policy`: which
cells each step queries and keeps) and :class:`_Decoder` (one forward pass per step, run by a
:class:`StepSession`: eager here, captured in :mod:`arpg.capture`). :func:`decoder` builds one for a
caller that drives the steps itself (:mod:`arpg.serve`, which batches requests).
Tokens, orders and ``step_of`` stay on the model's device; the host sees them at the end,
or after each step only when a caller asks for it (``snapshots``, ``callback``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .model import ARPG, KVCache
from .options import SamplingOptions, with_overrides
from .orders import FixedOrder, OrderPolicy, check_permutation, make_policy
from .schedules import cfg_scales, token_counts
from .validation import check_int, show

#: Decoding strategies compared by the benchmarks and the visualizer.
METHODS = ("arpg", "raster", "random1")


@dataclass
class Context:
    """Tokens known before decoding.

    tokens: (rows, cols) or (B, rows, cols) long (values at unknown cells are ignored);
    known: (rows, cols) bool, True where the token is given (shared by the batch).
    """

    tokens: torch.Tensor
    known: torch.Tensor


@dataclass
class Trace:
    """What happened during one ``generate`` call, for visualisation and measurement."""

    rows: int
    cols: int
    order: torch.Tensor  # (M,) raster indices of the decoded cells, first decoded first; (B, M) per image
    counts: list[int]  # tokens decoded per step
    cfg: list[float]  # guidance weight per step
    step_of: torch.Tensor  # (rows, cols) long: step that decoded each cell, -1 for context; (B, rows, cols) per image
    kv_cache_bytes: int = 0
    forward_passes: int = 0
    queries: int = 0  # target queries run through the cross stack (== the policy's queries(counts))
    snapshots: list[torch.Tensor] | None = None  # per step (B, rows, cols) long, -1 = unknown
    logits: list[torch.Tensor] | None = None  # per step model output (B or 2B, n, V) fp32


@dataclass
class GenerationResult:
    """What :func:`generate` returns: the tokens and the trace of the decode."""

    tokens: torch.Tensor  # (B, rows, cols) long, raster order
    trace: Trace = field(repr=False)


StepCallback = Callable[[int, int, torch.Tensor], None]


# -- sampling from logits ---------------------------------------------------------------
def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Top-k then nucleus (top-p) filtering; returns a new tensor (-inf where removed).

    Nucleus keeps the smallest set of most likely tokens whose probability reaches
    ``top_p`` (the most likely token is always kept).
    """
    out = logits
    if top_k and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(out, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        before = probs.cumsum(-1) - probs  # mass of strictly more likely tokens
        remove_sorted = before >= top_p
        remove = torch.zeros_like(remove_sorted).scatter(-1, idx, remove_sorted)
        out = out.masked_fill(remove, float("-inf"))
    return out


def sample_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(..., V) logits -> (...) sampled ids; never mutates ``logits``."""
    scaled = filter_logits(logits / max(temperature, 1e-5), top_k, top_p)
    if top_k == 1:
        return scaled.argmax(-1)
    probs = torch.softmax(scaled.float(), dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])


# -- argument checks -----------------------------------------------------------------------
def _as_generator(g: torch.Generator | int, device: torch.device) -> torch.Generator:
    if isinstance(g, torch.Generator):
        return g
    if isinstance(g, bool) or not isinstance(g, int):
        raise ValueError(f"generator must be a torch.Generator or an int seed, got {show(g)}")
    return torch.Generator(device).manual_seed(g)


def _generators(generator: Any, batch: int, device: torch.device) -> tuple[list[torch.Generator | None], bool]:
    """(generators, per_image): one shared by the batch, or a list of one per image."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != batch:
            raise ValueError(f"generator: need one per image, got {len(generator)} for {batch} labels")
        return [_as_generator(g, device) for g in generator], True
    return [None if generator is None else _as_generator(generator, device)], False


def check_labels(model: ARPG, labels: Any) -> torch.Tensor:
    """``labels`` as a (B,) long tensor on the model's device; ValueError names what is wrong."""
    return _labels(model, labels)


def _labels(model: ARPG, labels: Any) -> torch.Tensor:
    C = model.cfg.num_classes
    bad = ValueError(
        f"labels must be a non-empty 1-D list of class ids in 0..{C - 1} (or {C} for unconditional), got {labels!r:.80}"
    )
    if labels is None or isinstance(labels, (str, bytes, dict)):
        raise bad
    try:
        t = torch.as_tensor(labels)
    except (TypeError, RuntimeError, ValueError, OverflowError):
        raise bad from None
    if t.dim() == 0:
        t = t[None]
    if t.dim() != 1 or t.numel() == 0 or t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise bad
    if (t < 0).any() or (t > C).any():
        raise ValueError(f"labels must be class ids in 0..{C - 1} (or {C} for unconditional), got {t.tolist()}")
    return t.long().to(model.device)


def _grid(model: ARPG, grid: tuple[int, int] | None) -> tuple[int, int]:
    if grid is None:
        return model.cfg.grid_size, model.cfg.grid_size
    try:
        rows, cols = grid
    except (TypeError, ValueError):
        raise ValueError(f"grid must be (rows, cols), got {show(grid)}") from None
    return check_int("rows", rows, 1, 4096), check_int("cols", cols, 1, 4096)


@dataclass(frozen=True)
class StepPlan:
    """Checked options for one grid: tokens decoded per step and the guidance weight per step."""

    rows: int
    cols: int
    options: SamplingOptions
    counts: list[int]
    ws: list[float]


def check_options(
    model: ARPG,
    grid: tuple[int, int] | None = None,
    options: SamplingOptions | None = None,
    *,
    n_free: int | None = None,
    **overrides: Any,
) -> StepPlan:
    """Check ``options`` (with ``overrides``, see :func:`arpg.options.with_overrides`) against a grid.

    Checks what needs the grid: ``steps`` against the ``n_free`` cells to decode (default the
    whole grid; not for ``schedule="k=<n>"``) and a permutation ``order``. ValueError names the
    argument and its allowed range. Returns the per-step counts and guidance weights.
    """
    opts = with_overrides(options, overrides)
    rows, cols = _grid(model, grid)
    n = rows * cols if n_free is None else n_free
    if not isinstance(opts.order, str):
        check_permutation(opts.order, rows * cols, "order")
    if not opts.schedule.startswith("k="):
        check_int("steps", opts.steps, 1, n)
    counts = token_counts(n, opts.steps, opts.schedule)
    return StepPlan(rows, cols, opts, counts, cfg_scales(counts, opts.cfg_scale, opts.cfg_schedule))


# -- context preparation -----------------------------------------------------------------------
@dataclass
class _Known:
    """The known cells: ``index`` (K,) raster indices and ``tokens`` (B, K) on the model's device;
    ``free`` (N,) bool on the CPU, True for the cells to decode."""

    index: torch.Tensor
    tokens: torch.Tensor
    free: torch.Tensor


def _known_cells(model: ARPG, context: Context | None, rows: int, cols: int, batch: int) -> _Known:
    N, dev = rows * cols, model.device
    if context is None:
        empty = torch.zeros(0, dtype=torch.long, device=dev)
        return _Known(empty, empty.expand(batch, 0), torch.ones(N, dtype=torch.bool))
    known = torch.as_tensor(context.known, dtype=torch.bool).cpu()
    if known.shape != (rows, cols):
        raise ValueError(f"context.known must have shape {(rows, cols)}, got {tuple(known.shape)}")
    ctx = torch.as_tensor(context.tokens).long()
    if ctx.shape[-2:] != (rows, cols) or ctx.dim() not in (2, 3) or (ctx.dim() == 3 and len(ctx) not in (1, batch)):
        raise ValueError(
            f"context.tokens must have shape (rows, cols) or (B, rows, cols) with "
            f"{(rows, cols)} and B = {batch}, got {tuple(ctx.shape)}"
        )
    index = known.flatten().nonzero().flatten()
    tokens = ctx.reshape(-1, N).to(dev)[:, index.to(dev)].expand(batch, -1)  # (B, K)
    V = model.cfg.vocab_size
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= V):
        raise ValueError(f"context tokens must be codes in 0..{V - 1}")
    if len(index) == N:
        raise ValueError("nothing to decode: every cell is given by the context")
    return _Known(index.to(dev), tokens, ~known.flatten())


# -- the decode loop -----------------------------------------------------------------------
class StepSession:
    """The forward passes of one decode on its cache: each step extends the cache with the tokens of
    the step before (:meth:`ARPG.extend`) and queries its targets (:meth:`ARPG.query`)."""

    def __init__(self, model: ARPG, cache: KVCache) -> None:
        self.model, self.cache = model, cache

    def forward(
        self, s: int, ids: torch.Tensor, freqs_in: torch.Tensor, freqs_q: torch.Tensor, causal: bool
    ) -> torch.Tensor:
        """Step ``s``: feed ``ids`` (rows, n) at RoPE rows ``freqs_in``, then (rows, q, V) fp32 logits
        of the targets at ``freqs_q``."""
        self.model.extend(self.cache, ids, freqs_in, causal=causal)
        return self.model.query(self.cache, freqs_q)

    def close(self) -> None:
        """The decode is over (or abandoned): release what the session holds."""


class EagerSteps:
    """How a decode runs its steps by default: eagerly, on a cache allocated for the call.
    :class:`arpg.capture.CapturedSteps` has the same :meth:`open` with kept caches and captured steps."""

    def __init__(self, model: ARPG) -> None:
        self.model = model

    def open(self, rows: int, max_len: int, counts: Sequence[int]) -> StepSession:
        """A session for a decode of ``rows`` cache rows, ``max_len`` cached tokens and ``counts``."""
        return StepSession(self.model, self.model.new_cache(rows, max_len))


class _Decoder:
    """One decode in progress: the cache, the tokens so far (on the model's device) and what the
    next forward pass feeds. :meth:`step` runs one pass; nothing is copied to the host unless a
    caller asks (snapshots, callback) or the decode is over (:meth:`result`)."""

    def __init__(
        self,
        model: ARPG,
        labels: torch.Tensor,
        known: _Known,
        plan: StepPlan,
        policy: OrderPolicy,
        generators: list[torch.Generator | None],
        per_image: bool,
        groups: Sequence[int] | None = None,
        stepper: EagerSteps | None = None,
    ) -> None:
        self.model, self.plan, self.policy = model, plan, policy
        self.generators, self.per_image = generators, per_image
        dev, B, N, K = model.device, len(labels), plan.rows * plan.cols, len(known.index)
        self.groups = list(groups) if groups is not None else [1] * len(generators) if per_image else [B]
        self.use_cfg = plan.options.cfg_scale != 1.0
        self.branches = 2 if self.use_cfg else 1
        self.table = model.rope(plan.rows, plan.cols)
        M = N - K
        self.session = (stepper or EagerSteps(model)).open(self.branches * B, 1 + K + M - plan.counts[-1], plan.counts)
        self.cache = self.session.cache
        self.tokens = torch.full((B, N), -1, dtype=torch.long, device=dev)
        self.tokens[:, known.index] = known.tokens
        self.step_of = torch.full((len(policy.order), N), -1, dtype=torch.long, device=dev)
        cls = model.class_tokens(labels)
        if self.use_cfg:
            cls = torch.cat([cls, model.class_tokens(torch.full_like(labels, model.cfg.num_classes))])
        # The first pass prefills the class token and any context causally, as the first
        # tokens of a training sequence; later passes add one step's tokens as a block.
        self.prev_ids = torch.cat([cls[:, None], known.tokens.repeat(self.branches, 1)], dim=1)  # (branches*B, 1+K)
        self.prev_pos = torch.cat([torch.zeros(1, dtype=torch.long, device=dev), known.index + 1])[None]  # (1, 1+K)
        self.done = self.forward_passes = self.queries = 0
        self.logits: list[torch.Tensor] = []

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        o = self.plan.options
        if self.per_image:  # each group of rows (one image, or one request's images) draws from its own generator
            parts = logits.split(self.groups)
            return torch.cat(
                [sample_logits(x, o.temperature, o.top_k, o.top_p, g) for x, g in zip(parts, self.generators)]
            )
        return sample_logits(logits, o.temperature, o.top_k, o.top_p, self.generators[0])

    def step(self, s: int, keep_logits: bool = False) -> None:
        """Decode the ``counts[s]`` cells of step ``s``."""
        n, B = self.plan.counts[s], self.tokens.shape[0]
        targets = self.policy.targets(self.done, n)  # (R, q)
        pos = (targets + 1).repeat(1 if len(targets) == 1 else self.branches, 1)  # RoPE rows per cache row
        causal = s == 0 or self.plan.options.step_attention == "causal"  # the first pass is a causal prefill
        logits = self.session.forward(s, self.prev_ids, self.table[self.prev_pos], self.table[pos], causal)
        self.forward_passes += 1
        self.queries += targets.shape[1]
        if keep_logits:
            self.logits.append(logits.clone())
        if self.use_cfg:
            cond, uncond = logits.chunk(2)
            logits = uncond + self.plan.ws[s] * (cond - uncond)
        new = self._sample(logits)  # (B, q)
        keep = self.policy.choose(targets, logits, new, self.done, n, self.plan.options.temperature)
        if keep is not None:
            targets, new, pos = targets[:, keep], new[:, keep], pos[:, keep]
        self.tokens.scatter_(1, targets.expand(B, -1), new)
        self.step_of.scatter_(1, targets, s)
        self.prev_ids, self.prev_pos = new.repeat(self.branches, 1), pos
        self.done += n

    def keep_groups(self, keep: Sequence[int]) -> None:
        """Go on with only the groups ``keep`` (indices into :attr:`groups`, at least one), e.g. when one
        request of a batch is cancelled: its rows leave the cache and every later step (eagerly)."""
        if not self.per_image or not keep:
            raise ValueError("a decode drops whole groups of its own generator, and keeps at least one")
        starts, dev, B = [0, *itertools.accumulate(self.groups)], self.tokens.device, self.tokens.shape[0]
        rows = torch.cat([torch.arange(starts[g], starts[g + 1], device=dev) for g in keep])
        cache_rows = torch.cat([rows + b * B for b in range(self.branches)])
        c = self.cache
        pick = lambda ts: [t[cache_rows] for t in ts]  # noqa: E731
        self.session.close()
        self.cache = KVCache(pick(c.self_k), pick(c.self_v), c.k[cache_rows], c.v[cache_rows], c.length)
        self.session = StepSession(self.model, self.cache)
        self.tokens, self.prev_ids = self.tokens[rows], self.prev_ids[cache_rows]
        if len(self.step_of) > 1:  # one order per image
            self.policy.order, self.step_of = self.policy.order[rows], self.step_of[rows]
        if len(self.prev_pos) > 1:
            self.prev_pos = self.prev_pos[cache_rows]
        self.generators = [self.generators[g] for g in keep]
        self.groups = [self.groups[g] for g in keep]

    def close(self) -> None:
        """The decode is over or abandoned (its step session is released)."""
        self.session.close()

    def grid_tokens(self) -> torch.Tensor:
        """(B, rows, cols) tokens so far (-1 = unknown), on the CPU."""
        return self.tokens.view(-1, self.plan.rows, self.plan.cols).cpu()

    def result(self, snapshots: list[torch.Tensor] | None, keep_logits: bool) -> GenerationResult:
        p, order = self.plan, self.policy.order.cpu()
        step_of = self.step_of.cpu()
        shared = len(order) == 1
        trace = Trace(
            p.rows,
            p.cols,
            order[0] if shared else order,
            p.counts,
            p.ws,
            step_of.view(p.rows, p.cols) if shared else step_of.view(-1, p.rows, p.cols),
            self.cache.nbytes,
            self.forward_passes,
            self.queries,
            snapshots,
            self.logits if keep_logits else None,
        )
        return GenerationResult(self.grid_tokens(), trace)


def decoder(
    model: ARPG,
    labels: Any,
    options: SamplingOptions | None = None,
    *,
    generator: torch.Generator | int | Sequence[torch.Generator | int] | None = None,
    groups: Sequence[int] | None = None,
    grid: tuple[int, int] | None = None,
    context: Context | None = None,
    stepper: EagerSteps | None = None,
    **overrides: Any,
) -> _Decoder:
    """A decode ready to run, for a caller that drives its steps (``step(s)`` for each of
    ``plan.counts``, then ``result`` and ``close``); arguments as in :func:`generate`.

    groups: sizes of consecutive groups of images that share one generator (one order and one
    stream of draws per group, ``generator`` a list with one per group): group g then gets exactly
    what a call with its own labels and ``generator[g]`` alone gives. stepper: how steps run
    (default :class:`EagerSteps`).
    """
    opts = with_overrides(options, overrides)
    labels = _labels(model, labels)
    n_gen = len(labels) if groups is None else len(groups)
    generators, per_image = _generators(generator, n_gen, model.device)
    if groups is not None and (not per_image or any(g < 1 for g in groups) or sum(groups) != len(labels)):
        raise ValueError(f"groups must be sizes >= 1 summing to the {len(labels)} labels, one generator each")
    rows, cols = _grid(model, grid)
    known = _known_cells(model, context, rows, cols, len(labels))
    plan = check_options(model, (rows, cols), opts, n_free=int(known.free.sum()))
    policy = make_policy(opts.order, rows, cols, known.free, generators, per_image, model.device, plan.counts)
    if groups is not None:  # every image of a group follows its group's order
        sizes = torch.tensor(list(groups), device=policy.order.device)
        policy = FixedOrder(policy.order.repeat_interleave(sizes, dim=0))
    return _Decoder(model, labels, known, plan, policy, generators, per_image, groups, stepper)


@torch.inference_mode()
def generate(
    model: ARPG,
    labels: Any,
    options: SamplingOptions | None = None,
    *,
    generator: torch.Generator | int | Sequence[torch.Generator | int] | None = None,
    grid: tuple[int, int] | None = None,
    context: Context | None = None,
    snapshots: bool = False,
    keep_logits: bool = False,
    callback: StepCallback | None = None,
    stepper: EagerSteps | None = None,
    **overrides: Any,
) -> GenerationResult:
    """Decode images of ``labels`` with randomized parallel decoding.

    labels: (B,) class ids (``num_classes`` = unconditional). options: a :class:`SamplingOptions`
    (None: its defaults); ``overrides`` are its field names (``steps=8, order="raster"``), applied
    with :func:`arpg.options.with_overrides`. ``steps`` must not exceed the free cells (ignored
    for ``schedule="k=<n>"``); ``order`` "random" is drawn from ``generator``, other names come
    from :mod:`arpg.orders`, a permutation lists all rows*cols cells (context cells are skipped).
    generator: a ``torch.Generator`` or an int seed, shared by the batch (one order for all
    images); or a list, one per image: image b then gets its own order and draws, exactly the
    tokens a call with ``[labels[b]]`` and ``generator[b]`` alone would give (the trace's
    ``order``/``step_of`` are then per image). context: tokens known beforehand, prefilled with
    the class token in the first forward pass. callback(step, steps, tokens) is called after
    each step with the (B, rows, cols) tokens so far (-1 = unknown), on the CPU. stepper: how
    the forward passes run (default eagerly; :class:`arpg.capture.CapturedSteps` captures them).
    Returns tokens (B, rows, cols) in raster order (CPU) and a :class:`Trace`.
    """
    dec = decoder(model, labels, options, generator=generator, grid=grid, context=context, stepper=stepper, **overrides)
    counts, shots = dec.plan.counts, [] if snapshots else None
    try:
        for s in range(len(counts)):
            dec.step(s, keep_logits)
            if shots is not None:
                shots.append(dec.tokens.view(-1, dec.plan.rows, dec.plan.cols).to("cpu", copy=True))
            if callback is not None:
                callback(s, len(counts), dec.grid_tokens())
    finally:
        dec.close()
    return dec.result(shots, keep_logits)


def method_kwargs(method: str, steps: int, n_cells: int) -> dict:
    """generate() arguments of a named decoding strategy (see :data:`METHODS`).

    "arpg": random order, ``steps`` parallel steps; "raster": raster order one token per
    step (the LlamaGen way, on the same weights); "random1": random order, one per step.
    """
    if method == "arpg":
        return {"steps": steps, "order": "random"}
    if method == "raster":
        return {"steps": n_cells, "order": "raster"}
    if method == "random1":
        return {"steps": n_cells, "order": "random"}
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
