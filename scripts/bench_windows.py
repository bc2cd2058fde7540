"""Windowed against whole-canvas decoding of the canvas tasks on a model trained here, judged (issue 17).

    OMP_NUM_THREADS=2 python scripts/bench_windows.py --model scenes --json docs/benchmarks/scenes_tasks.json \
        --beside digits=docs/benchmarks/windows.json
    OMP_NUM_THREADS=1 python scripts/bench_windows.py --model digits --parts outpaint,panorama,resize --trials 50 \
        --steps 16 --split 17 --downscale lanczos --json docs/benchmarks/windows.json

Plain generation (the yardstick), outpaint by 8 cells, panorama to 4x width and resolution x2 (both
strategies), each decoded windowed and whole, on held-out images of the model's data set, against their
true renders where the data set has them: see :mod:`arpg.measure.canvas_tasks`. ``--parts`` measures
some parts and keeps the others from ``--json`` (same model only). Printed: the run's tables, then
windowed against whole beside the runs of ``--beside``. ``--table-only`` prints the tables of ``--json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from arpg.measure.canvas_table import canvas_text
from arpg.measure.canvas_tasks import DEFAULT_TRIALS, PARTS, canvas_report, parse_trials, source_of
from arpg.measure.pixels import DOWNSCALES
from arpg.measure.report import names_arg, read_json, script_command, write_outputs
from arpg.model_flags import model_pipeline
from arpg.tasks import RESIZE_STRATEGIES
from arpg.windows import DECODINGS

COMMITTED = Path("docs/benchmarks")  # a preview's numbers never go here


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="digits", help="digits, scenes or a model folder, e.g. a preview")
    p.add_argument("--trials", default=None, help=f"N or part=N,... (default {DEFAULT_TRIALS})")
    p.add_argument("--parts", type=names_arg(PARTS), default=list(PARTS), help=f"some of {','.join(PARTS)}")
    p.add_argument("--decodings", type=names_arg(DECODINGS), default=list(DECODINGS), help="windowed,whole")
    p.add_argument("--strategies", type=names_arg(RESIZE_STRATEGIES), default=list(RESIZE_STRATEGIES))
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    p.add_argument("--split", type=int, default=None, help="one held-out split offset for every part")
    p.add_argument("--style", default=None, help="the data style of the inputs (default: the generator's)")
    p.add_argument("--downscale", choices=DOWNSCALES, default="box", help="how a resize is judged at 64 px")
    p.add_argument("--json", default=None, help="the results file (read for the parts kept, then written)")
    p.add_argument("--beside", action="append", default=[], help="NAME=PATH: another run for the one table")
    p.add_argument("--table-only", action="store_true", help="measure nothing: print the tables of --json")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    return p.parse_args()


def measure(a: argparse.Namespace) -> dict:
    """Run the parts asked for; the results file (merged with the parts kept from --json)."""
    if a.threads:
        torch.set_num_threads(a.threads)
    pipe = model_pipeline(a.model, device=a.device)
    if a.json and "preview" in pipe.name and Path(a.json).resolve().is_relative_to(COMMITTED.resolve()):
        raise ValueError(f"{pipe.name}: a preview's numbers do not go to {COMMITTED}/; give another --json")
    return canvas_report(
        pipe,
        read_json(a.json),
        script_command("bench_windows.py", sys.argv[1:]),
        parts=a.parts,
        trials=parse_trials(a.trials),
        decodings=a.decodings,
        strategies=a.strategies,
        options=pipe.defaults.replace(steps=a.steps),
        source=source_of(pipe, a.split, a.style),
        how=a.downscale,
    )


def main() -> None:
    a = _args()
    try:
        beside = [(name, read_json(path)) for name, _, path in (b.partition("=") for b in a.beside)]
        out = read_json(a.json) if a.table_only else measure(a)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if out is None:
        raise SystemExit(f"--table-only: no results in {a.json!r}")
    if a.json and not a.table_only:
        print("wrote", *write_outputs(out, a.json, None, None))
    print(canvas_text(out, beside))


if __name__ == "__main__":
    main()
