"""Zero-shot task quality of a model trained here on held-out images of its data set, read by its judge.

Held-out images (split ``HELDOUT_SEED +`` :data:`SPLIT` of the model's data set, :mod:`arpg.data.sets`; in
the style the generator learnt unless another is asked for), trial ``i`` with seed ``i``:

* ``inpaint``: half of the image (right or bottom, alternating) regenerated with the same class;
  success = the judge reads the class. ``band``: the mean colour shift (RGB distance of the mean
  difference, 0..441) between output and input on background pixels of the regenerated cells: the
  visible band of a paste whose colours do not match (``band_unmatched``: the same decode pasted as it
  was before colours were matched);
* ``edit``: the subject's bounding box (+4 px) regenerated as another class (class + 1..9, cycling);
  success = the judge reads the new class;
* ``stroke``: a stroke 4 px wide across the subject (horizontal, vertical, diagonal in turn), another
  class, for each edit region of :data:`arpg.masks.EDIT_REGIONS` ("painted" is the stroke as it is: the
  behaviour before regions were grown);
* ``resize``: both strategies at each scale; the judge reads the result (downscaled to 64 px) and the
  PSNR is taken against the bicubic upscale of the input.

The subject is what :func:`arpg.masks.foreground` finds: pixels far from the background colour (a digit's
glyph).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from .. import masks, tasks
from ..data.sets import dataset, images
from ..judge import judge_images
from ..options import SamplingOptions
from ..pipeline import Pipeline
from ..validation import check_choice
from .evaluate import data_styles
from .pixels import bicubic_upscale, psnr, resampled

PARTS = ("inpaint", "edit", "stroke", "resize")
STROKE_PX = 4
SPLIT = 21  # offset from the data set's HELDOUT_SEED: apart from the other benchmarks' splits
SCALES = (1.25, 1.5, 2.0)
REGIONS = ("painted", "dilate", "dilate:12", "shape", "box")


# -- masks and scores ---------------------------------------------------------------------------
def half_mask(i: int, size: int = 64) -> np.ndarray:
    """The bottom half (even ``i``) or the right half (odd ``i``) of a ``size`` square."""
    m = np.zeros((size, size), bool)
    if i % 2:
        m[:, size // 2 :] = True
    else:
        m[size // 2 :] = True
    return m


def subject_box_mask(img: np.ndarray, margin: int = 4) -> np.ndarray:
    """Pixels inside the bounding box of the subject (pixels far from the background colour), ``margin``
    px wider each side; the middle half of the image when there is none."""
    fg = masks.foreground(img)
    m = np.zeros(fg.shape, bool)
    ys, xs = np.nonzero(fg)
    if len(ys):
        m[max(0, ys.min() - margin) : ys.max() + margin + 1, max(0, xs.min() - margin) : xs.max() + margin + 1] = True
    else:
        m[16:48, 16:48] = True
    return m


def stroke_mask(img: np.ndarray, i: int, width: int = STROKE_PX) -> np.ndarray:
    """A straight stroke ``width`` px wide across the subject's bounding box, through its centre:
    horizontal, vertical or diagonal for ``i`` % 3 = 0, 1, 2."""
    ys, xs = np.nonzero(masks.foreground(img))
    y0, y1, x0, x1 = (ys.min(), ys.max(), xs.min(), xs.max()) if len(ys) else (16, 48, 16, 48)
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    line = [((x0, cy), (x1, cy)), ((cx, y0), (cx, y1)), ((x0, y0), (x1, y1))][i % 3]
    m = Image.new("L", (img.shape[1], img.shape[0]), 0)
    ImageDraw.Draw(m).line(line, fill=255, width=width)
    return np.asarray(m) > 127


def background_shift(out: np.ndarray, img: np.ndarray, cells: np.ndarray, factor: int) -> float:
    """The colour shift of the background inside the regenerated ``cells``: the length of the mean
    RGB difference between ``out`` and ``img`` over the pixels that are background in both."""
    region = np.kron(cells, np.ones((factor, factor), bool)) & ~masks.foreground(img) & ~masks.foreground(out)
    if not region.any():
        return 0.0
    return float(np.linalg.norm((out[region].astype(float) - img[region].astype(float)).mean(0)))


def pasted(img: np.ndarray, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``raw`` pasted into ``img`` as before colours were matched: the soft edge only."""
    w = masks.seam_weights(mask)[..., None]
    return (img * (1 - w) + raw * w + 0.5).astype(np.uint8)


def new_class(label: int, i: int, classes: int = 10) -> int:
    """Another class than ``label`` of ``classes``: + 1..classes-1, cycling with ``i``."""
    return (int(label) + 1 + i % (classes - 1)) % classes


def parse_region(spec: str) -> tuple[str, int]:
    """``"dilate:12"`` -> ("dilate", 12); a name alone takes :data:`arpg.masks.EDIT_MARGIN`."""
    how, _, margin = spec.partition(":")
    if how not in masks.EDIT_REGIONS or (margin and not margin.isdigit()):
        raise ValueError(f"regions: some of {','.join(masks.EDIT_REGIONS)}, each optionally :<margin px>; got {spec!r}")
    return how, int(margin) if margin else masks.EDIT_MARGIN


def judged(pipe: Pipeline, outs: list[np.ndarray], want: np.ndarray, old: np.ndarray | None = None) -> dict:
    """The judge's accuracy on ``outs`` against ``want`` (and how often it still reads ``old``)."""
    pred, _ = judge_images(pipe.judge, np.stack(outs))
    res = {"accuracy": float((pred == want).mean())}
    if old is not None:
        res["still_old_class"] = float((pred == old).mean())
    return res


# -- the parts ----------------------------------------------------------------------------------
def measure_inpaint(
    pipe: Pipeline, imgs: np.ndarray, labels: np.ndarray, options: SamplingOptions, progress: bool = True
) -> dict[str, Any]:
    """Same-class inpainting of half the image: accuracy and the colour band, with the colours matched
    (the output) and without (``band_unmatched``: the same decode pasted as before)."""
    outs, bands, before = [], [], []
    for i in tqdm(range(len(imgs)), desc="inpaint", disable=not progress):
        mask = half_mask(i, imgs.shape[1])
        r = tasks.inpaint(pipe, imgs[i], mask, int(labels[i]), options, seed=i)
        outs.append(r.image)
        cells = (~r.known).numpy()
        bands.append(background_shift(r.image, imgs[i], cells, pipe.factor))
        before.append(background_shift(pasted(imgs[i], r.raw, mask), imgs[i], cells, pipe.factor))
    return {
        **judged(pipe, outs, labels),
        "band": float(np.mean(bands)),
        "band_max": float(np.max(bands)),
        "band_unmatched": float(np.mean(before)),
        "band_unmatched_max": float(np.max(before)),
        "mask": "right or bottom half",
    }


def measure_edit(
    pipe: Pipeline, imgs: np.ndarray, labels: np.ndarray, options: SamplingOptions, progress: bool = True
) -> dict[str, Any]:
    """Editing the subject's bounding box (+4 px) to another class."""
    outs, targets = [], []
    for i in tqdm(range(len(imgs)), desc="edit (box)", disable=not progress):
        targets.append(new_class(labels[i], i, pipe.num_classes))
        outs.append(tasks.inpaint(pipe, imgs[i], subject_box_mask(imgs[i]), targets[-1], options, seed=i).image)
    return {**judged(pipe, outs, np.asarray(targets), labels), "mask": "glyph bounding box + 4 px"}


def measure_stroke(
    pipe: Pipeline,
    imgs: np.ndarray,
    labels: np.ndarray,
    options: SamplingOptions,
    regions: Sequence[str] = REGIONS,
    progress: bool = True,
) -> dict[str, Any]:
    """A 4 px stroke across the subject, another class, for each edit region (``name[:margin px]``)."""
    res: dict[str, Any] = {"stroke_px": STROKE_PX}
    targets = np.asarray([new_class(labels[i], i, pipe.num_classes) for i in range(len(imgs))])
    for how, margin in (parse_region(spec) for spec in regions):
        outs, cells = [], []
        for i in tqdm(range(len(imgs)), desc=f"stroke edit, {how} {margin} px", disable=not progress):
            region = masks.edit_region(imgs[i], stroke_mask(imgs[i], i), how, margin)
            r = tasks.inpaint(pipe, imgs[i], region, int(targets[i]), options, seed=i)
            outs.append(r.image)
            cells.append(int((~r.known).sum()))
        key = how if how == "painted" else f"{how} {margin} px"
        res[key] = {**judged(pipe, outs, targets, labels), "cells_regenerated": float(np.mean(cells))}
    return res


def measure_resize(
    pipe: Pipeline,
    imgs: np.ndarray,
    labels: np.ndarray,
    options: SamplingOptions,
    scales: Sequence[float] = SCALES,
    progress: bool = True,
) -> dict[str, Any]:
    """Both resize strategies at each scale: judge accuracy (the result brought down to the input's size
    through Lanczos) and PSNR against the bicubic upscale of the input."""
    res: dict[str, Any] = {"trials": len(imgs)}
    side = imgs.shape[1]
    for strategy in tasks.RESIZE_STRATEGIES:
        for scale in scales:
            outs, ps = [], []
            for i in tqdm(range(len(imgs)), desc=f"resize {strategy} x{scale:g}", disable=not progress):
                r = tasks.resize(pipe, imgs[i], int(labels[i]), options, scale=scale, strategy=strategy, seed=i)
                ref = bicubic_upscale(imgs[i][None], *r.image.shape[:2])
                ps.append(psnr(r.image[None], ref)[0])
                outs.append(resampled(r.image[None], side, side)[0])
            rows, cols = r.tokens.shape
            res[f"{strategy} x{scale:g}"] = {
                "strategy": strategy,
                "scale": scale,
                "grid": f"{rows}x{cols}",
                **judged(pipe, outs, labels),
                "psnr_vs_bicubic_db": float(np.mean(ps)),
            }
    return res


# -- the run ------------------------------------------------------------------------------------
def heldout(pipe: Pipeline, n: int, style: str | None = None) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The first ``n`` held-out images of the model's data set (split :data:`SPLIT`) in ``style`` (default:
    the generator's, where the set has styles): (images, labels, the style)."""
    data = getattr(pipe, "data", None)
    if data is None:
        raise ValueError(f"the task benchmark needs a model trained here (its data set gives the inputs); {pipe.name}")
    style = style if style is not None else data_styles(data)[0]
    imgs, labels = images(data, range(n), dataset(data).HELDOUT_SEED + SPLIT, style=style)
    return imgs, labels, style


def measure_task_quality(
    pipe: Pipeline,
    parts: Sequence[str] = PARTS,
    trials: int = 100,
    resize_trials: int = 50,
    scales: Sequence[float] = SCALES,
    regions: Sequence[str] = REGIONS,
    options: SamplingOptions | None = None,
    style: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Every part asked for (:data:`PARTS`; see the module's text): ``trials`` held-out images for inpaint,
    edit and stroke, the first ``resize_trials`` of them for each resize setting; options: default
    ``pipe.defaults``. A JSON-able dict of the model, data set, style and sampling, and a section per part."""
    if pipe.judge is None:
        raise ValueError("the tasks are judged by the model's judge classifier; this model has none")
    parts = [check_choice("part", p, PARTS) for p in parts]
    for spec in regions:
        parse_region(spec)  # a bad region is refused before anything is measured
    opts = options or pipe.defaults
    imgs, labels, style = heldout(pipe, max(trials, resize_trials), style)
    x, y = imgs[:trials], labels[:trials]
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "inpaint": lambda: measure_inpaint(pipe, x, y, opts, progress),
        "edit": lambda: measure_edit(pipe, x, y, opts, progress),
        "stroke": lambda: measure_stroke(pipe, x, y, opts, regions, progress),
        "resize": lambda: measure_resize(pipe, imgs[:resize_trials], labels[:resize_trials], opts, scales, progress),
    }
    res: dict[str, Any] = {"model": pipe.name, "data": pipe.data, "data_style": style, "steps": opts.steps}
    res.update(cfg_scale=opts.cfg_scale, cfg_schedule=opts.cfg_schedule)
    for part in parts:
        t0 = time.time()
        res[part] = {**runs[part](), "trials": resize_trials if part == "resize" else trials}
        res[part]["seconds"] = round(time.time() - t0, 1)
    return res


def task_quality_report(pipe: Pipeline, old: Mapping[str, Any] | None, command: str, **kw: Any) -> dict[str, Any]:
    """A results file of :func:`measure_task_quality` (``kw``) with the ``command`` that ran it, the parts
    it did not measure kept from ``old`` (the file as it was)."""
    kept = {k: v for k, v in (old or {}).items() if k in PARTS}
    return {**kept, "command": command, **measure_task_quality(pipe, **kw)}
