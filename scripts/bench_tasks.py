"""Zero-shot task quality (inpaint, edit, stroke edit, resize) of a model trained here, read by its judge.

    OMP_NUM_THREADS=1 python scripts/bench_tasks.py --trials 100 --resize-trials 50 --json docs/benchmarks/tasks.json

Held-out images of the model's data set, 16 steps, the model's guidance: see
:mod:`arpg.measure.task_quality`. Every part is written to the JSON (``--parts`` measures some of them
and keeps the others from the file).
"""

from __future__ import annotations

import argparse
import json
import sys

from arpg.measure.report import names_arg, read_json, script_command, write_outputs
from arpg.measure.task_quality import PARTS, REGIONS, SCALES, task_quality_report
from arpg.model_flags import model_pipeline


def _scales(text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated numbers, got {text!r}") from None


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="digits", help="digits, scenes or a model folder")
    p.add_argument("--trials", type=int, default=100, help="images for inpaint, edit and stroke (default 100)")
    p.add_argument("--resize-trials", type=int, default=50, help="images per resize setting (default 50)")
    p.add_argument("--scales", type=_scales, default=list(SCALES), help="resize scales, comma-separated")
    p.add_argument(
        "--regions",
        default=",".join(REGIONS),
        help="edit regions of the stroke edit (arpg.masks.EDIT_REGIONS), each optionally :<margin px>",
    )
    p.add_argument("--parts", type=names_arg(PARTS), default=list(PARTS), help=f"some of {','.join(PARTS)}")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--style", default=None, help="data style of the inputs (default: the one the generator learnt)")
    p.add_argument("--json", default="docs/benchmarks/tasks.json")
    return p.parse_args()


def main() -> None:
    a = _args()
    try:
        pipe = model_pipeline(a.model)
        res = task_quality_report(
            pipe,
            read_json(a.json),
            script_command("bench_tasks.py", sys.argv[1:]),
            parts=a.parts,
            trials=a.trials,
            resize_trials=a.resize_trials,
            scales=a.scales,
            regions=[s for s in a.regions.split(",") if s],
            options=pipe.defaults.replace(steps=a.steps),
            style=a.style,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    write_outputs(res, a.json, None, None)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
