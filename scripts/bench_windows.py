"""Windowed against whole-canvas decoding for the canvas tasks, on the shipped digits model.

    OMP_NUM_THREADS=1 python scripts/bench_windows.py --trials 50 --json docs/benchmarks/windows.json

Held-out digits (``arpg.data.digits``), the model's sampling defaults at ``--steps`` steps; each
task runs with ``decoding="windowed"`` and ``decoding="whole"`` on the same inputs and seeds, and
the shipped judge reads the class (:func:`arpg.judge.judge_images`):

* ``outpaint``: the 64x64 digit extended by 8 cells to the right (64x96 px); judged: the new
  right-most 64x64 window;
* ``panorama``: 4x wider to the right (64x256 px); judged: every 64x64 window at a stride of 32 px
  (``accuracy``: all windows; ``all_windows``: the share of panoramas whose every window is read right);
* ``resize lattice`` / ``resize reencode``: x2 (64 -> 128 px) with each strategy; judged: the
  result downscaled to 64 px.

Also recorded per setting: the forward passes of a decode (a panorama: all its rounds) and the
seconds. The winner of each task is the decoding with the higher accuracy (ties: fewer passes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from arpg import tasks
from arpg.data import digits
from arpg.judge import judge_images
from arpg.pipeline import Pipeline
from arpg.windows import DECODINGS

WINDOW_PX, STRIDE_PX = 64, 32
TASKS = ("outpaint", "panorama", "resize lattice", "resize reencode")


def windows_of(image: np.ndarray, size: int = WINDOW_PX, stride: int = STRIDE_PX) -> list[np.ndarray]:
    """The ``size`` square windows of a ``size``-high image, every ``stride`` px from the left."""
    return [image[:, x : x + size] for x in range(0, image.shape[1] - size + 1, stride)]


def run_task(
    pipe: Pipeline, task: str, img: np.ndarray, label: int, seed: int, steps: int, decoding: str
) -> tuple[list[np.ndarray], int]:
    """One trial: (the windows to judge, forward passes)."""
    if task == "outpaint":
        r = tasks.outpaint(pipe, img, label, right=8, seed=seed, steps=steps, decoding=decoding)
        return [r.image[:, -WINDOW_PX:]], r.trace.forward_passes
    if task == "panorama":
        passes: list[int] = []
        r = tasks.panorama(
            pipe,
            img,
            label,
            times=4,
            side="right",
            seed=seed,
            steps=steps,
            decoding=decoding,
            on_round=lambda res: passes.append(res.trace.forward_passes),
        )
        return windows_of(r.image), sum(passes)
    strategy = task.split()[1]
    r = tasks.resize(pipe, img, label, scale=2.0, strategy=strategy, seed=seed, steps=steps, decoding=decoding)
    small = np.asarray(Image.fromarray(r.image).resize((WINDOW_PX, WINDOW_PX), Image.LANCZOS))
    return [small], r.trace.forward_passes


def measure(
    pipe: Pipeline,
    task: str,
    decoding: str,
    imgs: np.ndarray,
    labels: np.ndarray,
    steps: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Accuracy, passes and time of ``task`` with ``decoding`` over every input."""
    t0, crops, want, passes, per_trial = time.time(), [], [], [], []
    for i, (img, label) in enumerate(zip(imgs, labels)):
        wins, n = run_task(pipe, task, img, int(label), i, steps, decoding)
        crops += wins
        want += [int(label)] * len(wins)
        per_trial.append(len(wins))
        passes.append(n)
    pred, _ = judge_images(pipe.judge, np.stack(crops))
    right = pred == np.asarray(want)
    bounds = np.cumsum([0, *per_trial])
    res = {
        "accuracy": round(float(right.mean()), 4),
        "windows_judged": len(right),
        "forward_passes": float(np.mean(passes)),
        "seconds": round(time.time() - t0, 1),
    }
    if task == "panorama":
        res["all_windows"] = round(float(np.mean([right[a:b].all() for a, b in zip(bounds, bounds[1:])])), 4)
    log(
        f"{task:16s} {decoding:8s} accuracy {res['accuracy']:.3f}  passes {res['forward_passes']:.0f}  "
        f"{res['seconds']} s"
    )
    return res


def winner(rows: dict[str, dict[str, Any]]) -> str:
    """The decoding with the higher accuracy; fewer forward passes among equals."""
    return max(DECODINGS, key=lambda d: (rows[d]["accuracy"], -rows[d]["forward_passes"]))


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=50, help="held-out digits per task and decoding (default 50)")
    p.add_argument("--steps", type=int, default=16, help="sampling steps (default 16)")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"some of {','.join(TASKS)}")
    p.add_argument("--json", default="docs/benchmarks/windows.json")
    return p.parse_args()


def main() -> None:
    a = _args()
    chosen = [t for t in a.tasks.split(",") if t]
    if set(chosen) - set(TASKS):
        raise SystemExit(f"--tasks: some of {','.join(TASKS)}")
    pipe = Pipeline.shipped()
    imgs, labels = digits.sample(range(a.trials), seed=digits.HELDOUT_SEED + 17, style=digits.GENERATOR_STYLE)
    out: dict[str, Any] = {
        "command": "OMP_NUM_THREADS=1 python scripts/bench_windows.py " + " ".join(sys.argv[1:]),
        "model": pipe.name,
        "trained_sizes": [list(s) for s in pipe.model.cfg.trained_sizes],
        "trials": a.trials,
        "steps": a.steps,
        "cfg_scale": pipe.defaults.cfg_scale,
        "cfg_schedule": pipe.defaults.cfg_schedule,
        "tasks": {},
    }
    for task in chosen:
        rows = {d: measure(pipe, task, d, imgs, labels, a.steps, print) for d in DECODINGS}
        out["tasks"][task] = {**rows, "winner": winner(rows)}
    path = Path(a.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
