"""What the judge does not see, of a model trained here: blur and seams, to compare before and after a change.

* ``tokenizer``: its PSNR and sharpness on held-out images (:func:`arpg.measure.evaluate.tokenizer_quality`);
* ``generation``: images generated at :data:`STEPS` steps: judge accuracy, the Frechet distances in judge
  features and in texture features, and their sharpness against the real reference images;
* ``tasks``: the canvas tasks against true renders (:mod:`arpg.measure.canvas_tasks`): outpaint by 8 cells
  and panorama x4 (sharpness of the new part, seam scores at the joins), resize x2 (sharpness and PSNR
  beside bicubic's), every decoding;
* ``inpaint``: the right half of held-out images inpainted as their own class: the seam where the kept half
  meets the new one, against the image itself, and the new half's sharpness.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import tasks
from ..pipeline import Pipeline
from . import evaluate
from .canvas_table import detail_table
from .canvas_tasks import measure_canvas_tasks, source_of
from .seams import seam_scores
from .sharpness import sharpness_ratio
from .texture import texture_features

PARTS = ("tokenizer", "generation", "tasks", "inpaint")
STEPS = 32


def generation_detail(pipe: Pipeline, per_class: int, steps: int = STEPS) -> dict[str, Any]:
    """Images generated at ``steps`` steps: judge accuracy, both Frechet distances, sharpness."""
    t = time.time()
    ref = evaluate.reference_features(pipe)
    ref_images = evaluate.reference_images(pipe, len(ref))
    imgs, labels = evaluate.generated(pipe, per_class, steps)
    row = evaluate.generation_quality(pipe, imgs, labels, ref)
    row.update(evaluate.texture_quality(imgs, ref_images, texture_features(ref_images)))
    return {"steps": steps, "samples": len(imgs), "reference_images": len(ref), **row, "seconds": time.time() - t}


def inpaint_seams(pipe: Pipeline, trials: int) -> dict[str, Any]:
    """The right half of ``trials`` held-out images (the canvas tasks' yardstick split) inpainted as their
    own class, trial i with seed i: the seam scores where the halves meet and the new half's sharpness."""
    t = time.time()
    truth, labels = source_of(pipe).images("generation", trials)
    half = np.zeros(truth.shape[1:3], bool)
    half[:, truth.shape[2] // 2 :] = True
    made = np.stack([tasks.inpaint(pipe, truth[i], half, int(labels[i]), seed=i).image for i in range(trials)])
    new = np.s_[:, :, truth.shape[2] // 2 :]
    sharp = round(sharpness_ratio(made[new], truth[new]), 3)
    return {"trials": trials, **seam_scores(made, truth, half), "sharpness": sharp, "seconds": time.time() - t}


def measure_blur(
    pipe: Pipeline,
    parts: Sequence[str] = PARTS,
    tokenizer_images: int = evaluate.PSNR_IMAGES,
    per_class: int = 100,
    trials: Mapping[str, int] | None = None,
    inpaint: int = 40,
) -> dict[str, Any]:
    """Every part asked for (:data:`PARTS`) of one model: ``tokenizer_images`` held-out images encoded,
    ``per_class`` images generated per class, ``trials`` of the canvas tasks by part (outpaint, panorama,
    resize), ``inpaint`` trials."""
    res: dict[str, Any] = {"model": pipe.name}
    if "tokenizer" in parts:
        style = evaluate.data_styles(evaluate.data_name(pipe))[0]
        res["tokenizer"] = {
            "images": tokenizer_images,
            **evaluate.tokenizer_quality(pipe, tokenizer_images, style=style),
        }
    if "generation" in parts:
        res["generation"] = generation_detail(pipe, per_class)
    if "tasks" in parts:
        trials = dict(trials or {"outpaint": 100, "panorama": 20, "resize": 20})
        res["canvas_tasks"] = measure_canvas_tasks(pipe, parts=list(trials), trials=trials)
    if "inpaint" in parts:
        res["inpaint"] = inpaint_seams(pipe, inpaint)
    return res


def blur_text(models: Mapping[str, Mapping[str, Any]]) -> str:
    """What a run prints, model by model: the tokenizer, generation and inpaint rows, the tasks' detail table."""
    lines = []
    for name, res in models.items():
        lines.append(f"\n{name}: tokenizer {res.get('tokenizer')}\n{name}: generation {res.get('generation')}")
        if "inpaint" in res:
            lines.append(f"{name}: inpaint the right half {res['inpaint']}")
        if "canvas_tasks" in res:
            lines.append(detail_table(res["canvas_tasks"]))
    return "\n".join(lines)
