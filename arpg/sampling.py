"""The decode loop: randomized parallel decoding with a shared KV cache.

``generate`` follows the released ARPG sampler (hp-l33/ARPG ``Transformer.generate``):
one order per call shared by the batch, a tokens-per-step schedule, classifier-free
guidance with the conditional and null branches in one batch, and caches that grow by
the tokens decoded at the previous step.  Differences, all deliberate: every random draw
comes from an explicit ``torch.Generator``; caches are allocated once at their final size;
top-p is correct; known tokens (``context``) can be prefilled so zero-shot tasks decode
only the rest; any rows x cols grid works.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from .model import ARPG
from .orders import ORDER_NAMES, check_permutation, make_order
from .schedules import CFG_SCHEDULES, cfg_scales, token_counts

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
    queries: int = 0  # target queries run through the cross stack (== decoded cells, except "confidence")
    snapshots: list[torch.Tensor] | None = None  # per step (B, rows, cols) long, -1 = unknown
    logits: list[torch.Tensor] | None = None  # per step model output (B or 2B, n, V) fp32


@dataclass
class GenerationResult:
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


def sample_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """(..., V) logits -> (...) sampled ids; never mutates ``logits``."""
    scaled = filter_logits(logits / max(temperature, 1e-5), top_k, top_p)
    if top_k == 1:
        return scaled.argmax(-1)
    probs = torch.softmax(scaled.float(), dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).view(probs.shape[:-1])


# -- argument checks -----------------------------------------------------------------------
def check_number(name: str, value, lo: float, hi: float, lo_open: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v > hi or v < lo or (lo_open and v == lo):
        left = "(" if lo_open else "["
        raise ValueError(f"{name} must be in {left}{lo}, {hi}], got {value!r}")
    return v


def check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
            isinstance(value, float) and value.is_integer()):
        try:
            import numpy as np

            if isinstance(value, np.integer):
                value = int(value)
            else:
                raise TypeError
        except TypeError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _as_generator(g, device: torch.device) -> torch.Generator:
    if isinstance(g, torch.Generator):
        return g
    if isinstance(g, bool) or not isinstance(g, int):
        raise ValueError(f"generator must be a torch.Generator or an int seed, got {g!r}")
    return torch.Generator(device).manual_seed(g)


def _labels(model: ARPG, labels) -> torch.Tensor:
    C = model.cfg.num_classes
    bad = ValueError(f"labels must be a non-empty 1-D list of class ids in 0..{C - 1} (or {C} for "
                     f"unconditional), got {labels!r:.80}")
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


#: Orders accepted by name: the fixed ones of :mod:`arpg.orders` plus "confidence", which
#: at each step queries every remaining cell and keeps the n most confident samples.
SAMPLER_ORDERS = (*ORDER_NAMES, "confidence")


def _free_order(order, rows: int, cols: int, known: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Decode order over the unknown cells (raster indices); raster order for "confidence"
    (the real order is chosen step by step)."""
    N = rows * cols
    free_mask = ~known.flatten().cpu()
    if order is None:
        order = "random"
    if isinstance(order, str):
        if order not in SAMPLER_ORDERS:
            raise ValueError(f"order must be one of {SAMPLER_ORDERS} or a permutation of 0..{N - 1}, got {order!r}")
        if order == "confidence":
            return free_mask.nonzero().flatten()
        if order == "random":
            free = free_mask.nonzero().flatten()
            gen_dev = generator.device if generator is not None else torch.device("cpu")
            perm = torch.randperm(len(free), generator=generator, device=gen_dev).cpu()
            return free[perm]
        full = make_order(order, rows, cols)
    else:
        full = check_permutation(order, N, "order").cpu()
    return full[free_mask[full]]


def _grid(model: ARPG, grid: tuple[int, int] | None) -> tuple[int, int]:
    if grid is None:
        return model.cfg.grid_size, model.cfg.grid_size
    try:
        rows, cols = grid
    except (TypeError, ValueError):
        raise ValueError(f"grid must be (rows, cols), got {grid!r}") from None
    return check_int("rows", rows, 1, 4096), check_int("cols", cols, 1, 4096)


def check_options(model: ARPG, grid: tuple[int, int] | None = None, steps: int = 32, schedule: str = "arccos",
                  cfg_scale: float = 4.0, cfg_schedule: str = "linear", temperature: float = 1.0, top_k: int = 0,
                  top_p: float = 1.0, order=None, n_free: int | None = None) -> dict:
    """Validate sampling options (ValueError naming the argument and its allowed range).

    Returns the checked values plus ``counts`` (tokens per step over ``n_free`` cells,
    default the whole grid) and ``ws`` (guidance weight per step)."""
    rows, cols = _grid(model, grid)
    n = rows * cols if n_free is None else n_free
    out = dict(rows=rows, cols=cols,
               cfg_scale=check_number("cfg_scale", cfg_scale, 0.0, 100.0),
               temperature=check_number("temperature", temperature, 0.0, 100.0, lo_open=True),
               top_k=check_int("top_k", top_k, 0, 10**9),
               top_p=check_number("top_p", top_p, 0.0, 1.0, lo_open=True))
    if isinstance(order, str) and order not in SAMPLER_ORDERS:
        raise ValueError(f"order must be one of {SAMPLER_ORDERS} or a permutation of 0..{rows * cols - 1}, "
                         f"got {order!r}")
    if order is not None and not isinstance(order, str):
        check_permutation(order, rows * cols, "order")
    if cfg_schedule not in CFG_SCHEDULES:
        raise ValueError(f"cfg_schedule must be one of {CFG_SCHEDULES}, got {cfg_schedule!r:.40}")
    if not (isinstance(schedule, str) and schedule.startswith("k=")):
        steps = check_int("steps", steps, 1, n)
    out["counts"] = token_counts(n, steps, schedule)
    out["ws"] = cfg_scales(out["counts"], out["cfg_scale"], cfg_schedule)
    return out


# -- the decode loop -----------------------------------------------------------------------
@torch.inference_mode()
def generate(model: ARPG, labels, steps: int = 32, schedule: str = "arccos", cfg_scale: float = 4.0,
             cfg_schedule: str = "linear", temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
             order=None, generator: torch.Generator | int | None = None, grid: tuple[int, int] | None = None,
             context: Context | None = None, snapshots: bool = False, keep_logits: bool = False,
             callback: StepCallback | None = None) -> GenerationResult:
    """Decode images of ``labels`` with randomized parallel decoding.

    labels: (B,) class ids (``num_classes`` = unconditional). steps: number of forward
    passes (1 .. number of free cells; ignored for ``schedule="k=<int>"``). order: None or
    "random" (drawn from ``generator``), another name from :data:`arpg.orders.ORDER_NAMES`,
    or a permutation of all rows*cols cells (context cells are skipped). generator: a
    ``torch.Generator`` or an int seed, shared by the batch (one order for all images);
    or a list of them, one per image: image b then gets its own order and draws, exactly
    the tokens a call with ``[labels[b]]`` and ``generator[b]`` alone would give (the
    trace's ``order``/``step_of`` are then per image). context: tokens known beforehand, prefilled with
    the class token in the first forward pass. callback(step, steps, tokens) is called
    after each step with the (B, rows, cols) tokens so far (-1 = unknown).
    Returns tokens (B, rows, cols) in raster order and a :class:`Trace`.
    """
    cfg = model.cfg
    labels = _labels(model, labels)
    B = labels.shape[0]
    per_image = isinstance(generator, (list, tuple))
    if per_image:
        if len(generator) != B:
            raise ValueError(f"generator: need one per image, got {len(generator)} for {B} labels")
        gens = [_as_generator(g, model.device) for g in generator]
        if order == "confidence":
            raise ValueError("order 'confidence' picks cells from the whole batch; it needs one shared generator")
    elif generator is not None:
        generator = _as_generator(generator, model.device)

    # Known cells.
    dev = model.device
    rows, cols = _grid(model, grid)
    N = rows * cols
    if context is None:
        known = torch.zeros(rows, cols, dtype=torch.bool)
        ctx_tokens = torch.zeros(B, N, dtype=torch.long)
    else:
        known = torch.as_tensor(context.known, dtype=torch.bool).cpu()
        if known.shape != (rows, cols):
            raise ValueError(f"context.known must have shape {(rows, cols)}, got {tuple(known.shape)}")
        ctx = torch.as_tensor(context.tokens).long().cpu()
        if ctx.shape[-2:] != (rows, cols) or ctx.dim() not in (2, 3):
            raise ValueError(f"context.tokens must have shape (rows, cols) or (B, rows, cols) with "
                             f"{(rows, cols)}, got {tuple(ctx.shape)}")
        ctx_tokens = ctx.reshape(-1, N).expand(B, N)
        kt = ctx_tokens[:, known.flatten()]
        if kt.numel() and (kt.min() < 0 or kt.max() >= cfg.vocab_size):
            raise ValueError(f"context tokens must be codes in 0..{cfg.vocab_size - 1}")
    known_idx = known.flatten().nonzero().flatten()
    M = N - len(known_idx)
    if M == 0:
        raise ValueError("nothing to decode: every cell is given by the context")
    opts = check_options(model, (rows, cols), steps, schedule, cfg_scale, cfg_schedule, temperature, top_k, top_p,
                         order, n_free=M)
    counts, ws = opts["counts"], opts["ws"]
    temperature, top_k, top_p = opts["temperature"], opts["top_k"], opts["top_p"]
    use_cfg = opts["cfg_scale"] != 1.0

    if per_image:  # (R, M): one order per image, or one (R = 1) shared by the batch
        orders = torch.stack([_free_order(order, rows, cols, known, g) for g in gens])
    else:
        orders = _free_order(order, rows, cols, known, generator)[None]
    table = model.rope(rows, cols)
    branches = 2 if use_cfg else 1
    cache = model.new_cache(branches * B, 1 + len(known_idx) + M - counts[-1])
    tokens = torch.full((B, N), -1, dtype=torch.long)
    tokens[:, known_idx] = ctx_tokens[:, known_idx]
    step_of = torch.full((len(orders), N), -1, dtype=torch.long)

    cls = model.class_tokens(labels)
    if use_cfg:
        cls = torch.cat([cls, model.class_tokens(torch.full_like(labels, cfg.num_classes))])
    ctx_ids = tokens[:, known_idx].to(dev).repeat(branches, 1)
    prev_ids = torch.cat([cls[:, None], ctx_ids], dim=1)  # (branches*B, 1 + K)
    prev_pos = torch.cat([torch.zeros(1, dtype=torch.long), known_idx + 1]).to(dev)[None]  # (1, 1 + K)
    shared = len(orders) == 1
    trace = Trace(rows, cols, orders[0] if shared else orders, counts, ws,
                  step_of.view(rows, cols) if shared else step_of.view(B, rows, cols), cache.nbytes,
                  snapshots=[] if snapshots else None, logits=[] if keep_logits else None)
    confidence = isinstance(order, str) and order == "confidence"
    remaining = orders[0].clone()  # for "confidence": cells not decoded yet
    done = 0
    for s, n in enumerate(counts):
        targets = remaining[None] if confidence else orders[:, done:done + n]  # (R, n or remaining)
        pos = (targets.to(dev) + 1).repeat(1 if shared else branches, 1)  # RoPE rows per cache row
        # The first pass prefills the class token and any context causally, as the first
        # tokens of a training sequence; later passes add one step's tokens as a block.
        model.extend(cache, prev_ids, table[prev_pos], causal=s == 0)
        logits = model.query(cache, table[pos])  # (branches*B, n or remaining, V)
        trace.forward_passes += 1
        trace.queries += targets.shape[1]
        if keep_logits:
            trace.logits.append(logits.clone())
        if use_cfg:
            cond, uncond = logits.chunk(2)
            logits = uncond + ws[s] * (cond - uncond)
        if per_image:
            new = torch.cat([sample_logits(logits[b:b + 1], temperature, top_k, top_p, g) for b, g in enumerate(gens)])
        else:
            new = sample_logits(logits, temperature, top_k, top_p, generator)  # (B, n or remaining)
        nxt = targets
        if confidence:  # keep the n cells whose samples are most likely (mean over the batch)
            probs = torch.softmax(logits / max(temperature, 1e-5), dim=-1)
            conf = probs.gather(-1, new[..., None])[..., 0].mean(0)
            keep = torch.topk(conf, n).indices.sort().values
            nxt, new = targets[:, keep.cpu()], new[:, keep]
            pos = pos[:, keep]
            remaining = remaining[~torch.isin(remaining, nxt[0])]
            orders[0, done:done + n] = nxt[0]
        new = new.cpu()
        tokens.scatter_(1, nxt.expand(B, -1), new)
        step_of.scatter_(1, nxt, s)
        prev_ids, prev_pos = new.to(dev).repeat(branches, 1), pos
        done += n
        if snapshots:
            trace.snapshots.append(tokens.view(B, rows, cols).clone())
        if callback is not None:
            callback(s, len(counts), tokens.view(B, rows, cols))
    return GenerationResult(tokens.view(B, rows, cols), trace)


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
