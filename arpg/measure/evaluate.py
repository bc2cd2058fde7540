"""Quality measurements of a model of this project: tokenizer PSNR and sharpness, judge accuracy, and
class accuracy + Frechet distance (in judge features) of generated images, per step count or per
decoding order, beside their Frechet distance in texture features and their sharpness (which see the
blur a judge does not, :mod:`arpg.measure.texture`, :mod:`arpg.measure.sharpness`).  The tables are
printed by :mod:`arpg.measure.report`.

Every measurement is drawn from the data set the model learnt (``pipe.data``, see
:data:`arpg.data.sets.DATASETS`; digits for a model that does not say): held-out images of the
split ``HELDOUT_SEED`` (+7 for the judge's accuracy, +11 for the Frechet reference) of that data
set.  Digits come in styles (the tokenizer and judge learnt "wide", the generator
``digits.GENERATOR_STYLE``); other data sets have none, so every ``style`` argument is None for them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..data import digits
from ..data.sets import DATASETS, dataset
from ..judge import frechet_distance, judge_images
from ..model import ARPG
from ..options import SAMPLER_ORDERS, SamplingOptions
from ..pipeline import Pipeline
from ..sampling import method_kwargs
from .estimate import calibrate, duration_text
from .sharpness import relative_sharpness, sharpness_ratio
from .texture import texture_features

log = logging.getLogger(__name__)
PROBE_IMAGES = 32  # real images rendered, encoded, decoded and judged to time each of those per image
#: Real images rendered, encoded and judged by :func:`evaluate` outside generation, per data style: the
#: tokenizer PSNR (1,000), the judge's accuracy (2,000) and the Frechet reference (2,000, once).
PSNR_IMAGES, JUDGE_IMAGES, REFERENCE_IMAGES = 1_000, 2_000, 2_000
#: Offsets from the data set's ``HELDOUT_SEED`` of the splits of the judge's accuracy and the Frechet reference.
JUDGE_SPLIT, REFERENCE_SPLIT = 7, 11


def data_name(pipe: Pipeline) -> str:
    """The data set ``pipe`` is measured on: its ``data`` (a model of this project), else "digits"."""
    data = getattr(pipe, "data", None)
    return data if isinstance(data, str) and data in DATASETS else "digits"


def style_for(data: str, style: str | None) -> str | None:
    """``style`` for a data set that has styles (digits), None for one that has none."""
    return style if getattr(dataset(data), "STYLES", None) is not None else None


def data_styles(data: str) -> list[str | None]:
    """The styles :func:`evaluate` measures the tokenizer and judge on: the generator's first (and the
    Frechet reference's), then "wide" (what digits' tokenizer and judge learnt); [None] without styles."""
    return [digits.GENERATOR_STYLE, "wide"] if style_for(data, "wide") else [None]


def real_images(
    n: int, seed: int | None = None, style: str | None = digits.GENERATOR_STYLE, data: str = "digits"
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` held-out images (N, 64, 64, 3) uint8 of data set ``data`` and their labels (N,).

    seed: the split (default: the data set's ``HELDOUT_SEED``); style: digits' style (ignored, None,
    for a data set without styles)."""
    module = dataset(data)
    style = style_for(data, style)
    kw = {} if style is None else {"style": style}
    return module.sample(range(n), seed=module.HELDOUT_SEED if seed is None else seed, **kw)


def tokenizer_quality(
    pipe: Pipeline, n: int = PSNR_IMAGES, batch: int = 100, style: str | None = digits.GENERATOR_STYLE
) -> dict[str, float]:
    """Encode -> decode on ``n`` held-out images of the pipeline's data set: the mean PSNR (dB,
    ``psnr_db``) and the detail the reconstructions keep (``sharpness``, :func:`sharpness_ratio`)."""
    imgs, _ = real_images(n, style=style, data=data_name(pipe))
    recs = np.concatenate([pipe.decode(pipe.encode(imgs[i : i + batch])) for i in range(0, n, batch)])
    mse = ((recs.astype(np.float64) - imgs.astype(np.float64)) ** 2).reshape(n, -1).mean(1)
    psnr = float(np.mean(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))))
    return {"psnr_db": psnr, "sharpness": sharpness_ratio(recs, imgs)}


def judge_accuracy(pipe: Pipeline, n: int = JUDGE_IMAGES, style: str | None = digits.GENERATOR_STYLE) -> float:
    """Accuracy of the pipeline's judge on ``n`` held-out real images of its data set."""
    data = data_name(pipe)
    imgs, labels = real_images(n, seed=dataset(data).HELDOUT_SEED + JUDGE_SPLIT, style=style, data=data)
    preds, _ = judge_images(pipe.judge, imgs)
    return float((preds == labels).mean())


def generated(
    pipe: Pipeline,
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


def generation_quality(pipe: Pipeline, images: np.ndarray, labels: np.ndarray, ref_feats: np.ndarray) -> dict:
    """Judge accuracy on ``images`` and the Frechet distance of their features to ``ref_feats``."""
    preds, feats = judge_images(pipe.judge, images)
    return {"accuracy": float((preds == labels).mean()), "frechet": frechet_distance(feats, ref_feats)}


def texture_quality(images: np.ndarray, reference: np.ndarray, ref_texture: np.ndarray) -> dict:
    """What the judge's features miss: the Frechet distance of the :func:`texture_features` of ``images``
    to ``ref_texture`` (those of the real ``reference`` images), and their sharpness against them."""
    return {
        "texture_frechet": frechet_distance(texture_features(images), ref_texture),
        "sharpness": relative_sharpness(images, reference),
    }


def reference_images(pipe: Pipeline, n: int = REFERENCE_IMAGES) -> np.ndarray:
    """Real images of the data (and, for digits, the style) the generator learnt: the Frechet reference."""
    data = data_name(pipe)
    return real_images(n, seed=dataset(data).HELDOUT_SEED + REFERENCE_SPLIT, data=data)[0]


def reference_features(pipe: Pipeline, n: int = REFERENCE_IMAGES) -> np.ndarray:
    """Judge features of the :func:`reference_images`."""
    return judge_images(pipe.judge, reference_images(pipe, n))[1]


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _settings(per_class: int, steps_list: Sequence[int], raster: bool, fd_per_class: int | None) -> list[tuple]:
    """(method, steps, images per class) of every row :func:`evaluate` decodes."""
    settings = [("arpg", s) for s in steps_list] + ([("raster", 256)] if raster else [])
    return [(m, s, per_class if (m, s) == ("arpg", 32) or fd_per_class is None else fd_per_class) for m, s in settings]


def _time_line(pipe: Pipeline, estimate: float | None) -> str:
    """What :func:`evaluate` says first: how long it will take (an ARPG model's estimate), or why not."""
    if estimate is None:
        return f"eval: {pipe.name} decodes one token a step in raster order (no time estimate for its family)"
    return f"eval: {duration_text(estimate)} on this machine (estimated from a few short timed decodes)"


def eval_rows(
    pipe: Pipeline, per_class: int, steps_list: Sequence[int], raster: bool, fd_per_class: int | None
) -> list[tuple]:
    """(method, steps, images per class) of the rows :func:`evaluate` decodes: :func:`_settings` for an ARPG
    model; for another family (a raster model) its own decode alone, one token a step in raster order."""
    if isinstance(pipe.model, ARPG):
        return _settings(per_class, steps_list, raster, fd_per_class)
    return [("raster", pipe.grid[0] * pipe.grid[1], per_class)]


def estimate_seconds(
    pipe: Pipeline,
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
    data = data_name(pipe)
    imgs, _ = real_images(PROBE_IMAGES, data=data)
    judge_images(pipe.judge, imgs[:2])  # warm-ups
    pipe.decode(pipe.encode(imgs[:2]))
    render = _timed(lambda: real_images(PROBE_IMAGES, data=data)) / PROBE_IMAGES
    codec = _timed(lambda: pipe.decode(pipe.encode(imgs))) / PROBE_IMAGES
    judge = _timed(lambda: judge_images(pipe.judge, imgs)) / PROBE_IMAGES
    judge += _timed(lambda: texture_features(imgs)) / PROBE_IMAGES  # every judged image's texture too
    styles = len(data_styles(data))  # digits: 8,000 renders, 2,000 encoded and decoded, 6,000 judged
    renders = styles * (PSNR_IMAGES + JUDGE_IMAGES) + REFERENCE_IMAGES
    judged = styles * JUDGE_IMAGES + REFERENCE_IMAGES
    total = renders * render + styles * PSNR_IMAGES * codec + judged * judge
    n_cells = pipe.grid[0] * pipe.grid[1]
    for method, steps, n in eval_rows(pipe, per_class, steps_list, raster, fd_per_class):
        kw = method_kwargs(method, steps, n_cells)
        calls = [batch] * (n // batch) + ([n % batch] if n % batch else [])
        total += pipe.num_classes * sum(cost.seconds(b, kw["steps"], kw["order"]) + b * judge for b in calls)
    return total


def real_quality(pipe: Pipeline) -> dict:
    """The tokenizer's PSNR and sharpness and the judge's accuracy on held-out real images of the
    pipeline's data set.

    Digits: in the generator's style (``data_style``) and in "wide" (keys ending in ``_wide``), the
    style the tokenizer and judge learnt; a data set without styles: one set (``data_style`` None)."""
    data = data_name(pipe)
    styles = data_styles(data)
    res: dict = {"data": data, "data_style": styles[0]}
    for style in styles:
        suffix = "" if style == styles[0] else f"_{style}"
        tok = tokenizer_quality(pipe, style=style)
        res[f"tokenizer_psnr_db{suffix}"] = tok["psnr_db"]
        res[f"tokenizer_sharpness{suffix}"] = tok["sharpness"]
        res[f"judge_accuracy{suffix}"] = judge_accuracy(pipe, style=style)
    return res


def evaluate(
    pipe: Pipeline,
    per_class: int = 100,
    steps_list: Sequence[int] = (4, 8, 16, 32, 64, 256),
    raster: bool = True,
    fd_per_class: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """The quality table: tokenizer PSNR and sharpness, judge accuracy (:func:`real_quality`), and for every
    step count the judge accuracy, Frechet distance, texture Frechet distance and sharpness (against the
    reference images, :func:`texture_quality`) of generated images (random order,
    ``pipe.defaults`` otherwise), plus raster order one token per step, all on the pipeline's data
    set (:func:`data_name`).  Written as JSON to ``out`` if given."""
    if pipe.judge is None:
        raise ValueError("this model has no judge classifier; quality can only be measured on the shipped model")
    arpg = isinstance(pipe.model, ARPG)
    estimate = estimate_seconds(pipe, per_class, steps_list, raster, fd_per_class) if arpg else None
    line = _time_line(pipe, estimate)
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
    res.update(real_quality(pipe))
    ref = reference_features(pipe)
    ref_images = reference_images(pipe, len(ref))
    ref_texture = texture_features(ref_images)
    rows = []
    for method, steps, n in eval_rows(pipe, per_class, steps_list, raster, fd_per_class):
        t = time.time()
        imgs, labels = generated(pipe, n, steps, method, progress=progress)
        q = {**generation_quality(pipe, imgs, labels, ref), **texture_quality(imgs, ref_images, ref_texture)}
        rows.append(
            {
                "method": method,
                "steps": steps if method == "arpg" else pipe.grid[0] * pipe.grid[1],
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
    pipe: Pipeline, options: SamplingOptions, ref: np.ndarray, per_class: int, batch: int, seed: int, progress: bool
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
        "batch": min(batch, per_class),
        **q,
        "seconds_per_image": secs / len(imgs),
        "queries_per_image": queries / len(imgs),
    }


def order_table(
    pipe: Pipeline,
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

    Orders other than "random" are fixed permutations, decoded with the usual schedule; an
    adaptive order (:data:`arpg.orders.ADAPTIVE_ORDERS`) picks each step's cells from the model's
    outputs, and may query every remaining cell at each step (more queries per step).
    ``options`` (default ``pipe.defaults``) gives the rest."""
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
