"""Benchmarks: decoding steps versus speed, memory and quality, side by side in one run.

For every setting the same weights and the same batch are decoded three ways
(:data:`arpg.sampling.METHODS`): ARPG randomized parallel decoding with ``steps``
forward passes, raster order one token per step (the LlamaGen way) and random order
one token per step.  The runs are interleaved (warm-up passes first, excluded), and
every reported time is the median of ``repeats`` runs.

Measured per row: images/s, latency of one ``generate`` call for the batch, forward
passes, the bytes of the caches actually allocated (``trace.kv_cache_bytes``), peak
process memory, achieved FLOP/s; computed: the bytes a per-layer cache would need
(:func:`cache_bytes`) and the FLOPs of the call (:func:`decode_flops`).  The
machine's own matmul peak (fp32 and bf16) is measured in the same run so achieved
FLOP/s can be read as a fraction of what the hardware allows.

Entry points: :func:`run_bench` (also used by the app), :func:`format_table` and the
``python -m arpg bench`` command (:func:`register`).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shlex
import statistics
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from .config import ARPG_PRESETS, ARPGConfig
from .model import ARPG, RMSNorm
from .sampling import METHODS, generate, method_kwargs

log = logging.getLogger(__name__)

#: Step counts of a default run.
DEFAULT_STEPS = (8, 16, 32, 64, 128, 256)
#: ``--model`` values: the shipped pipeline or a preset built with random weights.
MODEL_CHOICES = ("shipped", *ARPG_PRESETS)
BENCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

Progress = Callable[[float, str], None]


# -- analytic counts ------------------------------------------------------------------------------
def cache_length(n_cells: int, counts: Sequence[int], n_context: int = 0) -> int:
    """Length of the caches one ``generate`` call allocates.

    The class token and every decoded token except those of the last step are fed
    (tokens of the last step are never fed back): ``1 + n_context + n_cells - counts[-1]``
    where ``n_cells`` counts the cells decoded (``sum(counts)``).
    """
    return 1 + n_context + n_cells - counts[-1]


def cache_bytes(cfg: ARPGConfig, batch_eff: int, length: int, elem_bytes: int, per_layer: bool = False) -> int:
    """Bytes of the K/V caches of one decode call.

    ``batch_eff`` is the batch including the classifier-free-guidance doubling, ``length``
    the cache length (:func:`cache_length`), ``elem_bytes`` the bytes of one element.

    * ours (``per_layer=False``): every self layer keeps its own K and V, and one shared
      K/V serves all cross layers: ``(2 * n_self + 2) * batch_eff * length * dim * bytes``;
    * per-layer equivalent (``per_layer=True``): every layer, self and cross, keeps its own
      K and V, as LlamaGen does: ``2 * (n_self + n_cross) * batch_eff * length * dim * bytes``.
    """
    tensors = 2 * (cfg.n_self_layers + cfg.n_cross_layers) if per_layer else 2 * cfg.n_self_layers + 2
    return tensors * batch_eff * length * cfg.dim * elem_bytes


def linear_params(cfg: ARPGConfig) -> tuple[int, int]:
    """Weights touched by the linear layers (P_fed, P_query).

    P_fed, per content token fed through the self stack: per self layer the attention's
    q, k, v, proj (4 d^2) and the SwiGLU (3 d f), plus the shared K/V projection (2 d^2).
    P_query, per query through the cross stack: per cross layer q, proj (2 d^2) and the
    SwiGLU (3 d f), plus the output head (d V).  Embedding lookups touch no FLOPs.
    """
    d, f = cfg.dim, cfg.ffn_dim
    fed = cfg.n_self_layers * (4 * d * d + 3 * d * f) + 2 * d * d
    query = cfg.n_cross_layers * (2 * d * d + 3 * d * f) + d * cfg.vocab_size
    return fed, query


def decode_flops(cfg: ARPGConfig, counts: Sequence[int], batch_eff: int, n_prefix: int = 1) -> int:
    """FLOPs of one ``generate`` call (the only FLOP formula of the project).

    At step s, with ``n_fed`` content tokens fed (the ``n_prefix`` class/context tokens at
    step 0, the ``counts[s-1]`` tokens decoded at the previous step after), ``L_s`` keys in
    the cache once they are appended (``n_prefix + sum(counts[:s])``) and ``n_q = counts[s]``
    queries::

        flops_s = B_eff * (2 * P_fed * n_fed + 2 * P_query * n_q
                           + 4 * d * L_s * (n_self * n_fed + n_cross * n_q))

    The first two terms are the linears (2 FLOPs per weight per token, :func:`linear_params`),
    the last is attention (Q K^T and A V, 2 * d * L_s FLOPs each per token and layer, summed
    over heads).  Norms, RoPE, activations, softmax and sampling are not counted.
    """
    p_fed, p_query = linear_params(cfg)
    d, total, length = cfg.dim, 0, 0
    for s, n_q in enumerate(counts):
        n_fed = n_prefix if s == 0 else counts[s - 1]
        length += n_fed
        total += (2 * p_fed * n_fed + 2 * p_query * n_q
                  + 4 * d * length * (cfg.n_self_layers * n_fed + cfg.n_cross_layers * n_q))
    return batch_eff * total


def param_count(cfg: ARPGConfig) -> int:
    """Parameters of the model (embeddings, both stacks, norms, head)."""
    d, f = cfg.dim, cfg.ffn_dim
    self_layer = 4 * d * d + 3 * d * f + 2 * d
    cross_layer = 2 * d * d + 3 * d * f + 2 * d
    return (cfg.n_embeddings * d + cfg.n_self_layers * self_layer + cfg.n_cross_layers * cross_layer
            + 2 * d * d + d + d + d * cfg.vocab_size)


# -- the machine ------------------------------------------------------------------------------------
def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or the platform's answer)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model, cores, torch threads, torch/Python versions and the GPU if one is used."""
    info: dict[str, Any] = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
                            "torch": torch.__version__, "python": platform.python_version(),
                            "platform": platform.platform(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def _params_text(n: int) -> str:
    return f"{n / 1e6:.0f}M" if n >= 10e6 else f"{n / 1e6:.2f}M"


def machine_string(info: dict[str, Any]) -> str:
    """One line for plots and tables."""
    if info.get("gpu"):
        return f"{info['gpu']} (host: {info['cpu']}, {info['cores']} cores)"
    return f"{info['cpu']}, {info['cores']} cores, {info['threads']} threads"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device | str = "cpu", dtypes: Iterable[str] = ("float32", "bfloat16"),
                       size: int | None = None, min_seconds: float = 0.3, min_reps: int = 3) -> dict[str, float | None]:
    """Best observed GFLOP/s of a square ``size`` x ``size`` matmul per dtype.

    One untimed call, then timed calls until ``min_reps`` and ``min_seconds`` are both
    reached; the best rate is reported (a peak, not a median).  A dtype the device
    cannot multiply gives None.
    """
    device = torch.device(device)
    n = size or (8192 if device.type == "cuda" else 2048)
    out: dict[str, float | None] = {}
    for name in dtypes:
        try:
            dt = BENCH_DTYPES[name]
            a = torch.randn(n, n, device=device).to(dt)
            b = torch.randn(n, n, device=device).to(dt)
            torch.matmul(a, b)
            _sync(device)
            best, spent, reps = float("inf"), 0.0, 0
            while reps < min_reps or spent < min_seconds:
                t0 = time.perf_counter()
                torch.matmul(a, b)
                _sync(device)
                dt_s = time.perf_counter() - t0
                best, spent, reps = min(best, dt_s), spent + dt_s, reps + 1
            out[name] = 2 * n ** 3 / best / 1e9
        except (RuntimeError, TypeError) as e:  # dtype not supported here
            log.warning("matmul peak for %s not measured: %s", name, e)
            out[name] = None
    return out


# -- memory -----------------------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int | None:
    """Resident set size of this process from /proc/self/statm (None where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


class PeakMemory:
    """Peak memory while a block runs.

    * CUDA: ``torch.cuda.max_memory_allocated`` after a reset (accelerator memory);
    * Linux: a daemon thread samples the resident set size from /proc/self/statm every
      ``interval`` seconds (plus one sample at entry and at exit): the peak RSS of the
      whole process, weights included;
    * elsewhere: ``ru_maxrss``, the peak since the process started.

    ``peak`` is absolute bytes, ``baseline`` the value at entry, ``delta = peak - baseline``.
    """

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.005):
        self.device = torch.device(device)
        self.interval = interval
        self.peak = self.baseline = 0
        if self.device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated"
        elif _rss_bytes() is not None:
            self.method = f"RSS sampled from /proc/self/statm every {interval * 1000:g} ms"
        else:
            self.method = "ru_maxrss (peak since process start)"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def delta(self) -> int:
        return max(0, self.peak - self.baseline)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _rss_bytes()
            if rss is not None and rss > self.peak:
                self.peak = rss

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = self.peak = torch.cuda.memory_allocated(self.device)
        elif self.method.startswith("RSS"):
            self.baseline = self.peak = _rss_bytes() or 0
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        else:
            self.baseline = self.peak = _maxrss_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.peak = max(self.peak, _rss_bytes() or 0)
        else:
            self.peak = _maxrss_bytes()


# -- models -----------------------------------------------------------------------------------------
def random_model(name: str | ARPGConfig, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                 seed: int = 0, std: float = 0.02) -> ARPG:
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


# -- the benchmark ----------------------------------------------------------------------------------
def _median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def _compile_steps(model: ARPG) -> Callable[[], None]:
    """Replace ``model.extend``/``model.query`` (the step function) by compiled versions;
    returns a function that restores the eager ones."""
    model.extend = torch.compile(model.extend, dynamic=True)  # type: ignore[method-assign]
    model.query = torch.compile(model.query, dynamic=True)  # type: ignore[method-assign]

    def restore() -> None:
        for name in ("extend", "query"):
            model.__dict__.pop(name, None)

    return restore


def run_bench(pipe_or_model: Any, steps: Sequence[int] = DEFAULT_STEPS, batch: int | Sequence[int] = 16,
              methods: Sequence[str] = METHODS, repeats: int = 3, warmup: int = 1, quality: bool = False,
              quality_per_class: int = 20, decode_images: bool = True, progress: Progress | None = None, *,
              cfg_scale: float | None = None, seed: int = 0, autocast: bool = False, compile: bool = False,
              measure_peak: bool = True, model_name: str | None = None, command: str | None = None) -> dict:
    """Measure every method, step count and batch size, interleaved, on the same weights.

    pipe_or_model: a :class:`arpg.pipeline.Pipeline` (with ``decode_images`` the timed call
    is ``pipe.generate``, i.e. tokens decoded to pixels) or a bare :class:`ARPG` (the
    transformer only, labels drawn from all its classes).  ``steps`` are the ARPG step
    counts; "raster" and "random1" decode one token per step, so they appear once per
    batch size (steps = number of cells).  ``batch`` is one size or several.  The first
    ``warmup`` passes over all settings are not timed; each row reports medians of
    ``repeats`` timed runs, the order of settings alternating between passes.
    ``autocast`` runs bf16 autocast over the model's weights; ``compile`` wraps the step
    function (``model.extend``/``model.query``) in ``torch.compile`` (a failure is caught
    and reported, and the run continues eagerly).  ``quality`` (a pipeline with a judge
    only) adds judge accuracy and Frechet distance of ``quality_per_class`` images per
    class and setting, outside the timed runs.  ``progress(fraction, text)`` is called as
    the run advances.  Returns the JSON-serialisable dict read by
    ``demo.render.tradeoff_figure``.
    """
    pipe = None if isinstance(pipe_or_model, ARPG) else pipe_or_model
    model: ARPG = pipe_or_model if pipe is None else pipe.model
    cfg = model.cfg
    device = model.device
    n_cells = cfg.grid_size * cfg.grid_size
    batches = sorted({_positive_int("batch", b) for b in ([batch] if isinstance(batch, (int, str)) else batch)})
    if not batches:
        raise ValueError("give at least one batch size")
    repeats = _positive_int("repeats", repeats)
    warmup = _positive_int("warmup", warmup, lo=0)
    quality_per_class = _positive_int("quality_per_class", quality_per_class)
    steps = sorted({_positive_int("steps", s) for s in steps})
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise ValueError(f"methods must be among {METHODS}, got {list(methods)}")
    if not steps and "arpg" in methods:
        raise ValueError("give at least one step count")
    if steps and steps[-1] > n_cells:
        raise ValueError(f"steps must be between 1 and {n_cells} (the cells of the grid), got {steps[-1]}")
    if quality and (pipe is None or getattr(pipe, "judge", None) is None):
        raise ValueError("quality needs the shipped model's judge classifier (run with the shipped model)")
    decode = bool(decode_images and pipe is not None and getattr(pipe, "vq", None) is not None)
    if cfg_scale is None:
        cfg_scale = float(getattr(pipe, "default_cfg", 4.0)) if pipe is not None else 4.0
    branches = 2 if cfg_scale != 1.0 else 1
    labels = torch.randint(cfg.num_classes, (batches[-1],), generator=torch.Generator().manual_seed(seed)).tolist()
    amp_dtype = torch.bfloat16 if autocast else None
    weights_dtype = str(model.dtype).removeprefix("torch.")
    compute_dtype = "bfloat16" if autocast else weights_dtype

    Key = tuple[str, int, int]  # (method, steps, batch)
    settings: list[Key] = []
    for b in batches:
        settings += [("arpg", s, b) for s in steps if "arpg" in methods]
        settings += [(m, n_cells, b) for m in METHODS if m != "arpg" and m in methods]
    quality_jobs = list(dict.fromkeys((m, s) for m, s, _ in settings))  # quality does not depend on the batch
    total = (warmup + repeats) * len(settings) + (len(quality_jobs) if quality else 0) + (1 if measure_peak else 0)
    done = 0

    def tick(text: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(1.0, done / total), text)

    info = machine_info(device)
    busy = info.get("load_average", [0.0])[0]
    if busy > (info["cores"] or 1):
        log.warning("the machine is busy (load average %.1f on %s cores): timings will be noisy", busy, info["cores"])
    peak: dict[str, float | None] = {"float32": None, "bfloat16": None}
    if measure_peak:
        peak = matmul_peak_gflops(device)
        tick("matmul peak measured")
        log.info("matmul peak: %s GFLOP/s", peak)

    def call(method: str, s: int, b: int):
        kw = method_kwargs(method, s, n_cells)
        ctx = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        with ctx:
            if decode:
                return pipe.generate(labels[:b], seed=seed, cfg_scale=cfg_scale, **kw).trace
            return generate(model, labels[:b], cfg_scale=cfg_scale, generator=seed, **kw).trace

    compile_info: dict[str, Any] = {"requested": bool(compile), "ok": None, "error": None, "compile_s": None}
    restore = _compile_steps(model) if compile else None
    first_call: dict[Key, float] = {}
    times: dict[Key, list[float]] = {k: [] for k in settings}
    mem: dict[Key, list[tuple[int, int]]] = {k: [] for k in settings}
    traces: dict[Key, Any] = {}
    mem_method = PeakMemory(device).method
    try:
        for p in range(warmup + repeats):
            timed = p >= warmup
            for key in (settings if p % 2 == 0 else settings[::-1]):
                _sync(device)
                with PeakMemory(device) as pm:
                    t0 = time.perf_counter()
                    try:
                        trace = call(*key)
                    except Exception as e:  # noqa: BLE001 - a compile failure must not end the run
                        if restore is None:
                            raise
                        log.warning("torch.compile failed, continuing eagerly: %s", e)
                        compile_info.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
                        restore()
                        restore = None
                        t0 = time.perf_counter()
                        trace = call(*key)
                    _sync(device)
                    dt = time.perf_counter() - t0
                first_call.setdefault(key, dt)
                if timed:
                    times[key].append(dt)
                    mem[key].append((pm.peak, pm.delta))
                    traces[key] = trace
                what = f"run {p + 1 - warmup}/{repeats}" if timed else f"warm-up {p + 1}/{warmup}"
                tick(f"{what}: {key[0]}, {key[1]} steps, batch {key[2]}: {dt:.2f} s")
                log.info("%s: %s %d steps batch %d: %.3f s", what, *key, dt)
    finally:
        if restore is not None:
            restore()
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    if compile and compile_info["ok"] is None:
        compile_info["ok"] = True
        # the first call of every setting pays for (re)compilation; the medians do not
        compile_info["compile_s"] = round(sum(first_call[k] - _median(times[k]) for k in settings), 3)

    quality_rows: dict[tuple[str, int], dict] = {}
    if quality:
        from .evaluate import generated, generation_quality, reference_features

        ref = reference_features(pipe)
        for method, s in quality_jobs:
            imgs, labs = generated(pipe, quality_per_class, s, method, batch=batches[-1], seed=seed,
                                   progress=False, cfg_scale=cfg_scale)
            quality_rows[(method, s)] = {**generation_quality(pipe, imgs, labs, ref), "quality_samples": len(imgs)}
            tick(f"quality: {method}, {s} steps")

    elem = torch.empty((), dtype=model.dtype).element_size()
    ref_peak = peak.get(compute_dtype)
    rows = []
    for key in settings:
        method, s, b = key
        trace = traces[key]
        lat = _median(times[key])
        b_eff = branches * b
        flops = decode_flops(cfg, trace.counts, b_eff)
        length = cache_length(sum(trace.counts), trace.counts)
        per_layer = cache_bytes(cfg, b_eff, length, elem, per_layer=True)
        gflops = flops / lat / 1e9
        q = quality_rows.get((method, s), {})
        rows.append({
            "method": method, "steps": s, "batch": b, "batch_eff": b_eff,
            "images_per_s": b / lat, "latency_s": lat, "latency_per_image_s": lat / b,
            "latency_runs_s": times[key],
            "forward_passes": trace.forward_passes,
            "kv_cache_bytes": int(trace.kv_cache_bytes), "per_layer_cache_bytes": per_layer,
            "kv_saving": 1.0 - trace.kv_cache_bytes / per_layer,
            "cache_length": length,
            "peak_mem_bytes": max(m[0] for m in mem[key]), "peak_mem_delta_bytes": max(m[1] for m in mem[key]),
            "gflop": flops / 1e9, "achieved_gflops": gflops,
            "peak_fraction": gflops / ref_peak if ref_peak else None,
            "accuracy": q.get("accuracy"), "frechet": q.get("frechet"),
            "quality_samples": q.get("quality_samples"),
        })
    raster = {r["batch"]: r for r in rows if r["method"] == "raster"}
    for r in rows:
        base = raster.get(r["batch"])
        r["speedup_vs_raster"] = r["images_per_s"] / base["images_per_s"] if base else None

    arpg_rows = [r for r in rows if r["method"] == "arpg"]
    best = max((r for r in arpg_rows if r["peak_fraction"] is not None), key=lambda r: r["peak_fraction"],
               default=None)
    name = model_name or (getattr(pipe, "name", None) if pipe is not None else None) or "ARPG"
    return {
        "model": f"{name} ({_params_text(param_count(cfg))} params)",
        "machine": machine_string(info),
        "command": command or "run_bench()",
        "torch": torch.__version__,
        "dtype": f"{weights_dtype} weights, bfloat16 autocast" if autocast else weights_dtype,
        "matmul_peak_gflops": peak,
        "machine_info": info,
        "config": cfg.to_dict(),
        "params": param_count(cfg),
        "n_cells": n_cells,
        "batches": batches,
        "cfg_scale": cfg_scale,
        "labels": labels,
        "seed": seed,
        "repeats": repeats,
        "warmup": warmup,
        "timed_call": "Pipeline.generate (tokens decoded to pixels)" if decode else "sampling.generate (transformer only)",
        "autocast": bool(autocast),
        "compile": compile_info,
        "peak_memory_method": mem_method,
        "rows": rows,
        "summary": {
            "speedup_vs_raster": [{"batch": r["batch"], "steps": r["steps"], "speedup": r["speedup_vs_raster"]}
                                  for r in arpg_rows if r["speedup_vs_raster"] is not None],
            "kv_saving": 1.0 - (2 * cfg.n_self_layers + 2) / (2 * (cfg.n_self_layers + cfg.n_cross_layers)),
            "best_peak_fraction": None if best is None else {
                "fraction": best["peak_fraction"], "batch": best["batch"], "steps": best["steps"]},
        },
    }


def _positive_int(name: str, value: Any, lo: int = 1) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}") from None
    if v != value and not (isinstance(value, str) and value.strip().lstrip("+").isdigit()):
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    if v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return v


# -- the table --------------------------------------------------------------------------------------
def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:.1f}"


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_table(results: dict) -> str:
    """The results as a fixed-width text table with a header and a summary."""
    peak = results.get("matmul_peak_gflops") or {}
    lines = [f"model: {results.get('model')}", f"machine: {results.get('machine')}",
             f"torch {results.get('torch')}, dtype {results.get('dtype')}, "
             f"timed call: {results.get('timed_call', '-')}",
             "matmul peak: " + ", ".join(f"{k} {_fmt(v, '.0f')} GFLOP/s" for k, v in peak.items())]
    mi = results.get("machine_info") or {}
    if mi.get("load_average"):
        lines.append(f"load average (1 min) at start {mi['load_average'][0]}, at end "
                     f"{(mi.get('load_average_end') or ['-'])[0]}, on {mi.get('cores')} cores")
    comp = results.get("compile") or {}
    if comp.get("requested"):
        lines.append("torch.compile: " + (f"ok, compile time ~{comp.get('compile_s')} s" if comp.get("ok")
                                          else f"failed ({comp.get('error')}); eager numbers below"))
    head = (f"{'method':<8} {'steps':>5} {'batch':>5} {'img/s':>8} {'s/img':>8} {'call s':>8} {'passes':>6} "
            f"{'KV MB':>8} {'perlayer':>8} {'saved':>6} {'peak MB':>8} {'GFLOP/s':>8} {'%peak':>6} "
            f"{'x raster':>8} {'acc':>6} {'FD':>7}")
    lines += [head, "-" * len(head)]
    for r in results.get("rows", []):
        lines.append(
            f"{r['method']:<8} {r['steps']:>5} {r['batch']:>5} {r['images_per_s']:>8.3f} "
            f"{r['latency_per_image_s']:>8.3f} {r['latency_s']:>8.3f} {r['forward_passes']:>6} "
            f"{_mb(r.get('kv_cache_bytes')):>8} {_mb(r.get('per_layer_cache_bytes')):>8} "
            f"{_fmt(100 * r['kv_saving'] if r.get('kv_saving') is not None else None, '.1f'):>5}% "
            f"{_mb(r.get('peak_mem_bytes')):>8} {_fmt(r.get('achieved_gflops'), '.1f'):>8} "
            f"{_fmt(100 * r['peak_fraction'] if r.get('peak_fraction') is not None else None, '.1f'):>6} "
            f"{_fmt(r.get('speedup_vs_raster'), '.2f'):>8} "
            f"{_fmt(100 * r['accuracy'] if r.get('accuracy') is not None else None, '.1f'):>6} "
            f"{_fmt(r.get('frechet'), '.2f'):>7}")
    lines.append("KV MB: caches allocated (measured); perlayer: every layer keeping its own K/V; "
                 "peak MB: " + str(results.get("peak_memory_method", "peak process memory")) +
                 "; %peak: achieved / matmul peak of the compute dtype")
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------------
def _parse_ints(name: str, text: str) -> list[int]:
    parts = [t.strip() for t in str(text).split(",") if t.strip()]
    if not parts:
        raise ValueError(f"{name} needs a comma-separated list of integers, got {text!r}")
    return [_positive_int(name, t) for t in parts]


def _command_line(a: argparse.Namespace) -> str:
    """The command that reproduces this run (canonical flag order)."""
    args = ["python", "-m", "arpg", "bench"]
    if a.weights:
        args += ["--weights", a.weights, "--tokenizer", a.tokenizer or ""]
    else:
        args += ["--model", a.model]
    if a.orders:  # the order table takes the shipped model, steps and images per class only
        out = [x for flag, v in (("--json", a.json), ("--plot", a.plot)) if v for x in (flag, v)]
        return shlex.join(args[:4] + ["--orders", a.orders, "--steps", a.steps, "--quality-per-class",
                                      str(a.quality_per_class)] + out)
    args += ["--batch", str(a.batch), "--steps", a.steps, "--repeats", str(a.repeats), "--warmup", str(a.warmup)]
    if a.methods != ",".join(METHODS):
        args += ["--methods", a.methods]
    for flag, value in (("--device", a.device), ("--dtype", a.dtype), ("--cfg", a.cfg), ("--threads", a.threads),
                        ("--quality-per-class", a.quality_per_class if a.quality else None),
                        ("--json", a.json), ("--plot", a.plot)):
        if value is not None:
            args += [flag, str(value)]
    args += [f for f, on in (("--quality", a.quality), ("--compile", a.compile), ("--autocast", a.autocast),
                             ("--no-decode", a.no_decode)) if on]
    if a.seed:
        args += ["--seed", str(a.seed)]
    return shlex.join(args)


def cmd_bench(a: argparse.Namespace) -> int:
    """``python -m arpg bench``: run, print the table, write JSON / PNG."""
    from .cli import load_pipeline

    steps = _parse_ints("--steps", a.steps)
    batch = _parse_ints("--batch", a.batch)
    repeats = _positive_int("--repeats", a.repeats)
    warmup = _positive_int("--warmup", a.warmup, lo=0)
    qpc = _positive_int("--quality-per-class", a.quality_per_class)
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    if a.threads is not None:
        torch.set_num_threads(_positive_int("--threads", a.threads))
    if a.model is None:
        a.model = "shipped"
    if a.model not in MODEL_CHOICES:
        raise ValueError(f"--model must be one of {', '.join(MODEL_CHOICES)}, got {a.model!r}")
    if a.weights and a.model != "shipped":
        raise ValueError("--model and --weights are alternatives: give one")
    if a.quality and a.model != "shipped":
        raise ValueError("--quality needs the shipped model's judge classifier; presets have random weights")
    if a.autocast and a.dtype not in (None, "float32"):
        raise ValueError("--autocast runs over float32 weights; drop --dtype or use --dtype float32")
    if a.device is not None and torch.device(a.device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    dtype = BENCH_DTYPES[a.dtype] if a.dtype else None
    if a.orders:
        return _cmd_orders(a, steps, qpc)
    t0 = time.perf_counter()
    if a.weights or a.model == "shipped":
        subject = load_pipeline(a)
        name = subject.name
    else:
        device = torch.device(a.device) if a.device else (torch.device("cuda") if torch.cuda.is_available()
                                                          else torch.device("cpu"))
        subject = random_model(a.model, dtype=dtype or torch.float32, device=device, seed=a.seed)
        name = f"{a.model}, random weights"
    build_s = time.perf_counter() - t0
    log.info("model ready in %.1f s", build_s)

    def progress(frac: float, text: str) -> None:
        print(f"[{100 * frac:5.1f}%] {text}", file=sys.stderr, flush=True)

    res = run_bench(subject, steps=steps, batch=batch, methods=methods, repeats=repeats, warmup=warmup,
                    quality=a.quality, quality_per_class=qpc, decode_images=not a.no_decode,
                    progress=progress if a.verbose else None, cfg_scale=a.cfg, seed=a.seed,
                    autocast=a.autocast, compile=a.compile, model_name=name, command=_command_line(a))
    res["build_s"] = build_s
    print(format_table(res))
    from demo.render import tradeoff_figure

    return _write_outputs(res, a, tradeoff_figure)


def _write_outputs(res: dict, a: argparse.Namespace, figure: Callable[[dict], Any]) -> int:
    """Write ``--json`` and ``--plot`` (drawn by ``figure``) when asked."""
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
        print(f"wrote {a.json}")
    if a.plot:
        Path(a.plot).parent.mkdir(parents=True, exist_ok=True)
        figure(res).save(a.plot)
        print(f"wrote {a.plot}")
    return 0


def _cmd_orders(a: argparse.Namespace, steps: list[int], per_class: int) -> int:
    """``bench --orders``: the decoding-order table (quality and speed per order)."""
    from .cli import load_pipeline
    from .evaluate import format_order_table, order_table
    from .sampling import SAMPLER_ORDERS

    orders = [o.strip() for o in a.orders.split(",") if o.strip()]
    bad = [o for o in orders if o not in SAMPLER_ORDERS]
    if bad:
        raise ValueError(f"--orders takes {', '.join(SAMPLER_ORDERS)}; unknown: {', '.join(bad)}")
    if a.model not in (None, "shipped") or a.weights:
        raise ValueError("--orders measures quality with the shipped model's judge: drop --model/--weights")
    pipe = load_pipeline(a)
    res = order_table(pipe, orders, steps, per_class=per_class, cfg_scale=a.cfg, progress=a.verbose)
    res["command"] = _command_line(a)
    print(format_order_table(res))
    from demo.render import orders_figure

    return _write_outputs(res, a, orders_figure)


def _one_line_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def register(subparsers: Any) -> None:
    """Add the ``bench`` command to the CLI's subparsers."""
    from .cli import add_model_args

    p = subparsers.add_parser(
        "bench", help="speed, memory and quality of ARPG vs one-token-per-step decoding",
        description="ARPG parallel decoding vs raster and random one-token-per-step decoding, interleaved "
                    "on the same weights and batch: images/s, latency, forward passes, KV cache bytes, "
                    "peak memory, achieved FLOP/s vs the measured matmul peak, and (shipped model) quality.")
    p.add_argument("--model", default=None,
                   help=f"shipped (default) or a preset with random weights: {', '.join(ARPG_PRESETS)}")
    p.add_argument("--batch", default="16", help="images per generate call (default 16); several: 1,16")
    p.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)), help="ARPG step counts, comma-separated")
    p.add_argument("--methods", default=",".join(METHODS), help="subset of arpg,raster,random1")
    p.add_argument("--repeats", default="3", help="timed runs per setting; medians are reported (default 3)")
    p.add_argument("--warmup", default="1", help="untimed passes over all settings first (default 1)")
    p.add_argument("--quality", action="store_true", help="judge accuracy and Frechet distance (shipped model)")
    p.add_argument("--orders", default=None,
                   help="compare decoding orders instead (shipped model): e.g. random,raster,spiral-in,spiral-out,"
                        "z-curve,alternate,confidence; quality with --quality-per-class images per class")
    p.add_argument("--quality-per-class", default="20", help="images per class and setting for --quality")
    p.add_argument("--compile", action="store_true", help="torch.compile the step function (extend/query)")
    p.add_argument("--autocast", action="store_true", help="bf16 autocast over float32 weights")
    p.add_argument("--no-decode", action="store_true", help="time the transformer only (no tokenizer decode)")
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's, 4.0 for presets)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--plot", default=None, help="write the trade-off figure here (PNG)")
    add_model_args(p)
    p.error = _one_line_error  # type: ignore[method-assign]  # bad flags: one line, exit code 2
    p.set_defaults(func=cmd_bench)
