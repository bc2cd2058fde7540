"""What the judge does not see, on both shipped models: blur and seams, before and after a change.

    OMP_NUM_THREADS=2 python scripts/bench_blur.py --json docs/benchmarks/blur-before.json

For each model (digits, scenes): the tokenizer's PSNR and sharpness on held-out images, and generated
images at 32 steps: judge accuracy, the Frechet distances in judge features and in texture features,
and their sharpness against the real reference images (:mod:`arpg.measure.evaluate`). For the scenes
model, the canvas tasks against true renders (:mod:`arpg.measure.scenes_tasks`): outpaint by 8 cells
and panorama x4 (sharpness of the new part, seam scores at the joins), resize x2 (sharpness and PSNR
beside bicubic's), every decoding; and inpainting the right half of held-out scenes (same class; the
seam where the kept half meets the new one, against the scene itself). ``--parts`` runs some of
``tokenizer,generation,tasks,inpaint``; the counts
are flags (smaller than ``eval``'s and ``bench_scenes.py``'s defaults on a busy 2-core machine). The JSON
keeps the command, the machine and the results; the tables are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from arpg import tasks
from arpg.commands import model_pipeline
from arpg.data import scenes
from arpg.measure import evaluate
from arpg.measure.probes import machine_info, machine_string
from arpg.measure.scenes_table import detail_table
from arpg.measure.scenes_tasks import heldout, measure_scenes_tasks
from arpg.measure.seams import seam_scores
from arpg.measure.sharpness import sharpness_ratio
from arpg.measure.texture import texture_features

PARTS = ("tokenizer", "generation", "tasks", "inpaint")
MODELS = ("digits", "scenes")
STEPS = 32


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, help="where the results go")
    p.add_argument("--models", default=",".join(MODELS), help=f"some of {','.join(MODELS)}")
    p.add_argument("--parts", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    p.add_argument("--tokenizer-images", type=int, default=evaluate.PSNR_IMAGES, help="held-out images encoded")
    p.add_argument("--per-class", type=int, default=100, help="generated images per class at 32 steps")
    p.add_argument("--outpaint", type=int, default=100, help="outpaint trials (scenes)")
    p.add_argument("--panorama", type=int, default=20, help="panorama trials (scenes)")
    p.add_argument("--resize", type=int, default=20, help="resize trials per strategy (scenes)")
    p.add_argument("--inpaint", type=int, default=40, help="inpaint trials (scenes)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p.parse_args()


def _names(flag: str, text: str, choices: tuple[str, ...]) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or set(names) - set(choices):
        raise SystemExit(f"error: {flag}: some of {','.join(choices)}; got {text!r}")
    return names


def generation(pipe: Any, per_class: int) -> dict[str, Any]:
    """Images generated at :data:`STEPS` steps: judge accuracy, both Frechet distances, sharpness."""
    t = time.time()
    ref = evaluate.reference_features(pipe)
    ref_images = evaluate.reference_images(pipe, len(ref))
    imgs, labels = evaluate.generated(pipe, per_class, STEPS)
    row = evaluate.generation_quality(pipe, imgs, labels, ref)
    row.update(evaluate.texture_quality(imgs, ref_images, texture_features(ref_images)))
    return {"steps": STEPS, "samples": len(imgs), "reference_images": len(ref), **row, "seconds": time.time() - t}


def inpaint(pipe: Any, trials: int) -> dict[str, Any]:
    """The right half of ``trials`` held-out scenes (the yardstick's split) inpainted as their own class,
    trial i with seed i: the seam scores where the halves meet and the new half's sharpness."""
    t = time.time()
    labels, seeds = heldout("generation", trials)
    truth = scenes.render_batch(labels, seeds)
    half = np.zeros(truth.shape[1:3], bool)
    half[:, truth.shape[2] // 2 :] = True
    made = np.stack([tasks.inpaint(pipe, truth[i], half, int(labels[i]), seed=i).image for i in range(trials)])
    new = np.s_[:, :, truth.shape[2] // 2 :]
    sharp = round(sharpness_ratio(made[new], truth[new]), 3)
    return {"trials": trials, **seam_scores(made, truth, half), "sharpness": sharp, "seconds": time.time() - t}


def measure_model(name: str, a: argparse.Namespace, parts: list[str]) -> dict[str, Any]:
    """Every part asked for of one shipped model."""
    pipe = model_pipeline(name)
    res: dict[str, Any] = {"model": pipe.name}
    if "tokenizer" in parts:
        style = evaluate.data_styles(evaluate.data_name(pipe))[0]
        res["tokenizer"] = {
            "images": a.tokenizer_images,
            **evaluate.tokenizer_quality(pipe, a.tokenizer_images, style=style),
        }
    if "generation" in parts:
        res["generation"] = generation(pipe, a.per_class)
    if "tasks" in parts and name == "scenes":
        trials = {"outpaint": a.outpaint, "panorama": a.panorama, "resize": a.resize}
        res["scenes_tasks"] = measure_scenes_tasks(pipe, parts=list(trials), trials=trials)
    if "inpaint" in parts and name == "scenes":
        res["inpaint"] = inpaint(pipe, a.inpaint)
    return res


def main() -> None:
    a = _args()
    if a.threads:
        torch.set_num_threads(a.threads)
    parts, models = _names("--parts", a.parts, PARTS), _names("--models", a.models, MODELS)
    env = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    info = machine_info(torch.device("cpu"))
    out: dict[str, Any] = {
        "command": " ".join([*env, "python", "scripts/bench_blur.py", *sys.argv[1:]]),
        "machine": machine_string(info),
        "machine_info": info,
        "models": {m: measure_model(m, a, parts) for m in models},
    }
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.json}")
    for m, res in out["models"].items():
        print(f"\n{m}: tokenizer {res.get('tokenizer')}\n{m}: generation {res.get('generation')}")
        if "inpaint" in res:
            print(f"{m}: inpaint the right half {res['inpaint']}")
        if "scenes_tasks" in res:
            print(detail_table(res["scenes_tasks"]))


if __name__ == "__main__":
    main()
