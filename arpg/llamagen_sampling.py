"""Decoding for LlamaGen: raster order, one token per step, a KV cache, classifier-free guidance.

Follows upstream's sampler (FoundationVision/LlamaGen ``autoregressive/models/generate.py``):
the conditional rows and the null-class rows (label ``num_classes``) run as one batch, the first
pass feeds the class token and samples cell 0, every later pass feeds the token just sampled and
samples the next cell; guided logits are ``uncond + (cond - uncond) * w``; temperature, then
top-k, then top-p, as upstream (:func:`arpg.sampling.sample_logits`).

Differences, all deliberate and shared with ARPG's sampler: every random draw comes from an
explicit ``torch.Generator``; guidance is on whenever ``cfg_scale != 1`` (upstream: ``> 1``), so
one option means one thing for every family; ``cfg_schedule`` is honoured (upstream's is
``"constant"``, the default here); upstream's ``cfg_interval`` is not offered.  Greedy decoding
(``top_k=1``) gives upstream's tokens (``tests/test_llamagen.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .config import LlamaGenConfig
from .llamagen import LlamaGen
from .options import SamplingOptions, sidecar_section, with_overrides
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

#: Upstream's sampling defaults (``autoregressive/sample/sample_c2i.py``), one token per step in raster order.
UPSTREAM_SAMPLING: dict[str, Any] = {
    "schedule": "k=1",
    "order": "raster",
    "cfg_scale": 4.0,
    "cfg_schedule": "constant",
    "temperature": 1.0,
    "top_k": 2000,
    "top_p": 1.0,
}


def llamagen_defaults(cfg: LlamaGenConfig, weights: str | Path | None = None) -> SamplingOptions:
    """A LlamaGen model's sampling defaults: :data:`UPSTREAM_SAMPLING` with ``steps`` = its cells, the
    ``"sampling"`` section of the JSON beside ``weights`` on top."""
    side = sidecar_section(weights) if weights is not None else {}
    return SamplingOptions.from_config({**UPSTREAM_SAMPLING, "steps": cfg.grid_size**2, **side})


def _check_plan(
    model: LlamaGen, grid: tuple[int, int] | None, opts: SamplingOptions, context: Context | None, stepper: Any
) -> StepPlan:
    """The step plan of ``opts``; ValueError unless it is one token per step in raster order."""
    if context is not None or stepper is not None:
        raise ValueError("LlamaGen decoding takes no context (known tokens) and no stepper")
    plan = check_options(model, grid, opts)  # duck-typed: it reads the model's cfg.grid_size
    n = plan.rows * plan.cols
    if opts.order != "raster" or opts.steps != n or plan.counts != [1] * n:
        raise ValueError(
            f"LlamaGen decodes one token per step in raster order: order must be 'raster', steps {n} and "
            f"schedule 'k=1', got order={opts.order!r}, steps={opts.steps}, schedule={opts.schedule!r}"
        )
    return plan


def _trace(plan: StepPlan, cache_bytes: int, snapshots: list[torch.Tensor] | None) -> Trace:
    n = plan.rows * plan.cols
    order = torch.arange(n)
    return Trace(
        plan.rows,
        plan.cols,
        order,
        plan.counts,
        plan.ws,
        order.view(plan.rows, plan.cols),
        cache_bytes,
        n,
        n,
        snapshots,
    )


@torch.inference_mode()
def generate_raster(
    model: LlamaGen,
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
    """Decode images of ``labels`` (B,) (``num_classes`` = unconditional) one token per step in raster order.

    Arguments as in :func:`arpg.sampling.generate` (``context`` and ``stepper`` must be None); options
    (default :func:`llamagen_defaults`) must say raster order and one token per step.  Returns tokens
    (B, rows, cols) on the CPU and a :class:`~arpg.sampling.Trace`.
    """
    opts = with_overrides(options, overrides, llamagen_defaults(model.cfg))
    labels = check_labels(model, labels)  # duck-typed: it reads cfg.num_classes and the device
    plan = _check_plan(model, grid, opts, context, stepper)
    if isinstance(generator, int) and not isinstance(generator, bool):
        generator = torch.Generator(model.device).manual_seed(generator)
    B, n, use_cfg = len(labels), plan.rows * plan.cols, opts.cfg_scale != 1.0
    branches = torch.cat([labels, torch.full_like(labels, model.cfg.num_classes)]) if use_cfg else labels
    table, cache = model.rope(plan.rows, plan.cols), model.new_cache(len(branches), n)
    tokens = torch.full((B, n), -1, dtype=torch.long, device=model.device)
    x, shots = model.cls_embedding(branches), [] if snapshots else None  # the first pass feeds the class token
    for s in range(n):
        logits = model.extend(cache, x, table[s : s + 1])[:, -1]  # (B or 2B, V): the input at row s predicts cell s
        if use_cfg:
            cond, uncond = logits.chunk(2)
            logits = uncond + (cond - uncond) * plan.ws[s]
        new = sample_logits(logits, opts.temperature, opts.top_k, opts.top_p, generator)  # (B,)
        tokens[:, s] = new
        x = model.tok_embeddings(new.repeat(len(branches) // B))[:, None]
        if shots is not None:
            shots.append(tokens.view(B, plan.rows, plan.cols).to("cpu", copy=True))
        if callback is not None:
            callback(s, n, tokens.view(B, plan.rows, plan.cols).cpu())
    return GenerationResult(tokens.view(B, plan.rows, plan.cols).cpu(), _trace(plan, cache.nbytes, shots))
