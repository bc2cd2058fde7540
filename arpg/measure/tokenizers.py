"""Tokenizers of one model side by side: PSNR and sharpness of their reconstructions of held-out images.

Each tokenizer encodes and decodes the same held-out images: :func:`arpg.measure.evaluate.tokenizer_quality`
on the model's 64 px images (digits: in the generator's style and in "wide"), and, for a data set with
canvases, the recipe's other tokenizer canvases (e.g. 96 px at scale 1.5, 128 px at scale 2), where PSNR
and sharpness are measured the same way. :func:`tokenizer_grid` draws one row per class: the real image
then each tokenizer's reconstruction, enlarged so detail shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data.sets import CanvasSpec, dataset, images
from ..pipeline import Pipeline
from ..train.recipes import RECIPES
from ..viz.frames import image_grid
from . import evaluate
from .pixels import psnr
from .sharpness import sharpness_ratio

GRID_POOL, GRID_ZOOM = 100, 3  # the grid's images: the first of each class among GRID_POOL


def other_canvases(data: str) -> list[CanvasSpec]:
    """The tokenizer canvases of the data set's recipe beyond the first (64 px, which evaluate measures)."""
    recipe = RECIPES.get(data)
    return list(recipe.vq_canvases[1:]) if recipe is not None else []


def on_canvas(pipe: Pipeline, data: str, canvas: CanvasSpec, n: int) -> dict[str, float]:
    """PSNR and sharpness of ``n`` held-out images of ``data`` rendered on ``canvas``, encoded and decoded."""
    truth, _ = images(data, range(n), dataset(data).HELDOUT_SEED, canvas)
    made = np.concatenate([pipe.decode(pipe.encode(truth[i : i + 25])) for i in range(0, n, 25)])
    return {"psnr_db": float(psnr(made, truth).mean()), "sharpness": sharpness_ratio(made, truth)}


def tokenizer_measures(pipe: Pipeline, n: int) -> dict[str, Any]:
    """Every measurement of the pipeline's current tokenizer on ``n`` held-out images per canvas."""
    data = evaluate.data_name(pipe)
    res: dict[str, Any] = {}
    for style in evaluate.data_styles(data):
        res[f"64px{'_' + style if style else ''}"] = evaluate.tokenizer_quality(pipe, n, style=style)
    for canvas in other_canvases(data):
        res[canvas.tag] = on_canvas(pipe, data, canvas, n)
    return res


def compare_tokenizers(
    pipe: Pipeline, tokenizers: Mapping[str, torch.nn.Module], n: int, report: Any = None
) -> dict[str, dict[str, Any]]:
    """:func:`tokenizer_measures` of each tokenizer (by name) in the pipeline in turn; ``report(name, row)``
    sees each as it is measured. The pipeline keeps the last tokenizer."""
    results = {}
    for name, vq in tokenizers.items():
        pipe.vq = vq
        results[name] = tokenizer_measures(pipe, n)
        if report is not None:
            report(name, results[name])
    return results


def tokenizer_grid(pipe: Pipeline, tokenizers: list[torch.nn.Module], path: Path) -> None:
    """One held-out image of every class (first column) beside each tokenizer's reconstruction of it."""
    data = evaluate.data_name(pipe)
    imgs, labels = evaluate.real_images(GRID_POOL, data=data, style="wide")
    truth = imgs[[int(np.nonzero(labels == c)[0][0]) for c in sorted(set(labels.tolist()))]]
    zoom = (truth.shape[2] * GRID_ZOOM, truth.shape[1] * GRID_ZOOM)
    cells = []
    for i in range(len(truth)):
        row = [truth[i]]
        for vq in tokenizers:
            pipe.vq = vq
            row.append(pipe.decode(pipe.encode(truth[i : i + 1]))[0])
        cells += [Image.fromarray(c).resize(zoom, Image.NEAREST) for c in row]
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(cells, ncols=len(tokenizers) + 1, pad=4).save(path)
