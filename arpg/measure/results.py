"""The rows and the result of a benchmark run (:func:`arpg.measure.runner.run_bench`).

Each row sets measured times and memory next to the formulas' FLOPs and cache bytes
(:mod:`arpg.measure.formulas`); :func:`bench_results` is the JSON-serialisable dict of the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..config import ARPGConfig
from ..sampling import Trace
from .formulas import cache_bytes, cache_length, decode_flops, kv_saving, param_count
from .probes import PeakMemory, machine_string
from .report import params_text
from .timing import Key, Timings, median

if TYPE_CHECKING:
    from .runner import BenchPlan, BenchSubject


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
    """The JSON-serialisable result of :func:`arpg.measure.runner.run_bench`."""
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
