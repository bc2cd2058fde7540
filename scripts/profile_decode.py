"""Where one ``generate`` call spends its time, and what fusing and bf16 buy, in one run.

    python scripts/profile_decode.py                      # both models, timings and ratios
    python scripts/profile_decode.py --model L --profile  # plus a torch.profiler table per variant

The variants and how they are timed: :mod:`arpg.measure.variants`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from arpg.measure.variants import CLOCKS, MODELS, compare_variants


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
    out = [compare_variants(n, a.steps, a.repeats, a.profile, a.clock) for n in names]
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
