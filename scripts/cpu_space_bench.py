#!/usr/bin/env python
"""ARPG-L end to end on this CPU (what a free CPU Space can serve): transformer and VQ decode apart,
the VQ decode in float32 and fast (bf16, channels-last), memory; JSON into docs/benchmarks/.

    OMP_NUM_THREADS=2 python scripts/cpu_space_bench.py --threads 2 --batches 1,4 --steps 32 \
        --json docs/benchmarks/arpg-l-cpu-e2e.json

Weights: the released files when they are in the hub cache (``--random`` ignores them), else random
weights of the same shapes (the time does not depend on their values). The logic is
:func:`arpg.measure.cpu_space.end_to_end`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from arpg.measure.cpu_space import end_to_end


def ints(text: str) -> list[int]:
    """``"1,4"`` -> [1, 4] (positive integers)."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="ARPG-L", help="an ARPG preset name (ARPG-L, ARPG-XL, ARPG-tiny, ...)")
    p.add_argument("--tokenizer", default="VQ-16", help="a VQ preset name (VQ-16, VQ-tiny, ...)")
    p.add_argument("--batches", type=ints, default=[1, 4], help="images per call, comma-separated")
    p.add_argument("--steps", type=int, default=32, help="decoding steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per setting")
    p.add_argument("--repeats", type=int, default=2, help="timed calls per setting (the median is reported)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--random", action="store_true", help="random weights even when the released files are present")
    p.add_argument("--json", default="docs/benchmarks/arpg-l-cpu-e2e.json", help="where the report goes")
    a = p.parse_args(argv)
    if a.steps < 1 or a.warmup < 0 or a.repeats < 1 or (a.threads is not None and a.threads < 1):
        p.error("--steps, --repeats and --threads must be >= 1, --warmup >= 0")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        report = end_to_end(a.model, a.tokenizer, a.batches, a.steps, a.warmup, a.repeats, real=not a.random)
    except ValueError as exc:  # an unknown preset name, steps beyond the grid
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report["command"] = " ".join(["python", "scripts/cpu_space_bench.py", *(sys.argv[1:] if argv is None else argv)])
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(report, indent=2) + "\n")
    for r in report["rows"]:
        print(
            f"batch {r['batch']}: transformer {r['transformer_s']:.2f} s, VQ fp32 {r['vq_fp32_s']:.2f} s, "
            f"VQ fast {r['vq_fast_s']} s, end to end {r['end_to_end_before_s']:.2f} -> {r['end_to_end_after_s']} s"
        )
    print(f"memory {report['rss_mb']} MB, fast VQ PSNR {report['fast_vq_psnr_db']} dB; wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
