"""Quality measurements of the shipped model: tokenizer PSNR, judge accuracy, and class
accuracy + Frechet distance (in judge features) of generated images."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import data
from .judge import frechet_distance, judge_images
from .sampling import method_kwargs


def real_images(n: int, seed: int = data.HELDOUT_SEED,
                style: str = data.GENERATOR_STYLE) -> tuple[np.ndarray, np.ndarray]:
    return data.sample(range(n), seed=seed, style=style)


def tokenizer_psnr(pipe, n: int = 1000, batch: int = 100, style: str = data.GENERATOR_STYLE) -> float:
    """Mean PSNR (dB) of encode -> decode on ``n`` held-out images."""
    imgs, _ = real_images(n, style=style)
    vals = []
    for i in range(0, n, batch):
        x = imgs[i:i + batch]
        rec = pipe.decode(pipe.encode(x))
        mse = ((rec.astype(np.float64) - x.astype(np.float64)) ** 2).reshape(len(x), -1).mean(1)
        vals.extend(10 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10)))
    return float(np.mean(vals))


def judge_accuracy(pipe, n: int = 2000, style: str = data.GENERATOR_STYLE) -> float:
    imgs, labels = real_images(n, seed=data.HELDOUT_SEED + 7, style=style)
    preds, _ = judge_images(pipe.judge, imgs)
    return float((preds == labels).mean())


def generated(pipe, per_class: int, steps: int, method: str = "arpg", batch: int = 50, seed: int = 0,
              progress: bool = True, **options) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every class; image seeds depend only on (class, batch index)."""
    n_cells = pipe.grid[0] * pipe.grid[1]
    kw = {**method_kwargs(method, steps, n_cells), **options}
    imgs, labels = [], []
    jobs = [(c, i) for c in range(pipe.num_classes) for i in range(0, per_class, batch)]
    for c, i in tqdm(jobs, desc=f"{method} {kw['steps']} steps", disable=not progress):
        b = min(batch, per_class - i)
        out = pipe.generate([c] * b, seed=seed + 1000 * c + i, **kw)
        imgs.append(out.images)
        labels.extend([c] * b)
    return np.concatenate(imgs), np.asarray(labels)


def generation_quality(pipe, images: np.ndarray, labels: np.ndarray, ref_feats: np.ndarray) -> dict:
    preds, feats = judge_images(pipe.judge, images)
    return {"accuracy": float((preds == labels).mean()), "frechet": frechet_distance(feats, ref_feats)}


def reference_features(pipe, n: int = 2000) -> np.ndarray:
    """Judge features of real images of the style the generator learnt."""
    imgs, _ = real_images(n, seed=data.HELDOUT_SEED + 11)
    return judge_images(pipe.judge, imgs)[1]


def evaluate(pipe, per_class: int = 100, steps_list=(4, 8, 16, 32, 64, 256), raster: bool = True,
             fd_per_class: int | None = None, out: str | Path | None = None, progress: bool = True) -> dict:
    """The quality table of the issue: tokenizer PSNR, judge accuracy, and for every step
    count the judge accuracy and Frechet distance of generated images (random order), plus
    256-step raster order."""
    if pipe.judge is None:
        raise ValueError("this model has no judge classifier; quality can only be measured on the shipped model")
    t0 = time.time()
    res: dict = {"model": pipe.name, "per_class": per_class, "cfg_scale": pipe.default_cfg,
                 "cfg_schedule": pipe.default_cfg_schedule}
    # Held-out images of both data styles: the tokenizer and judge learnt "wide", the generator
    # learnt data.GENERATOR_STYLE (and the Frechet reference is drawn from it).
    res["data_style"] = data.GENERATOR_STYLE
    res["tokenizer_psnr_db"] = tokenizer_psnr(pipe)
    res["judge_accuracy"] = judge_accuracy(pipe)
    res["tokenizer_psnr_db_wide"] = tokenizer_psnr(pipe, style="wide")
    res["judge_accuracy_wide"] = judge_accuracy(pipe, style="wide")
    ref = reference_features(pipe)
    rows = []
    settings = [("arpg", s) for s in steps_list] + ([("raster", 256)] if raster else [])
    for method, steps in settings:
        n = per_class if (method, steps) == ("arpg", 32) or fd_per_class is None else fd_per_class
        t = time.time()
        imgs, labels = generated(pipe, n, steps, method, progress=progress)
        q = generation_quality(pipe, imgs, labels, ref)
        rows.append({"method": method, "steps": steps if method == "arpg" else 256, "samples": len(imgs),
                     **q, "seconds": time.time() - t})
    res["generation"] = rows
    res["seconds"] = time.time() - t0
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(res, indent=2) + "\n")
    return res


def format_table(res: dict) -> str:
    style = res.get("data_style", data.GENERATOR_STYLE)
    lines = [f"model: {res['model']}",
             f"tokenizer PSNR (1,000 held-out images): {res['tokenizer_psnr_db']:.2f} dB ({style}), "
             f"{res.get('tokenizer_psnr_db_wide', float('nan')):.2f} dB (wide)",
             f"judge accuracy (2,000 held-out images): {100 * res['judge_accuracy']:.2f}% ({style}), "
             f"{100 * res.get('judge_accuracy_wide', float('nan')):.2f}% (wide)",
             f"generation (guidance {res['cfg_scale']}, {res.get('cfg_schedule', 'linear')}):",
             f"  {'order':<8} {'steps':>5} {'samples':>7} {'accuracy':>9} {'Frechet':>8}"]
    for r in res["generation"]:
        order = "random" if r["method"] == "arpg" else r["method"]
        lines.append(f"  {order:<8} {r['steps']:>5} {r['samples']:>7} {100 * r['accuracy']:>8.1f}% "
                     f"{r['frechet']:>8.2f}")
    return "\n".join(lines)


def order_table(pipe, orders=("random", "raster", "spiral-in", "spiral-out", "z-curve", "alternate", "confidence"),
                steps_list=(32,), per_class: int = 20, batch: int = 20, seed: int = 0, progress: bool = True,
                **options) -> dict:
    """Decoding orders compared on one model in one run: for every order and step count,
    judge accuracy, Frechet distance, seconds per image and queries per image.

    Orders other than "random" are fixed permutations, decoded with the usual schedule;
    "confidence" scores every remaining cell at each step and keeps the most confident
    (more queries per step)."""
    if pipe.judge is None:
        raise ValueError("order quality needs the shipped model's judge classifier")
    ref = reference_features(pipe)
    rows = []
    jobs = [(o, s) for s in steps_list for o in orders]
    for order, steps in jobs:
        imgs, labels, queries = [], [], 0
        t = time.perf_counter()
        for c in tqdm(range(pipe.num_classes), desc=f"{order} {steps} steps", disable=not progress):
            for i in range(0, per_class, batch):
                b = min(batch, per_class - i)
                out = pipe.generate([c] * b, seed=seed + 1000 * c + i, steps=steps, order=order, **options)
                imgs.append(out.images)
                labels.extend([c] * b)
                queries += out.trace.queries * b
        secs = time.perf_counter() - t
        imgs = np.concatenate(imgs)
        q = generation_quality(pipe, imgs, np.asarray(labels), ref)
        rows.append({"order": order, "steps": steps, "samples": len(imgs), **q,
                     "seconds_per_image": secs / len(imgs), "queries_per_image": queries / len(imgs)})
    return {"model": pipe.name, "cfg_scale": pipe.default_cfg if options.get("cfg_scale") is None
            else options["cfg_scale"], "per_class": per_class, "rows": rows}


def format_order_table(res: dict) -> str:
    lines = [f"model: {res['model']} (guidance {res['cfg_scale']}, {res['per_class']} images per class)",
             f"  {'order':<11} {'steps':>5} {'accuracy':>9} {'Frechet':>8} {'s/image':>8} {'queries':>8}"]
    for r in res["rows"]:
        lines.append(f"  {r['order']:<11} {r['steps']:>5} {100 * r['accuracy']:>8.1f}% {r['frechet']:>8.2f} "
                     f"{r['seconds_per_image']:>8.3f} {r['queries_per_image']:>8.0f}")
    return "\n".join(lines)
