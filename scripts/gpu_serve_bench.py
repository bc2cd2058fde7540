#!/usr/bin/env python
"""One call on a GPU: ARPG-L and XL at batch 1 and 64, 32 and 64 steps, eager and captured (CUDA
graphs), the VQ decode apart (float32 and bf16), peak memory and the weight-streaming floor, as JSON
with the GPU's name.

    python scripts/gpu_serve_bench.py --json "${OUT:-docs/benchmarks}/gpu-serve.json" --budget-s 420

Weights: the released files when they are in the hub cache (``--random`` ignores them), else random
weights of the same shapes. Rows are written as they are measured; past ``--budget-s`` the rest are
marked skipped. The logic is :func:`arpg.measure.serving.serving_bench`; a tiny CPU run
(``--models ARPG-tiny --vq VQ-tiny --device cpu --modes eager,static``) is its test.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import torch

from arpg.capture import MODES
from arpg.devices import resolve_device
from arpg.measure.probes import DTYPES
from arpg.measure.serving import ServeBench, serving_bench


def items(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def ints(text: str) -> list[int]:
    """``"1,64"`` -> [1, 64] (positive integers)."""
    try:
        values = [int(x) for x in items(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=items, default=["ARPG-L", "ARPG-XL"], help="ARPG preset names")
    p.add_argument("--batches", type=ints, default=[1, 64], help="images per call")
    p.add_argument("--steps", type=ints, default=[32, 64], help="decoding steps")
    p.add_argument("--modes", type=items, default=["eager", "graph"], help=f"eager and/or {', '.join(MODES)}")
    p.add_argument("--vq", default="VQ-16", help="VQ preset name")
    p.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    p.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES), help="the transformer's dtype")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per setting (graph mode captures in it)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per setting (the median is reported)")
    p.add_argument("--budget-s", type=float, default=float("inf"), help="skip the rows left after this many s")
    p.add_argument("--random", action="store_true", help="random weights even when the released files are present")
    p.add_argument("--json", default="docs/benchmarks/gpu-serve.json", help="where the report goes")
    a = p.parse_args(argv)
    bad = [m for m in a.modes if m not in ("eager", *MODES)]
    if bad or not a.modes:
        p.error(f"--modes takes eager, {', '.join(MODES)}; got {','.join(bad) or 'nothing'}")
    if a.warmup < 0 or a.repeats < 1 or a.budget_s <= 0:
        p.error("--warmup must be >= 0, --repeats >= 1 and --budget-s positive")
    if "graph" in a.modes and a.warmup < 1:
        p.error("--modes graph needs --warmup >= 1 (the first call captures)")
    try:
        a.device = resolve_device(a.device)
    except ValueError as exc:
        p.error(str(exc))
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if "graph" in a.modes and a.device.type != "cuda":
        print("error: --modes graph needs a CUDA device (use static or compile on a CPU)", file=sys.stderr)
        return 2
    bench = ServeBench(a.models, a.batches, a.steps, a.modes, a.vq, a.device, DTYPES[a.dtype])
    bench.warmup, bench.repeats, bench.real = a.warmup, a.repeats, not a.random
    bench.deadline = time.monotonic() + a.budget_s
    try:
        report = serving_bench(bench, a.json)
    except ValueError as exc:  # an unknown preset name, steps beyond the grid
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{report['machine'].get('gpu', report['machine']['cpu'])}: wrote {a.json}")
    for r in report["rows"]:
        what = r.get("skipped") or r.get("error") or f"{r['images_per_s']:.2f} images/s, {r['ms_per_step']:.2f} ms/step"
        print(f"  {r['model']} {r['steps']} steps batch {r['batch']} {r['mode']}: {what}")
    for r in report["vq"]:
        print(f"  VQ {r['dtype']} batch {r['batch']}: {r['seconds']:.4f} s")
    return 0


if __name__ == "__main__":
    torch.backends.cuda.matmul.allow_tf32 = True
    sys.exit(main())
