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

The run in order: the plan (:func:`plan_bench`, the validated settings), the subject (what is
decoded and how), the timed runs (:mod:`arpg.measure.timing`), then the rows and the result
(:func:`bench_rows`, :func:`bench_results`: the JSON-serialisable dict of the run).

Entry points: :func:`run_bench` (the ``bench`` command and the app) and :func:`random_model`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from ..config import ARPGConfig
from ..model import ARPG, RMSNorm
from ..options import SamplingOptions, model_defaults
from ..pipeline import Pipeline
from ..sampling import METHODS, Trace, generate, method_kwargs
from ..validation import MAX_SEED, check_choice, check_int
from . import evaluate
from .formulas import cache_bytes, cache_length, decode_flops, kv_saving, param_count
from .probes import PeakMemory, load_average, machine_info, machine_string, matmul_peak_gflops
from .report import params_text
from .timing import CompiledSteps, Key, Progress, Ticker, Timings, median, timed_runs

log = logging.getLogger(__name__)

#: Step counts of a default run.
DEFAULT_STEPS = (8, 16, 32, 64, 128, 256)
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
    pipe: Pipeline | None
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
    pipe_or_model: Pipeline | ARPG,
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


# -- the rows and the result ------------------------------------------------------------------------
def bench_row(
    cfg: ARPGConfig,
    key: Key,
    times: list[float],
    mem: list[tuple[int, int]],
    trace: Trace,
    branches: int,
    elem: int,
    ref_peak: float | None,
    quality: dict,
) -> dict:
    """One table row: measured times and memory next to the formulas' FLOPs and cache bytes."""
    method, s, b = key
    lat = median(times)
    b_eff = branches * b
    flops = decode_flops(cfg, trace.counts, b_eff)
    length = cache_length(sum(trace.counts), trace.counts)
    per_layer = cache_bytes(cfg, b_eff, length, elem, per_layer=True)
    gflops = flops / lat / 1e9
    return {
        "method": method,
        "steps": s,
        "batch": b,
        "batch_eff": b_eff,
        "images_per_s": b / lat,
        "latency_s": lat,
        "latency_per_image_s": lat / b,
        "latency_runs_s": times,
        "forward_passes": trace.forward_passes,
        "kv_cache_bytes": int(trace.kv_cache_bytes),
        "per_layer_cache_bytes": per_layer,
        "kv_saving": 1.0 - trace.kv_cache_bytes / per_layer,
        "cache_length": length,
        "peak_mem_bytes": max(m[0] for m in mem),
        "peak_mem_delta_bytes": max(m[1] for m in mem),
        "gflop": flops / 1e9,
        "achieved_gflops": gflops,
        "peak_fraction": gflops / ref_peak if ref_peak else None,
        "accuracy": quality.get("accuracy"),
        "frechet": quality.get("frechet"),
        "quality_samples": quality.get("quality_samples"),
    }


def bench_rows(subject: BenchSubject, plan: BenchPlan, t: Timings, quality: dict, peak: dict) -> list[dict]:
    """Every setting's row, with the speed-ups against raster order (same batch) and the baseline
    (same steps and batch); achieved FLOP/s as a fraction of the peak of the dtype that row computes in."""
    model = subject.model
    branches = 2 if subject.options.cfg_scale != 1.0 else 1
    fast = "bfloat16" if subject.autocast else str(model.dtype).removeprefix("torch.")
    rows = []
    for k in plan.settings:
        dtype = "float32" if k[0] == "baseline" else fast
        elem = torch.empty((), dtype=getattr(torch, dtype)).element_size()
        rows.append(
            bench_row(
                model.cfg, k, t.times[k], t.mem[k], t.traces[k], branches, elem, peak.get(dtype), quality.get(k[:2], {})
            )
            | {"compute_dtype": dtype}
        )
    raster = {r["batch"]: r for r in rows if r["method"] == "raster"}
    plain = {(r["steps"], r["batch"]): r for r in rows if r["method"] == "baseline"}
    for r in rows:
        base, ref = raster.get(r["batch"]), plain.get((r["steps"], r["batch"]))
        r["speedup_vs_raster"] = r["images_per_s"] / base["images_per_s"] if base else None
        r["speedup_vs_baseline"] = r["images_per_s"] / ref["images_per_s"] if ref and r is not ref else None
    return rows


def bench_summary(cfg: ARPGConfig, rows: list[dict]) -> dict:
    """The headline numbers: ARPG speed-ups against raster order and the baseline, KV saving, best peak fraction."""
    arpg_rows = [r for r in rows if r["method"] == "arpg"]
    best = max((r for r in arpg_rows if r["peak_fraction"] is not None), key=lambda r: r["peak_fraction"], default=None)
    return {
        "speedup_vs_raster": [
            {"batch": r["batch"], "steps": r["steps"], "speedup": r["speedup_vs_raster"]}
            for r in arpg_rows
            if r["speedup_vs_raster"] is not None
        ],
        "speedup_vs_baseline": [
            {"batch": r["batch"], "steps": r["steps"], "speedup": r["speedup_vs_baseline"]}
            for r in arpg_rows
            if r["speedup_vs_baseline"] is not None
        ],
        "kv_saving": kv_saving(cfg),
        "best_peak_fraction": None
        if best is None
        else {"fraction": best["peak_fraction"], "batch": best["batch"], "steps": best["steps"]},
    }


def bench_results(
    subject: BenchSubject,
    plan: BenchPlan,
    info: dict,
    peak: dict,
    compile_info: dict,
    rows: list[dict],
    *,
    name: str,
    command: str | None,
) -> dict:
    """The JSON-serialisable result of :func:`run_bench`."""
    model = subject.model
    weights_dtype = str(model.dtype).removeprefix("torch.")
    return {
        "model": f"{name} ({params_text(param_count(model.cfg))} params)",
        "machine": machine_string(info),
        "command": command or "run_bench()",
        "torch": torch.__version__,
        "dtype": f"{weights_dtype} weights, bfloat16 autocast" if subject.autocast else weights_dtype,
        "matmul_peak_gflops": peak,
        "machine_info": info,
        "config": model.cfg.to_dict(),
        "params": param_count(model.cfg),
        "n_cells": subject.n_cells,
        "batches": plan.batches,
        "cfg_scale": subject.options.cfg_scale,
        "labels": subject.labels,
        "seed": subject.seed,
        "repeats": plan.repeats,
        "warmup": plan.warmup,
        "timed_call": "Pipeline.generate (tokens decoded to pixels)"
        if subject.decode
        else "sampling.generate (transformer only)",
        "autocast": subject.autocast,
        "compile": compile_info,
        "peak_memory_method": PeakMemory(model.device).method,
        "rows": rows,
        "summary": bench_summary(model.cfg, rows),
    }


def run_bench(
    pipe_or_model: Pipeline | ARPG,
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
