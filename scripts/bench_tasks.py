"""Zero-shot task quality on the shipped model, measured by the judge.

    python scripts/bench_tasks.py --trials 100 --json docs/benchmarks/tasks.json

* inpainting: half of a held-out digit (right or bottom half, alternating) is masked and
  regenerated with the same class; success = the judge reads the true class;
* editing: the digit's bounding box (plus one token cell) is regenerated as another class
  (class + 1..9, cycling); success = the judge reads the new class;
* resolution change, both strategies: 16x16 -> 24x24 tokens; the result is scored by the
  judge (downscaled to 64 px) and by PSNR against the bicubic upscale of the input.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arpg import data, tasks  # noqa: E402
from arpg.judge import judge_images  # noqa: E402
from arpg.pipeline import Pipeline  # noqa: E402


def half_mask(i: int, size: int = 64) -> np.ndarray:
    m = np.zeros((size, size), bool)
    if i % 2:
        m[:, size // 2:] = True
    else:
        m[size // 2:] = True
    return m


def digit_box_mask(img: np.ndarray, margin: int = 4) -> np.ndarray:
    """Pixels inside the bounding box of the glyph (pixels far from the background colour)."""
    bg = np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]), axis=0)
    fg = np.abs(img.astype(float) - bg).sum(-1) > 60
    m = np.zeros(fg.shape, bool)
    ys, xs = np.nonzero(fg)
    if len(ys):
        m[max(0, ys.min() - margin):ys.max() + margin + 1, max(0, xs.min() - margin):xs.max() + margin + 1] = True
    else:
        m[16:48, 16:48] = True
    return m


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(float) - b.astype(float)) ** 2).mean()
    return float(10 * np.log10(255 ** 2 / max(mse, 1e-10)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--resize-trials", type=int, default=50)
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--json", default="docs/benchmarks/tasks.json")
    p.add_argument("--style", default=data.GENERATOR_STYLE, choices=sorted(data.STYLES),
                   help="data style of the held-out input digits (default: the one the generator learnt)")
    a = p.parse_args()
    pipe = Pipeline.shipped()
    imgs, labels = data.sample(range(a.trials), seed=data.HELDOUT_SEED + 21, style=a.style)
    t0 = time.time()
    out_inp, out_edit, targets = [], [], []
    for i in tqdm(range(a.trials), desc="inpaint + edit"):
        r = tasks.inpaint(pipe, imgs[i], half_mask(i), int(labels[i]), seed=i, steps=a.steps)
        out_inp.append(r.image)
        new = (int(labels[i]) + 1 + i % 9) % 10
        targets.append(new)
        r = tasks.edit(pipe, imgs[i], digit_box_mask(imgs[i]), new, seed=i, steps=a.steps)
        out_edit.append(r.image)
    inp_pred, _ = judge_images(pipe.judge, np.stack(out_inp))
    edit_pred, _ = judge_images(pipe.judge, np.stack(out_edit))
    res = {"model": pipe.name, "data_style": a.style, "steps": a.steps, "cfg_scale": pipe.default_cfg,
           "cfg_schedule": pipe.default_cfg_schedule,
           "trials": a.trials,
           "inpaint_same_class_accuracy": float((inp_pred == labels).mean()),
           "edit_new_class_accuracy": float((edit_pred == np.asarray(targets)).mean()),
           "edit_still_old_class": float((edit_pred == labels).mean())}
    resize = {}
    for strategy in tasks.RESIZE_STRATEGIES:
        outs, ps = [], []
        for i in tqdm(range(a.resize_trials), desc=f"resize {strategy}"):
            r = tasks.resize(pipe, imgs[i], int(labels[i]), scale=1.5, strategy=strategy, seed=i, steps=a.steps)
            ref = np.asarray(Image.fromarray(imgs[i]).resize(r.image.shape[1::-1], Image.BICUBIC))
            ps.append(psnr(r.image, ref))
            outs.append(np.asarray(Image.fromarray(r.image).resize((64, 64), Image.LANCZOS)))
        pred, _ = judge_images(pipe.judge, np.stack(outs))
        resize[strategy] = {"judge_accuracy": float((pred == labels[:a.resize_trials]).mean()),
                            "psnr_vs_bicubic_db": float(np.mean(ps)), "trials": a.resize_trials}
    res["resize_16_to_24"] = resize
    res["seconds"] = time.time() - t0
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
