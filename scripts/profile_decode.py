"""Where one ``generate`` call spends its time, and what fusing and bf16 buy, in one run.

    python scripts/profile_decode.py                      # both models, timings and ratios
    python scripts/profile_decode.py --model L --profile  # plus a torch.profiler table per variant

Variants, all on the same weights (the shipped model, or ARPG-L with random weights):
``baseline`` (plain fp32 linears, unfused), ``fused`` (fp32, :meth:`ARPG.fuse`),
``fused-packed`` (fp32, fused, :meth:`ARPG.prepack`: the default path of a CPU without bf16),
``fused-bf16`` (bf16 weights, fused) and ``default`` (fused, prepacked, in
:func:`arpg.devices.default_dtype`: what the app runs).  Runs are interleaved (variant after
variant, repeat after repeat) after one warm-up each, and each time is the median of the
repeats, so the ratios are measured under the same load.  The greedy tokens of the fused fp32
model are checked against the baseline's.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from arpg.checkpoints import load_arpg
from arpg.devices import default_dtype
from arpg.measure.bench import random_model
from arpg.model import ARPG
from arpg.pipeline import SHIPPED_DIR
from arpg.sampling import generate

SHIPPED = SHIPPED_DIR / "arpg.safetensors"
#: --model value -> (how to build the baseline, batch)
MODELS = {
    "shipped": (lambda: load_arpg(SHIPPED).requires_grad_(False).eval(), 16),
    "L": (lambda: random_model("ARPG-L"), 1),
}


def variants(base: ARPG) -> dict[str, ARPG]:
    """The baseline and its faster copies (same weights)."""
    return {
        "baseline": base,
        "fused": copy.deepcopy(base).fuse(),
        "fused-packed": copy.deepcopy(base).fuse().prepack(),
        "fused-bf16": copy.deepcopy(base).to(torch.bfloat16).fuse(),
        "default": copy.deepcopy(base).to(default_dtype("cpu")).fuse().prepack(),
    }


def decode(model: ARPG, batch: int, steps: int, **kw) -> torch.Tensor:
    """One guided ``generate`` call (cfg 4, seed 0); returns its tokens."""
    labels = [i % model.cfg.num_classes for i in range(batch)]
    return generate(model, labels, steps=steps, cfg_scale=4.0, generator=0, **kw).tokens


#: --clock: wall time, or the process's CPU time (all threads; steadier on a shared machine)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


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


def run(name: str, steps: int, repeats: int, show_profile: bool, clock: str = "wall") -> dict:
    """Time (and optionally profile) the variants of one model; print and return the numbers."""
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=[*MODELS, "all"], default="all")
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--clock",
        choices=list(CLOCKS),
        default="wall",
        help="wall time, or CPU time of all threads (steadier when other work shares the CPU)",
    )
    p.add_argument("--profile", action="store_true", help="print a torch.profiler table per variant")
    p.add_argument("--json", type=Path, help="write the numbers here")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    names = list(MODELS) if a.model == "all" else [a.model]
    out = [run(n, a.steps, a.repeats, a.profile, a.clock) for n in names]
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
