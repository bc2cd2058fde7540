"""Which resize setting (strategy, scale, regenerate fraction) measures best on a model, against the true render.

    OMP_NUM_THREADS=1 python scripts/bench_resize.py --model scenes --json docs/benchmarks/resize-scenes.json
    OMP_NUM_THREADS=1 python scripts/bench_resize.py --model digits --trials 40 \
        --json docs/benchmarks/resize-digits.json

Every setting and plain bicubic on held-out images against their true render (PSNR, sharpness, the gap to
bicubic): see :mod:`arpg.measure.resize_sweep`.
"""

from __future__ import annotations

import argparse
import json
import sys

from arpg.measure.probes import machine_info, machine_string
from arpg.measure.report import script_command
from arpg.measure.resize_sweep import resize_sweep
from arpg.model_flags import model_pipeline


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="scenes", help="digits, scenes or a folder of a model trained here")
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--json", required=True)
    a = p.parse_args()
    pipe = model_pipeline(a.model)
    head = {"command": script_command("bench_resize.py", sys.argv[1:])}
    head["machine"] = machine_string(machine_info(pipe.device))
    out = {**head, **resize_sweep(pipe, a.trials, lambda row: print(row, file=sys.stderr, flush=True))}
    with open(a.json, "w") as f:
        f.write(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["best"]))


if __name__ == "__main__":
    main()
