"""Quality measurements of the shipped model: tokenizer PSNR, judge accuracy, and class
accuracy + Frechet distance (in judge features) of generated images, per step count or
per decoding order.  The tables are printed by :mod:`arpg.measure.report`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..options import SAMPLER_ORDERS, SamplingOptions
from ..sampling import method_kwargs
from ..train import digits
from .estimate import calibrate, duration_text
from .judge import frechet_distance, judge_images

log = logging.getLogger(__name__)
PROBE_IMAGES = 32  # real images rendered, encoded, decoded and judged to time each of those per image
#: Real images rendered, encoded and judged by :func:`evaluate` outside generation: the tokenizer PSNR
#: (2 x 1,000), the judge's accuracy (2 x 2,000) and the Frechet reference (2,000).
FIXED_RENDERS, FIXED_CODEC, FIXED_JUDGED = 8_000, 2_000, 6_000


def real_images(
    n: int, seed: int = digits.HELDOUT_SEED, style: str = digits.GENERATOR_STYLE
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` held-out images (N, 64, 64, 3) uint8 and their labels (N,)."""
    return digits.sample(range(n), seed=seed, style=style)


def tokenizer_psnr(pipe: Any, n: int = 1000, batch: int = 100, style: str = digits.GENERATOR_STYLE) -> float:
    """Mean PSNR (dB) of encode -> decode on ``n`` held-out images."""
    imgs, _ = real_images(n, style=style)
    vals = []
    for i in range(0, n, batch):
        x = imgs[i : i + batch]
        rec = pipe.decode(pipe.encode(x))
        mse = ((rec.astype(np.float64) - x.astype(np.float64)) ** 2).reshape(len(x), -1).mean(1)
        vals.extend(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10)))
    return float(np.mean(vals))


def judge_accuracy(pipe: Any, n: int = 2000, style: str = digits.GENERATOR_STYLE) -> float:
    """Accuracy of the pipeline's judge on ``n`` held-out real images."""
    imgs, labels = real_images(n, seed=digits.HELDOUT_SEED + 7, style=style)
    preds, _ = judge_images(pipe.judge, imgs)
    return float((preds == labels).mean())


def generated(
    pipe: Any,
    per_class: int,
    steps: int,
    method: str = "arpg",
    batch: int = 50,
    seed: int = 0,
    progress: bool = True,
    options: SamplingOptions | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every class decoded by ``method`` (:data:`arpg.sampling.METHODS`).

    ``options`` (default ``pipe.defaults``) gives guidance, temperature and the rest; the
    method sets steps and order.  Image seeds depend only on (class, batch index).
    Returns images (N, H, W, 3) uint8 and labels (N,).
    """
    n_cells = pipe.grid[0] * pipe.grid[1]
    opts = (options or pipe.defaults).replace(**method_kwargs(method, steps, n_cells))
    imgs, labels = [], []
    jobs = [(c, i) for c in range(pipe.num_classes) for i in range(0, per_class, batch)]
    for c, i in tqdm(jobs, desc=f"{method} {opts.steps} steps", disable=not progress):
        b = min(batch, per_class - i)
        out = pipe.generate([c] * b, opts, seed=seed + 1000 * c + i)
        imgs.append(out.images)
        labels.extend([c] * b)
    return np.concatenate(imgs), np.asarray(labels)


def generation_quality(pipe: Any, images: np.ndarray, labels: np.ndarray, ref_feats: np.ndarray) -> dict:
    """Judge accuracy on ``images`` and the Frechet distance of their features to ``ref_feats``."""
    preds, feats = judge_images(pipe.judge, images)
    return {"accuracy": float((preds == labels).mean()), "frechet": frechet_distance(feats, ref_feats)}


def reference_features(pipe: Any, n: int = 2000) -> np.ndarray:
    """Judge features of real images of the style the generator learnt."""
    imgs, _ = real_images(n, seed=digits.HELDOUT_SEED + 11)
    return judge_images(pipe.judge, imgs)[1]


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _settings(per_class: int, steps_list: Sequence[int], raster: bool, fd_per_class: int | None) -> list[tuple]:
    """(method, steps, images per class) of every row :func:`evaluate` decodes."""
    settings = [("arpg", s) for s in steps_list] + ([("raster", 256)] if raster else [])
    return [(m, s, per_class if (m, s) == ("arpg", 32) or fd_per_class is None else fd_per_class) for m, s in settings]


def estimate_seconds(
    pipe: Any,
    per_class: int = 100,
    steps_list: Sequence[int] = (4, 8, 16, 32, 64, 256),
    raster: bool = True,
    fd_per_class: int | None = None,
    batch: int = 50,
) -> float:
    """The seconds :func:`evaluate` will take with these arguments on this machine: its generate
    calls costed by :func:`arpg.measure.estimate.calibrate` (a second or so of short decodes), plus
    rendering, encoding, decoding and judging real images at costs per image timed on a few of them.
    An estimate: a busy machine changes it."""
    cost = calibrate(pipe)
    imgs, _ = real_images(PROBE_IMAGES)
    judge_images(pipe.judge, imgs[:2])  # warm-ups
    pipe.decode(pipe.encode(imgs[:2]))
    render = _timed(lambda: real_images(PROBE_IMAGES)) / PROBE_IMAGES
    codec = _timed(lambda: pipe.decode(pipe.encode(imgs))) / PROBE_IMAGES
    judge = _timed(lambda: judge_images(pipe.judge, imgs)) / PROBE_IMAGES
    total = FIXED_RENDERS * render + FIXED_CODEC * codec + FIXED_JUDGED * judge
    n_cells = pipe.grid[0] * pipe.grid[1]
    for method, steps, n in _settings(per_class, steps_list, raster, fd_per_class):
        kw = method_kwargs(method, steps, n_cells)
        calls = [batch] * (n // batch) + ([n % batch] if n % batch else [])
        total += pipe.num_classes * sum(cost.seconds(b, kw["steps"], kw["order"]) + b * judge for b in calls)
    return total


def evaluate(
    pipe: Any,
    per_class: int = 100,
    steps_list: Sequence[int] = (4, 8, 16, 32, 64, 256),
    raster: bool = True,
    fd_per_class: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """The quality table: tokenizer PSNR, judge accuracy, and for every step count the judge
    accuracy and Frechet distance of generated images (random order, ``pipe.defaults``
    otherwise), plus raster order one token per step.  Written as JSON to ``out`` if given."""
    if pipe.judge is None:
        raise ValueError("this model has no judge classifier; quality can only be measured on the shipped model")
    estimate = estimate_seconds(pipe, per_class, steps_list, raster, fd_per_class)
    line = f"eval: {duration_text(estimate)} on this machine (estimated from a few short timed decodes)"
    if progress:
        tqdm.write(line)  # with the progress bars that follow
    else:
        log.info(line)
    t0 = time.time()
    res: dict = {
        "model": pipe.name,
        "per_class": per_class,
        "cfg_scale": pipe.defaults.cfg_scale,
        "cfg_schedule": pipe.defaults.cfg_schedule,
    }
    # Held-out images of both data styles: the tokenizer and judge learnt "wide", the generator
    # learnt digits.GENERATOR_STYLE (and the Frechet reference is drawn from it).
    res["data_style"] = digits.GENERATOR_STYLE
    res["tokenizer_psnr_db"] = tokenizer_psnr(pipe)
    res["judge_accuracy"] = judge_accuracy(pipe)
    res["tokenizer_psnr_db_wide"] = tokenizer_psnr(pipe, style="wide")
    res["judge_accuracy_wide"] = judge_accuracy(pipe, style="wide")
    ref = reference_features(pipe)
    rows = []
    for method, steps, n in _settings(per_class, steps_list, raster, fd_per_class):
        t = time.time()
        imgs, labels = generated(pipe, n, steps, method, progress=progress)
        q = generation_quality(pipe, imgs, labels, ref)
        rows.append(
            {
                "method": method,
                "steps": steps if method == "arpg" else 256,
                "samples": len(imgs),
                **q,
                "seconds": time.time() - t,
            }
        )
    res["generation"] = rows
    res["seconds"] = time.time() - t0
    res["estimated_seconds"] = estimate
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(res, indent=2) + "\n")
    return res


def _order_row(
    pipe: Any, options: SamplingOptions, ref: np.ndarray, per_class: int, batch: int, seed: int, progress: bool
) -> dict:
    """One row of :func:`order_table`: every class decoded with ``options``, then judged."""
    imgs, labels, queries = [], [], 0
    t = time.perf_counter()
    for c in tqdm(range(pipe.num_classes), desc=f"{options.order} {options.steps} steps", disable=not progress):
        for i in range(0, per_class, batch):
            b = min(batch, per_class - i)
            out = pipe.generate([c] * b, options, seed=seed + 1000 * c + i)
            imgs.append(out.images)
            labels.extend([c] * b)
            queries += out.trace.queries * b
    secs = time.perf_counter() - t
    imgs = np.concatenate(imgs)
    q = generation_quality(pipe, imgs, np.asarray(labels), ref)
    return {
        "order": options.order,
        "steps": options.steps,
        "samples": len(imgs),
        **q,
        "seconds_per_image": secs / len(imgs),
        "queries_per_image": queries / len(imgs),
    }


def order_table(
    pipe: Any,
    orders: Sequence[str] = SAMPLER_ORDERS,
    steps_list: Sequence[int] = (32,),
    per_class: int = 20,
    batch: int = 20,
    seed: int = 0,
    progress: bool = True,
    options: SamplingOptions | None = None,
) -> dict:
    """Decoding orders compared on one model in one run: for every order and step count,
    judge accuracy, Frechet distance, seconds per image and queries per image.

    Orders other than "random" are fixed permutations, decoded with the usual schedule;
    "confidence" scores every remaining cell at each step and keeps the most confident
    (more queries per step).  ``options`` (default ``pipe.defaults``) gives the rest."""
    if pipe.judge is None:
        raise ValueError("order quality needs the shipped model's judge classifier")
    base = options or pipe.defaults
    ref = reference_features(pipe)
    rows = [
        _order_row(pipe, base.replace(steps=steps, order=order), ref, per_class, batch, seed, progress)
        for steps in steps_list
        for order in orders
    ]
    return {"model": pipe.name, "cfg_scale": base.cfg_scale, "per_class": per_class, "rows": rows}
