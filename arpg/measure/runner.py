"""Benchmarks: decoding steps versus speed, memory and quality, side by side in one run.

For every setting the same weights and the same batch are decoded three ways
(:data:`arpg.sampling.METHODS`): ARPG randomized parallel decoding with ``steps``
forward passes, raster order one token per step (the LlamaGen way) and random order
one token per step.  The runs are interleaved (warm-up passes first, excluded), and
every reported time is the median of ``repeats`` runs.

Measured per row: images/s, latency of one ``generate`` call for the batch, forward
passes, the bytes of the caches actually allocated (``trace.kv_cache_bytes``), peak
process memory, achieved FLOP/s; computed (:mod:`arpg.measure.formulas`): the bytes a
per-layer cache would need and the FLOPs of the call.  The machine's own matmul peak
(fp32 and bf16, :mod:`arpg.measure.probes`) is measured in the same run so achieved
FLOP/s can be read as a fraction of what the hardware allows.

Entry points: :func:`run_bench` (the ``bench`` command and the app) and :func:`random_model`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from ..config import ARPG_PRESETS, ARPGConfig
from ..model import ARPG, RMSNorm
from ..options import SamplingOptions, model_defaults
from ..sampling import METHODS, Trace, generate, method_kwargs
from ..validation import MAX_SEED, check_choice, check_int
from . import evaluate
from .probes import load_average, machine_info, matmul_peak_gflops
from .results import bench_results, bench_rows
from .timing import CompiledSteps, Key, Progress, Ticker, timed_runs

log = logging.getLogger(__name__)

#: Step counts of a default run.
DEFAULT_STEPS = (8, 16, 32, 64, 128, 256)
#: ``--model`` values: the shipped pipeline or a preset built with random weights.
MODEL_CHOICES = ("shipped", *ARPG_PRESETS)
#: What a row can time: the decoding strategies, and "baseline" (ARPG decoding on a plain copy of the model:
#: float32, projections unfused, weights not prepacked), so every speed-up of the default path is measured in one run.
BENCH_METHODS = (*METHODS, "baseline")


def plain_copy(model: ARPG) -> ARPG:
    """The same weights as a plain model: float32, unfused, unpacked (the ``--baseline`` of ``bench``)."""
    with torch.device("meta"):
        base = ARPG(model.cfg)
    state = {k: v.detach().to(torch.float32, copy=True) for k, v in model.state_dict().items()}
    base.load_state_dict(state, assign=True)
    return base.to(model.device).requires_grad_(False).eval()


def random_model(
    name: str | ARPGConfig,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    seed: int = 0,
    std: float = 0.02,
) -> ARPG:
    """An ARPG model with random weights, built fast.

    Built on the ``meta`` device, cast, materialised with ``to_empty`` and filled in place
    (normal(0, std) for linears and embeddings, ones for norms): no default init of
    hundreds of millions of weights.  Random weights suffice for speed and memory.
    """
    cfg = name if isinstance(name, ARPGConfig) else ARPGConfig.from_name(name)
    with torch.device("meta"):
        model = ARPG(cfg)
    model = model.to(dtype=dtype).to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, RMSNorm):
                module.weight.fill_(1.0)
            elif isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                module.weight.normal_(0.0, std, generator=gen)
    return model.requires_grad_(False).eval()


# -- the plan -----------------------------------------------------------------------------------------
@dataclass
class BenchPlan:
    """The validated settings of one run: every (method, steps, batch) timed, in order."""

    settings: list[Key]
    batches: list[int]
    repeats: int
    warmup: int
    quality_per_class: int

    @property
    def quality_jobs(self) -> list[tuple[str, int]]:
        """(method, steps) pairs: quality does not depend on the batch."""
        return list(dict.fromkeys((m, s) for m, s, _ in self.settings))


def plan_bench(
    n_cells: int,
    steps: Sequence[int],
    batch: int | Sequence[int],
    methods: Sequence[str],
    repeats: int,
    warmup: int,
    quality_per_class: int,
) -> BenchPlan:
    """Check the arguments of :func:`run_bench` (``ValueError`` naming the argument) and list its settings.

    ARPG runs once per step count and batch; "raster" and "random1" decode one token per
    step, so they appear once per batch size (steps = ``n_cells``).
    """
    batches = sorted({check_int("batch", b, 1) for b in ([batch] if isinstance(batch, (int, str)) else batch)})
    if not batches:
        raise ValueError("give at least one batch size")
    steps = sorted({check_int("steps", s, 1) for s in steps})
    if not methods:
        raise ValueError(f"methods must be among {', '.join(BENCH_METHODS)}, got none")
    for m in methods:
        check_choice("methods", m, BENCH_METHODS)
    if not steps and ("arpg" in methods or "baseline" in methods):
        raise ValueError("give at least one step count")
    if steps and steps[-1] > n_cells:
        raise ValueError(f"steps must be between 1 and {n_cells} (the cells of the grid), got {steps[-1]}")
    settings: list[Key] = []
    for b in batches:
        settings += [(m, s, b) for s in steps for m in ("arpg", "baseline") if m in methods]
        settings += [(m, n_cells, b) for m in METHODS if m != "arpg" and m in methods]
    return BenchPlan(
        settings,
        batches,
        check_int("repeats", repeats, 1),
        check_int("warmup", warmup, 0),
        check_int("quality_per_class", quality_per_class, 1),
    )


# -- the run ----------------------------------------------------------------------------------------
@dataclass
class BenchSubject:
    """What is decoded and how: the model (and pipeline, when decoding to pixels), labels, options."""

    model: ARPG
    pipe: Any
    labels: list[int]
    options: SamplingOptions
    seed: int
    decode: bool
    autocast: bool
    baseline: ARPG | None = None

    @property
    def n_cells(self) -> int:
        """Cells of the model's grid."""
        return self.model.cfg.grid_size**2

    def __call__(self, method: str, steps: int, batch: int) -> Trace:
        """One ``generate`` call of a setting; returns its trace."""
        plain = method == "baseline"
        opts = self.options.replace(**method_kwargs("arpg" if plain else method, steps, self.n_cells))
        model = self.baseline if plain else self.model
        ctx = torch.autocast(model.device.type, dtype=torch.bfloat16) if self.autocast and not plain else nullcontext()
        with ctx:
            res = generate(model, self.labels[:batch], opts, generator=self.seed)
            if self.decode:
                self.pipe.decode(res.tokens)
            return res.trace


def _quality_rows(subject: BenchSubject, plan: BenchPlan, tick: Ticker) -> dict[tuple[str, int], dict]:
    """Judge accuracy and Frechet distance per (method, steps), outside the timed runs."""
    rows: dict[tuple[str, int], dict] = {}
    ref = evaluate.reference_features(subject.pipe)
    for method, s in plan.quality_jobs:
        plain = method == "baseline"  # the same decoding on the plain copy of the model
        pipe = dataclasses.replace(subject.pipe, model=subject.baseline) if plain else subject.pipe
        imgs, labs = evaluate.generated(
            pipe,
            plan.quality_per_class,
            s,
            "arpg" if plain else method,
            batch=plan.batches[-1],
            seed=subject.seed,
            progress=False,
            options=subject.options,
        )
        rows[(method, s)] = {**evaluate.generation_quality(pipe, imgs, labs, ref), "quality_samples": len(imgs)}
        tick(f"quality: {method}, {s} steps")
    return rows


def _subject(
    pipe_or_model: Any,
    options: SamplingOptions | None,
    seed: int,
    batches: list[int],
    decode_images: bool,
    autocast: bool,
    baseline: bool,
) -> BenchSubject:
    pipe = None if isinstance(pipe_or_model, ARPG) else pipe_or_model
    model: ARPG = pipe_or_model if pipe is None else pipe.model
    if options is None:
        options = pipe.defaults if pipe is not None else model_defaults(model.cfg)
    decode = bool(decode_images and pipe is not None and getattr(pipe, "vq", None) is not None)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(model.cfg.num_classes, (batches[-1],), generator=gen).tolist()
    return BenchSubject(
        model, pipe, labels, options, seed, decode, bool(autocast), plain_copy(model) if baseline else None
    )


def _machine(device: torch.device, measure_peak: bool, tick: Ticker) -> tuple[dict, dict[str, float | None]]:
    """Machine information (warning when it is busy) and the matmul peak (None values when not measured)."""
    info = machine_info(device)
    busy = info.get("load_average", [0.0])[0]
    if busy > (info["cores"] or 1):
        log.warning("the machine is busy (load average %.1f on %s cores): timings will be noisy", busy, info["cores"])
    peak: dict[str, float | None] = {"float32": None, "bfloat16": None}
    if measure_peak:
        peak = matmul_peak_gflops(device)
        tick("matmul peak measured")
        log.info("matmul peak: %s GFLOP/s", peak)
    return info, peak


def run_bench(
    pipe_or_model: Any,
    steps: Sequence[int] = DEFAULT_STEPS,
    batch: int | Sequence[int] = 16,
    methods: Sequence[str] = METHODS,
    repeats: int = 3,
    warmup: int = 1,
    quality: bool = False,
    quality_per_class: int = 20,
    decode_images: bool = True,
    progress: Progress | None = None,
    *,
    options: SamplingOptions | None = None,
    seed: int = 0,
    autocast: bool = False,
    compile: bool = False,
    measure_peak: bool = True,
    model_name: str | None = None,
    command: str | None = None,
) -> dict:
    """Measure every method, step count and batch size, interleaved, on the same weights.

    pipe_or_model: a :class:`arpg.pipeline.Pipeline` (with ``decode_images`` the timed call
    is ``pipe.generate``, i.e. tokens decoded to pixels) or a bare :class:`ARPG` (the
    transformer only, labels drawn from all its classes).  ``steps`` are the ARPG step
    counts (see :func:`plan_bench`); ``batch`` is one size or several.  ``options``
    (default: the pipeline's defaults, or :func:`arpg.options.model_defaults`) gives
    guidance and the rest; each method sets steps and order.  The first ``warmup`` passes
    over all settings are not timed; each row reports medians of ``repeats`` timed runs, the
    order of settings alternating between passes.  ``autocast`` runs bf16 autocast over the
    model's weights; ``compile`` wraps the step function in ``torch.compile`` (a failure is
    caught and reported, and the run continues eagerly).  ``quality`` (a pipeline with a judge
    only) adds judge accuracy and Frechet distance of ``quality_per_class`` images per class
    and setting, outside the timed runs.  ``progress(fraction, text)`` is called as the run
    advances.  Returns the JSON-serialisable dict read by ``arpg.viz.plots.tradeoff_figure``.
    """
    model: ARPG = pipe_or_model if isinstance(pipe_or_model, ARPG) else pipe_or_model.model
    plan = plan_bench(model.cfg.grid_size**2, steps, batch, methods, repeats, warmup, quality_per_class)
    seed = check_int("seed", seed, 0, MAX_SEED)
    if quality and (isinstance(pipe_or_model, ARPG) or getattr(pipe_or_model, "judge", None) is None):
        raise ValueError("quality needs the shipped model's judge classifier (run with the shipped model)")
    baseline = any(k[0] == "baseline" for k in plan.settings)
    subject = _subject(pipe_or_model, options, seed, plan.batches, decode_images, autocast, baseline)
    total = (plan.warmup + plan.repeats) * len(plan.settings) + (len(plan.quality_jobs) if quality else 0)
    tick = Ticker(total + (1 if measure_peak else 0), progress)
    info, peak = _machine(model.device, measure_peak, tick)
    compiled = CompiledSteps(model, compile)
    timings = timed_runs(subject, plan.settings, plan.warmup, plan.repeats, model.device, compiled, tick)
    info["load_average_end"] = load_average()
    quality_rows = _quality_rows(subject, plan, tick) if quality else {}
    rows = bench_rows(subject, plan, timings, quality_rows, peak)
    name = model_name or getattr(subject.pipe, "name", None) or "ARPG"
    return bench_results(subject, plan, info, peak, compiled.info, rows, name=name, command=command)
