"""What fusing, prepacking and bf16 buy one ``generate`` call, all on the same weights, in one run.

Variants (:func:`variants`): ``baseline`` (plain fp32 linears, unfused), ``fused`` (fp32, :meth:`ARPG.fuse`),
``fused-packed`` (fp32, fused, :meth:`ARPG.prepack`: the default path of a CPU without bf16), ``fused-bf16``
(bf16 weights, fused) and ``default`` (fused, prepacked, in :func:`arpg.devices.default_dtype`: what the app
runs). Runs are interleaved (variant after variant, repeat after repeat) after one warm-up each, and each
time is the median of the repeats, so the ratios are measured under the same load. The greedy tokens of the
fused fp32 model are checked against the baseline's.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from ..checkpoints import load_arpg
from ..devices import default_dtype
from ..model import ARPG
from ..pipeline import SHIPPED_DIR
from ..sampling import generate
from .bench import random_model

#: model name -> (how to build the baseline, batch)
MODELS: dict[str, tuple[Callable[[], ARPG], int]] = {
    "shipped": (lambda: load_arpg(SHIPPED_DIR / "arpg.safetensors").requires_grad_(False).eval(), 16),
    "L": (lambda: random_model("ARPG-L"), 1),
}
#: wall time, or the process's CPU time (all threads; steadier on a shared machine)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def variants(base: ARPG) -> dict[str, ARPG]:
    """The baseline and its faster copies (same weights)."""
    return {
        "baseline": base,
        "fused": copy.deepcopy(base).fuse(),
        "fused-packed": copy.deepcopy(base).fuse().prepack(),
        "fused-bf16": copy.deepcopy(base).to(torch.bfloat16).fuse(),
        "default": copy.deepcopy(base).to(default_dtype("cpu")).fuse().prepack(),
    }


def decode(model: ARPG, batch: int, steps: int, **kw: Any) -> torch.Tensor:
    """One guided ``generate`` call (cfg 4, seed 0); returns its tokens."""
    labels = [i % model.cfg.num_classes for i in range(batch)]
    return generate(model, labels, steps=steps, cfg_scale=4.0, generator=0, **kw).tokens


def time_variants(
    models: dict[str, ARPG], batch: int, steps: int, repeats: int, clock: str = "wall"
) -> dict[str, float]:
    """Median seconds per call of each variant, interleaved after one warm-up each."""
    now = CLOCKS[clock]
    for m in models.values():
        decode(m, batch, steps)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, m in models.items():
            t0 = now()
            decode(m, batch, steps)
            times[name].append(now() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def profile_table(model: ARPG, batch: int, steps: int, rows: int = 20) -> str:
    """torch.profiler's operator table (by self CPU time) for one call."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        decode(model, batch, steps)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48)


def compare_variants(name: str, steps: int, repeats: int, show_profile: bool = False, clock: str = "wall") -> dict:
    """Time (and with ``show_profile``, profile) the variants of model ``name`` (:data:`MODELS`); print and
    return the numbers."""
    build, batch = MODELS[name]
    models = variants(build())
    greedy = [decode(models[v], batch, steps, top_k=1) for v in ("baseline", "fused")]
    same = torch.equal(*greedy)
    secs = time_variants(models, batch, steps, repeats, clock)
    base = secs["baseline"]
    print(
        f"\n{name}: batch {batch}, {steps} steps, {clock} time, median of {repeats}, {torch.get_num_threads()} "
        f"threads; fused fp32 greedy tokens == baseline: {same}"
    )
    for v, s in secs.items():
        print(f"  {v:<12} {s:7.3f} s  {batch / s:7.2f} images/s  {base / s:5.2f}x")
    if show_profile:
        for v, m in models.items():
            print(f"\n-- {name} {v}\n{profile_table(m, batch, steps)}")
    return {
        "model": name,
        "batch": batch,
        "steps": steps,
        "repeats": repeats,
        "clock": clock,
        "threads": torch.get_num_threads(),
        "greedy_equal": same,
        "seconds": secs,
        "ratio": {v: base / s for v, s in secs.items()},
    }
