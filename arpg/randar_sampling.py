"""Decoding for RandAR: a random order, several tokens per step, a KV cache, classifier-free guidance.

Follows upstream's sampler (ziqipang/RandAR ``RandAR/model/randar_gpt.py``, ``RandARTransformer.generate``):

* each image gets its own random order (``order="random"``; any other order of
  :data:`arpg.orders.ORDER_NAMES` or a permutation is shared by the batch);
* step s feeds the instructions of the cells it decodes; the next step first feeds the tokens
  just sampled, each with the instruction of the cell after it, so the cache always holds the
  interleaved sequence ``[class, q0, x0, q1, x1, ...]`` and this step's instructions after it
  (they see each other causally, and the next step overwrites them from the second on);
* ``schedule="cosine"`` is upstream's count rule (:func:`randar_counts`: one token first, then
  ``int((1 - cos(pi/2 (s+1)/steps)) n + 1)`` decoded after step s); other schedules come from
  :func:`arpg.schedules.token_counts`;
* guidance ``uncond + w (cond - uncond)`` with the null class ``num_classes``; ``"linear"`` ramps w
  as upstream from 1 by the share of cells decoded *before* the step (upstream's default
  ``--cfg-scales 1.0,4.0``), ``"constant"`` keeps ``cfg_scale`` (upstream's ``w,w``);
* temperature, then top-k, then top-p (:func:`arpg.sampling.sample_logits`).

Deliberate differences, shared with the other samplers: every random draw (orders, tokens) comes
from an explicit ``torch.Generator``; guidance is on whenever ``cfg_scale != 1`` (upstream: ``> 1``).
Greedy decoding (``top_k=1``) with a given order gives upstream's tokens (``tests/test_randar.py``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .config import RandARConfig
from .options import SamplingOptions, sidecar_section, with_overrides
from .orders import ADAPTIVE_ORDERS, check_permutation, make_order
from .randar import RandAR, interleave
from .sampling import (
    Context,
    GenerationResult,
    StepCallback,
    StepPlan,
    Trace,
    check_labels,
    check_options,
    sample_logits,
)

#: Upstream's sampling defaults (``sample_c2i.py``): 88 steps for 16x16 tokens, linear guidance 1 -> 4, no filtering.
UPSTREAM_SAMPLING: dict[str, Any] = {
    "schedule": "cosine",
    "order": "random",
    "cfg_scale": 4.0,
    "cfg_schedule": "linear",
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
}
UPSTREAM_STEPS, UPSTREAM_CELLS = 88, 256


def randar_defaults(cfg: RandARConfig, weights: str | Path | None = None) -> SamplingOptions:
    """A RandAR model's sampling defaults: :data:`UPSTREAM_SAMPLING` with 88 steps for 256 cells (the same
    share of its cells on another grid), the ``"sampling"`` section of the JSON beside ``weights`` on top."""
    n = cfg.grid_size**2
    steps = max(1, min(n, round(n * UPSTREAM_STEPS / UPSTREAM_CELLS)))
    side = sidecar_section(weights) if weights is not None else {}
    return SamplingOptions.from_config({**UPSTREAM_SAMPLING, "steps": steps, **side})


def randar_counts(n: int, steps: int) -> list[int]:
    """Tokens per step of upstream's parallel decoding of ``n`` cells in at most ``steps`` steps.

    One token first; after step s (0-based) ``min(int((1 - cos(pi/2 (s+1)/steps)) n + 1), n)`` cells
    are decoded, at least one more each step.  Returns positive ints summing to ``n``.
    """
    counts, done, s = [1], 1, 1
    while done < n:
        target = min(int((1.0 - math.cos(math.pi / 2.0 * (s + 1) / steps)) * n + 1), n)
        k = min(max(target - done, 1), n - done)
        counts.append(k)
        done, s = done + k, s + 1
    return counts


def _plan(model: RandAR, grid: tuple[int, int] | None, opts: SamplingOptions, context: Any, stepper: Any) -> StepPlan:
    """Counts and guidance weights per step; ValueError for what RandAR decoding does not offer."""
    if context is not None or stepper is not None:
        raise ValueError("RandAR decoding takes no context (known tokens) and no stepper")
    if isinstance(opts.order, str) and opts.order in ADAPTIVE_ORDERS:
        raise ValueError(f"RandAR decodes in a fixed order; order {opts.order!r} is not offered")
    if opts.step_attention != "joint":
        raise ValueError("RandAR feeds a step's tokens its own way; step_attention is an ARPG option")
    plan = check_options(model, grid, opts)  # duck-typed: it reads the model's cfg.grid_size
    n = plan.rows * plan.cols
    counts = randar_counts(n, opts.steps) if opts.schedule == "cosine" else plan.counts
    before = [sum(counts[:s]) for s in range(len(counts))]
    if opts.cfg_schedule == "linear":
        ws = [1.0 + (opts.cfg_scale - 1.0) * d / n for d in before]
    else:
        ws = [opts.cfg_scale] * len(counts)
    return replace(plan, counts=counts, ws=ws)


def _orders(order: Any, batch: int, rows: int, cols: int, generator: torch.Generator | None) -> torch.Tensor:
    """(B, N) raster cells in decoding order, on the CPU: a random permutation per image, else one for all."""
    n = rows * cols
    if isinstance(order, str) and order == "random":
        dev = generator.device if generator is not None else torch.device("cpu")
        return torch.stack([torch.randperm(n, generator=generator, device=dev).cpu() for _ in range(batch)])
    full = make_order(order, rows, cols) if isinstance(order, str) else check_permutation(order, n).cpu()
    return full.expand(batch, n)


def _trace(plan: StepPlan, orders: torch.Tensor, cache_bytes: int, shots: list[torch.Tensor] | None) -> Trace:
    B, n = orders.shape
    step = torch.repeat_interleave(torch.arange(len(plan.counts)), torch.tensor(plan.counts))  # (N,) per position
    step_of = torch.empty_like(orders).scatter_(1, orders, step.expand(B, n))
    shared = bool((orders == orders[:1]).all())
    order, step_of = (orders[0], step_of[0]) if shared else (orders, step_of)
    grid = (plan.rows, plan.cols)
    return Trace(*grid, order, plan.counts, plan.ws, step_of.view(*order.shape[:-1], *grid), cache_bytes,
                 len(plan.counts), n, shots)  # fmt: skip


def _next_prefix(
    model: RandAR, new: torch.Tensor, instr: torch.Tensor, freqs: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """What the next step feeds before its instructions: the c tokens ``new`` (B, c) just sampled, each
    followed by the instruction of the cell decoded after it in this step (``instr``/``freqs``: this
    step's (B', c, ...), B' = B or 2B with guidance).  The first instruction is cached already."""
    emb = model.tok_embeddings(new).repeat(len(instr) // len(new), 1, 1)  # (B', c, C)
    return interleave(instr, emb)[:, 1:], freqs.repeat_interleave(2, dim=1)[:, 1:]


@torch.inference_mode()
def generate_randar(
    model: RandAR,
    labels: Any,
    options: SamplingOptions | None = None,
    *,
    generator: torch.Generator | int | None = None,
    grid: tuple[int, int] | None = None,
    context: Context | None = None,
    snapshots: bool = False,
    callback: StepCallback | None = None,
    stepper: Any = None,
    **overrides: Any,
) -> GenerationResult:
    """Decode images of ``labels`` (B,) (``num_classes`` = unconditional) in RandAR's parallel random order.

    Arguments as in :func:`arpg.sampling.generate` (``context`` and ``stepper`` must be None; options
    default to :func:`randar_defaults`).  Returns tokens (B, rows, cols) on the CPU and a
    :class:`~arpg.sampling.Trace` (``order``/``step_of`` per image when the images' orders differ).
    """
    opts = with_overrides(options, overrides, randar_defaults(model.cfg))
    labels = check_labels(model, labels)  # duck-typed: it reads cfg.num_classes and the device
    plan = _plan(model, grid, opts, context, stepper)
    if isinstance(generator, int) and not isinstance(generator, bool):
        generator = torch.Generator(model.device).manual_seed(generator)
    B, n, use_cfg = len(labels), plan.rows * plan.cols, opts.cfg_scale != 1.0
    orders = _orders(opts.order, B, plan.rows, plan.cols, generator)
    branches = torch.cat([labels, torch.full_like(labels, model.cfg.num_classes)]) if use_cfg else labels
    freqs = model.cell_freqs(orders.repeat(len(branches) // B, 1), plan.rows, plan.cols)  # (B', N, hs/2, 2)
    instr, cells = model.instructions(freqs), orders.to(model.device)  # (B', N, C)
    cache = model.new_cache(len(branches), 2 * n + 1)
    tokens = torch.full((B, n), -1, dtype=torch.long, device=model.device)
    x, f = model.cls_embedding(branches), torch.zeros_like(freqs[:, :1])  # the first pass feeds the class token
    shots, done = [] if snapshots else None, 0
    for s, c in enumerate(plan.counts):
        step = slice(done, done + c)
        x, f = torch.cat([x, instr[:, step]], dim=1), torch.cat([f, freqs[:, step]], dim=1)
        logits = model.extend(cache, x, f)[:, -c:]  # (B', c, V): the outputs at this step's instructions
        if use_cfg:
            cond, uncond = logits.chunk(2)
            logits = uncond + (cond - uncond) * plan.ws[s]
        new = sample_logits(logits, opts.temperature, opts.top_k, opts.top_p, generator)  # (B, c)
        tokens.scatter_(1, cells[:, step], new)
        x, f = _next_prefix(model, new, instr[:, step], freqs[:, step])
        cache.length, done = 2 + 2 * done, done + c  # keep [class, ..., q_done]; x_done comes next
        if shots is not None:
            shots.append(tokens.view(B, plan.rows, plan.cols).to("cpu", copy=True))
        if callback is not None:
            callback(s, len(plan.counts), tokens.view(B, plan.rows, plan.cols).cpu())
    result = tokens.view(B, plan.rows, plan.cols).cpu()
    return GenerationResult(result, _trace(plan, orders, cache.nbytes, shots))
