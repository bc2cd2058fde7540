"""Zero-shot task quality on the shipped model, measured by the judge.

    OMP_NUM_THREADS=1 python scripts/bench_tasks.py --trials 100 --resize-trials 50 --json docs/benchmarks/tasks.json

Held-out digits (``arpg.data.digits``), 16 steps, the model's guidance; every part is written
to the JSON (``--parts`` measures some of them and keeps the others from the file):

* ``inpaint``: half of the digit (right or bottom, alternating) regenerated with the same class;
  success = the judge reads the class. ``band``: the mean colour shift (RGB distance of the mean
  difference, 0..441) between output and input on background pixels of the regenerated cells:
  the visible band of a paste whose colours do not match;
* ``edit``: the digit's bounding box (+4 px) regenerated as another class (class + 1..9,
  cycling); success = the judge reads the new class;
* ``stroke``: a stroke 4 px wide across the digit (horizontal, vertical, diagonal in turn),
  another class, for each edit region of :data:`arpg.masks.EDIT_REGIONS` ("painted" is the
  stroke as it is: the behaviour before regions were grown);
* ``resize``: both strategies at each ``--scales``; the judge reads the result (downscaled to
  64 px) and the PSNR against the bicubic upscale of the input.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from arpg import masks, tasks
from arpg.data import digits
from arpg.judge import judge_images
from arpg.pipeline import Pipeline

PARTS = ("inpaint", "edit", "stroke", "resize")
STROKE_PX = 4


def half_mask(i: int, size: int = 64) -> np.ndarray:
    """The bottom half (even ``i``) or the right half (odd ``i``) of a ``size`` square."""
    m = np.zeros((size, size), bool)
    if i % 2:
        m[:, size // 2 :] = True
    else:
        m[size // 2 :] = True
    return m


def digit_box_mask(img: np.ndarray, margin: int = 4) -> np.ndarray:
    """Pixels inside the bounding box of the glyph (pixels far from the background colour)."""
    fg = masks.foreground(img)
    m = np.zeros(fg.shape, bool)
    ys, xs = np.nonzero(fg)
    if len(ys):
        m[max(0, ys.min() - margin) : ys.max() + margin + 1, max(0, xs.min() - margin) : xs.max() + margin + 1] = True
    else:
        m[16:48, 16:48] = True
    return m


def stroke_mask(img: np.ndarray, i: int, width: int = STROKE_PX) -> np.ndarray:
    """A straight stroke ``width`` px wide across the glyph's bounding box, through its centre:
    horizontal, vertical or diagonal for ``i`` % 3 = 0, 1, 2."""
    ys, xs = np.nonzero(masks.foreground(img))
    y0, y1, x0, x1 = (ys.min(), ys.max(), xs.min(), xs.max()) if len(ys) else (16, 48, 16, 48)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    line = [((x0, cy), (x1, cy)), ((cx, y0), (cx, y1)), ((x0, y0), (x1, y1))][i % 3]
    m = Image.new("L", (img.shape[1], img.shape[0]), 0)
    ImageDraw.Draw(m).line(line, fill=255, width=width)
    return np.asarray(m) > 127


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images."""
    mse = ((a.astype(float) - b.astype(float)) ** 2).mean()
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def background_shift(out: np.ndarray, img: np.ndarray, cells: np.ndarray, factor: int) -> float:
    """The colour shift of the background inside the regenerated ``cells``: the length of the mean
    RGB difference between ``out`` and ``img`` over the pixels that are background in both."""
    region = np.kron(cells, np.ones((factor, factor), bool)) & ~masks.foreground(img) & ~masks.foreground(out)
    if not region.any():
        return 0.0
    return float(np.linalg.norm((out[region].astype(float) - img[region].astype(float)).mean(0)))


def pasted(img: np.ndarray, raw: np.ndarray, cells: np.ndarray, mask: np.ndarray, factor: int) -> np.ndarray:
    """``raw`` pasted into ``img`` as before colours were matched: the soft edge only."""
    w = masks.seam_weights(mask)[..., None]
    return (img * (1 - w) + raw * w + 0.5).astype(np.uint8)


def new_class(label: int, i: int) -> int:
    """Another class than ``label``: + 1..9, cycling with ``i``."""
    return (int(label) + 1 + i % 9) % 10


def judged(pipe: Pipeline, outs: list[np.ndarray], want: np.ndarray, old: np.ndarray | None = None) -> dict:
    """The judge's accuracy on ``outs`` against ``want`` (and how often it still reads ``old``)."""
    pred, _ = judge_images(pipe.judge, np.stack(outs))
    res = {"accuracy": float((pred == want).mean())}
    if old is not None:
        res["still_old_class"] = float((pred == old).mean())
    return res


def bench_inpaint(pipe: Pipeline, imgs: np.ndarray, labels: np.ndarray, steps: int) -> dict:
    """Same-class inpainting of half the digit: accuracy and the colour band, with the colours
    matched (the output) and without (``band_unmatched``: the same decode pasted as before)."""
    outs, bands, before = [], [], []
    for i in tqdm(range(len(imgs)), desc="inpaint"):
        r = tasks.inpaint(pipe, imgs[i], half_mask(i), int(labels[i]), seed=i, steps=steps)
        outs.append(r.image)
        cells = (~r.known).numpy()
        bands.append(background_shift(r.image, imgs[i], cells, pipe.factor))
        old = pasted(imgs[i], r.raw, cells, half_mask(i), pipe.factor)
        before.append(background_shift(old, imgs[i], cells, pipe.factor))
    return {
        **judged(pipe, outs, labels),
        "band": float(np.mean(bands)),
        "band_max": float(np.max(bands)),
        "band_unmatched": float(np.mean(before)),
        "band_unmatched_max": float(np.max(before)),
        "mask": "right or bottom half",
    }


def bench_edit(pipe: Pipeline, imgs: np.ndarray, labels: np.ndarray, steps: int) -> dict:
    """Editing the digit's bounding box (+4 px) to another class."""
    outs, targets = [], []
    for i in tqdm(range(len(imgs)), desc="edit (box)"):
        targets.append(new_class(labels[i], i))
        outs.append(tasks.inpaint(pipe, imgs[i], digit_box_mask(imgs[i]), targets[-1], seed=i, steps=steps).image)
    return {**judged(pipe, outs, np.asarray(targets), labels), "mask": "glyph bounding box + 4 px"}


def parse_region(spec: str) -> tuple[str, int]:
    """``"dilate:12"`` -> ("dilate", 12); a name alone takes :data:`arpg.masks.EDIT_MARGIN`."""
    how, _, margin = spec.partition(":")
    if how not in masks.EDIT_REGIONS:
        raise SystemExit(f"--regions: some of {','.join(masks.EDIT_REGIONS)}, each optionally :<margin px>")
    return how, int(margin) if margin else masks.EDIT_MARGIN


def bench_stroke(pipe: Pipeline, imgs: np.ndarray, labels: np.ndarray, steps: int, regions: list[str]) -> dict:
    """A 4 px stroke across the digit, another class, for each edit region (``name[:margin px]``)."""
    res: dict[str, Any] = {"stroke_px": STROKE_PX}
    targets = np.asarray([new_class(labels[i], i) for i in range(len(imgs))])
    for spec in regions:
        how, margin = parse_region(spec)
        outs, cells = [], []
        for i in tqdm(range(len(imgs)), desc=f"stroke edit, {how} {margin} px"):
            region = masks.edit_region(imgs[i], stroke_mask(imgs[i], i), how, margin)
            r = tasks.inpaint(pipe, imgs[i], region, int(targets[i]), seed=i, steps=steps)
            outs.append(r.image)
            cells.append(int((~r.known).sum()))
        key = how if how == "painted" else f"{how} {margin} px"
        res[key] = {**judged(pipe, outs, targets, labels), "cells_regenerated": float(np.mean(cells))}
    return res


def bench_resize(pipe: Pipeline, imgs: np.ndarray, labels: np.ndarray, steps: int, scales: list[float]) -> dict:
    """Both resize strategies at each scale: judge accuracy and PSNR against the bicubic upscale."""
    res: dict[str, Any] = {"trials": len(imgs)}
    for strategy in tasks.RESIZE_STRATEGIES:
        for scale in scales:
            outs, ps = [], []
            for i in tqdm(range(len(imgs)), desc=f"resize {strategy} x{scale:g}"):
                r = tasks.resize(pipe, imgs[i], int(labels[i]), scale=scale, strategy=strategy, seed=i, steps=steps)
                ref = np.asarray(Image.fromarray(imgs[i]).resize(r.image.shape[1::-1], Image.BICUBIC))
                ps.append(psnr(r.image, ref))
                outs.append(np.asarray(Image.fromarray(r.image).resize((64, 64), Image.LANCZOS)))
            rows, cols = r.tokens.shape
            res[f"{strategy} x{scale:g}"] = {
                "strategy": strategy,
                "scale": scale,
                "grid": f"{rows}x{cols}",
                **judged(pipe, outs, labels),
                "psnr_vs_bicubic_db": float(np.mean(ps)),
            }
    return res


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100, help="digits for inpaint, edit and stroke (default 100)")
    p.add_argument("--resize-trials", type=int, default=50, help="digits per resize setting (default 50)")
    p.add_argument("--scales", default="1.25,1.5,2", help="resize scales, comma-separated (default 1.25,1.5,2)")
    p.add_argument(
        "--regions",
        default="painted,dilate,dilate:12,shape,box",
        help=f"edit regions for the stroke edit, some of {','.join(masks.EDIT_REGIONS)}, each "
        "optionally with :<margin px> (default: the module's margin)",
    )
    p.add_argument("--parts", default=",".join(PARTS), help=f"what to measure, some of {','.join(PARTS)}")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--json", default="docs/benchmarks/tasks.json")
    p.add_argument(
        "--style",
        default=digits.GENERATOR_STYLE,
        choices=sorted(digits.STYLES),
        help="data style of the held-out input digits (default: the one the generator learnt)",
    )
    return p.parse_args()


def main() -> None:
    a = _args()
    parts = [s for s in a.parts.split(",") if s]
    if set(parts) - set(PARTS):
        raise SystemExit(f"--parts: some of {','.join(PARTS)}")
    pipe = Pipeline.shipped()
    imgs, labels = digits.sample(range(max(a.trials, a.resize_trials)), seed=digits.HELDOUT_SEED + 21, style=a.style)
    x, y = imgs[: a.trials], labels[: a.trials]
    path = Path(a.json)
    res = {k: v for k, v in json.loads(path.read_text()).items() if k in PARTS} if path.exists() else {}
    res.update(
        {
            "model": pipe.name,
            "data_style": a.style,
            "steps": a.steps,
            "cfg_scale": pipe.defaults.cfg_scale,
            "cfg_schedule": pipe.defaults.cfg_schedule,
        }
    )
    runs = {
        "inpaint": lambda: bench_inpaint(pipe, x, y, a.steps),
        "edit": lambda: bench_edit(pipe, x, y, a.steps),
        "stroke": lambda: bench_stroke(pipe, x, y, a.steps, [s for s in a.regions.split(",") if s]),
        "resize": lambda: bench_resize(
            pipe,
            imgs[: a.resize_trials],
            labels[: a.resize_trials],
            a.steps,
            [float(s) for s in a.scales.split(",") if s],
        ),
    }
    for part in parts:
        t0 = time.time()
        res[part] = {
            **runs[part](),
            "trials": a.trials if part != "resize" else a.resize_trials,
            "seconds": round(time.time() - t0, 1),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
