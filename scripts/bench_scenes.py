"""The scenes model's canvas tasks against real renders of the same canvas (issue 17's "must show").

    OMP_NUM_THREADS=2 python scripts/bench_scenes.py --model scenes --json docs/benchmarks/scenes_tasks.json

Plain generation (the yardstick), outpaint by 8 cells, panorama to 4x width and resolution x2 (both
strategies), each with windowed and whole-canvas decoding, on held-out scenes: how often the scenes
judge reads the class, Frechet distances of judge features against the same windows of real renders
(and their ratio to plain generation's), PSNR against the true 128 px render, forward passes, and what
the judge does not see: sharpness of the new part and seam scores at the joins (resize: sharpness and
PSNR beside bicubic's); see
:mod:`arpg.measure.scenes_tasks`. The JSON keeps the command, the machine, the model and the results;
``--parts`` measures some parts and keeps the others from the JSON (same model only). Printed: the
scenes table, then issue 17's one table, windowed against whole, scenes beside digits (``--digits``,
written by ``scripts/bench_windows.py``). ``--table-only`` prints the tables of the JSON as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from arpg.commands import model_pipeline
from arpg.measure.probes import machine_info, machine_string
from arpg.measure.scenes_table import detail_table, scenes_table, windows_table
from arpg.measure.scenes_tasks import DEFAULT_TRIALS, PARTS, add_ratios, measure_scenes_tasks
from arpg.tasks import RESIZE_STRATEGIES
from arpg.windows import DECODINGS

DEFAULT_JSON = "docs/benchmarks/scenes_tasks.json"


def parse_trials(text: str | None) -> dict[str, int]:
    """``"20"`` (every task part) or ``"outpaint=200,panorama=50,generation=400"`` -> {part: trials}."""
    if not text:
        return {}
    text = text.strip()
    if text.isdigit():
        return dict.fromkeys(DEFAULT_TRIALS, int(text))
    out = {}
    for item in text.split(","):
        part, _, n = item.partition("=")
        if part.strip() not in PARTS or not n.strip().isdigit():
            raise SystemExit(f"--trials: a number, or part=number pairs with parts {', '.join(PARTS)}; got {item!r}")
        out[part.strip()] = int(n)
    return out


def _names(flag: str, text: str, choices: tuple[str, ...]) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or set(names) - set(choices):
        raise SystemExit(f"{flag}: some of {','.join(choices)}; got {text!r}")
    return names


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="scenes", help="scenes (assets/models/scenes) or a folder, e.g. a preview")
    p.add_argument("--trials", default=None, help=f"per part (default {DEFAULT_TRIALS}; generation: the most windows)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    p.add_argument("--decodings", default=",".join(DECODINGS), help=f"some of {','.join(DECODINGS)}")
    p.add_argument("--strategies", default=",".join(RESIZE_STRATEGIES), help="resize strategies")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    p.add_argument("--json", default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON}; '' for none)")
    p.add_argument("--digits", default="docs/benchmarks/windows.json", help="the digits side of the one table")
    p.add_argument("--table-only", action="store_true", help="measure nothing: print the tables of --json")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    return p.parse_args()


def _read(path: str | None) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else None


def _merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the parts it did not measure kept from ``old`` (a run of the same model)."""
    if not old or old.get("model") != new["model"]:
        return new
    merged = {**new, "tasks": {**old.get("tasks", {}), **new["tasks"]}}
    merged["earlier_commands"] = [*old.get("earlier_commands", []), old.get("command")]  # of the parts kept
    if "generation" not in new and "generation" in old:
        merged["generation"] = old["generation"]
    merged["settings"] = {**new["settings"], "trials": {**old["settings"]["trials"], **new["settings"]["trials"]}}
    return add_ratios(merged)


def measure(a: argparse.Namespace) -> dict[str, Any]:
    """Run the parts asked for and return the JSON to write (merged with the parts kept from --json)."""
    if a.threads:
        torch.set_num_threads(a.threads)
    pipe = model_pipeline(a.model, device=a.device)
    if a.json == DEFAULT_JSON and "preview" in pipe.name:
        raise SystemExit(f"{pipe.name}: a preview's numbers do not go to {DEFAULT_JSON}; give --json PATH")
    options = pipe.defaults.replace(steps=a.steps)
    old = _read(a.json)
    same = old if old and old.get("model") == pipe.name else None
    res = measure_scenes_tasks(
        pipe,
        parts=_names("--parts", a.parts, PARTS),
        trials=parse_trials(a.trials),
        decodings=_names("--decodings", a.decodings, DECODINGS),
        strategies=_names("--strategies", a.strategies, RESIZE_STRATEGIES),
        options=options,
        yardstick=(same or {}).get("generation"),
    )
    info = machine_info(pipe.device)
    env = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    head = {
        "command": " ".join([*env, "python", "scripts/bench_scenes.py", *sys.argv[1:]]),
        "machine": machine_string(info),
        "machine_info": info,
    }
    return _merge(same, {**head, **res})


def main() -> None:
    a = _args()
    try:
        out = _read(a.json) if a.table_only else measure(a)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    if out is None:
        raise SystemExit(f"--table-only: no results in {a.json!r}")
    if a.json and not a.table_only:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {a.json}")
    print(f"\n{out['model']} on {out.get('machine')}\n")
    print(scenes_table(out))
    print("\nSharpness and seams against the true renders (1.00: as the truth):\n")
    print(detail_table(out))
    print("\nWindowed against whole-canvas decoding, scenes and digits:\n")
    print(windows_table(out, _read(a.digits)))
    missing = sorted(
        {t for t, rows in out["tasks"].items() for d in DECODINGS if rows.get(d, {}).get("frechet_ratio", 0) is None}
    )
    if missing:
        print(
            f"\nno ratio for {', '.join(missing)}: plain generation was not measured at their sample sizes; "
            "measure --parts generation with the same --trials"
        )


if __name__ == "__main__":
    main()
