"""Tokenizers of one model side by side: PSNR and sharpness of their reconstructions of held-out images.

    OMP_NUM_THREADS=1 python scripts/tokenizer_sharpness.py --model scenes \\
        --tokenizer runs/vq-sharp-scenes/vq_decoder/vq.safetensors --images 200 \\
        --json docs/benchmarks/tokenizer-sharp-scenes.json --grid docs/examples/tokenizer_sharp_scenes.png

The model's own tokenizer (``--model``: digits, scenes or a folder) comes first, then every
``--tokenizer`` file (e.g. a decoder sharpened by ``train --stage vq-decoder``, or the one it left
so far, ``vq_decoder_latest.safetensors``).  Each encodes and decodes the same held-out images:
``tokenizer_quality`` of :mod:`arpg.measure.evaluate` on the model's 64 px images (digits: in the
generator's style and in "wide"), and, for a data set with canvases (scenes), the recipe's other
tokenizer canvases (96 px at scale 1.5, 128 px at scale 2), where PSNR and sharpness are measured
the same way.  ``--grid`` writes a picture: one row per class, the real image then each
tokenizer's reconstruction, enlarged 3x so detail shows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from arpg.checkpoints import load_vq
from arpg.commands import model_pipeline
from arpg.data.sets import dataset, images
from arpg.measure import evaluate
from arpg.measure.probes import machine_info
from arpg.measure.scenes_tasks import psnr
from arpg.measure.sharpness import sharpness_ratio
from arpg.train.recipes import RECIPES
from arpg.viz.frames import image_grid

GRID_POOL, GRID_ZOOM = 100, 3  # the grid's images: the first of each class among GRID_POOL


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="scenes", help="digits, scenes or a model folder (its tokenizer comes first)")
    p.add_argument("--tokenizer", action="append", default=[], help="a vq.safetensors to compare (repeatable)")
    p.add_argument("--images", type=int, default=200, help="held-out images per canvas")
    p.add_argument("--json", default=None, help="where the results go")
    p.add_argument("--grid", default=None, help="a PNG of real images beside every tokenizer's reconstruction")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def _other_canvases(data: str) -> list:
    """The tokenizer canvases of the data set's recipe beyond the first (64 px, which evaluate measures)."""
    recipe = RECIPES.get(data)
    return list(recipe.vq_canvases[1:]) if recipe is not None else []


def _on_canvas(pipe: Any, data: str, canvas: Any, n: int) -> dict[str, float]:
    """PSNR and sharpness of ``n`` held-out images of ``data`` rendered on ``canvas``, encoded and decoded."""
    truth, _ = images(data, range(n), dataset(data).HELDOUT_SEED, canvas)
    made = np.concatenate([pipe.decode(pipe.encode(truth[i : i + 25])) for i in range(0, n, 25)])
    return {"psnr_db": float(psnr(made, truth).mean()), "sharpness": sharpness_ratio(made, truth)}


def measure(pipe: Any, n: int) -> dict[str, Any]:
    """Every measurement of the pipeline's current tokenizer."""
    data = evaluate.data_name(pipe)
    res: dict[str, Any] = {}
    for style in evaluate.data_styles(data):
        res[f"64px{'_' + style if style else ''}"] = evaluate.tokenizer_quality(pipe, n, style=style)
    for canvas in _other_canvases(data):
        res[canvas.tag] = _on_canvas(pipe, data, canvas, n)
    return res


def grid(pipe: Any, tokenizers: list[torch.nn.Module], path: Path) -> None:
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


def main() -> int:
    a = _args()
    torch.set_num_threads(a.threads)
    pipe = model_pipeline(a.model)
    names = [f"{a.model} (shipped)" if a.model in ("digits", "scenes") else a.model, *a.tokenizer]
    tokenizers = [pipe.vq, *(load_vq(t, device=pipe.device) for t in a.tokenizer)]
    t0 = time.time()
    results = {}
    for name, vq in zip(names, tokenizers, strict=True):
        pipe.vq = vq
        results[name] = measure(pipe, a.images)
        print(name, json.dumps(results[name]), flush=True)
    if a.grid:
        grid(pipe, tokenizers, Path(a.grid))
    if a.json:
        out = {
            "command": "python " + " ".join(sys.argv),
            "machine": machine_info(pipe.device),
            "images": a.images,
            "seconds": time.time() - t0,
            "tokenizers": results,
        }
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
