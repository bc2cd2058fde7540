"""The zero-shot canvas tasks of a scenes model, measured against real renders of the same canvas (issue 17).

The scenes are procedural (:mod:`arpg.data.scenes`): a held-out scene has a true render on every canvas
and at every resolution, so a task's output is compared with the truth of its own canvas. Every part
(:data:`PARTS`) draws its own held-out scenes (split ``scenes.HELDOUT_SEED + SPLITS[part]``, apart from
the +0/+7/+11 of :mod:`arpg.measure.evaluate`); trial ``i`` starts from scene ``i`` with seed ``i``, the
same for both decodings (``"windowed"`` and ``"whole"``, :data:`arpg.windows.DECODINGS`):

* ``generation`` (the yardstick): plain 64x64 generation of the held-out scenes' classes, against their
  real 64x64 renders;
* ``outpaint``: a real 64x64 scene extended by 8 token cells (32 px) to the right; its right-most 64x64
  window against the right-most window of the scene's real 64x96 render;
* ``panorama``: the 64x64 scene grown to 4x its width (64x256); every 64x64 window at a stride of 32 px
  against the same windows of the real 64x256 render (the first is the input itself, the second half of
  it: ``frechet_new`` compares only the windows right of the input);
* ``resize``: x2 (64 -> 128 px) with each strategy of :data:`arpg.tasks.RESIZE_STRATEGIES`; the result
  box-downscaled to 64 px is judged, its PSNR taken against the real 128 px render (scale 2), and its
  64x64 windows (stride 32) compared with the same windows of that render.

Each row says how often the judge reads the scene's class (``accuracy``; ``real_accuracy``: the same
windows of the real renders), the Frechet distance of the judge features (:func:`~arpg.judge.frechet_distance`)
of as many made as real windows, and the forward passes of one trial. What the judge
does not see (:func:`detail`): ``sharpness``, the detail of the new part (outpaint, panorama: right of
the input) or of the whole result (resize, beside bicubic's) against the true render of the same pixels
(:func:`~arpg.measure.sharpness.sharpness_ratio`), and the seam scores (:mod:`arpg.measure.seams`) where
the input meets the new part (``seam``, ``seam_peak``) and, for a panorama, where its later rounds meet
(``seam_rounds``, ``seam_rounds_peak``). A Frechet
distance of n samples is biased upwards by roughly 1/n, so a row's ``frechet_ratio`` divides by the
yardstick's distance at the same n (``frechet_at``, :func:`add_ratios`). The tables are in
:mod:`arpg.measure.scenes_table`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .. import tasks
from ..data import scenes
from ..judge import frechet_distance, judge_images
from ..options import SamplingOptions
from ..validation import check_choice, check_int
from ..windows import DECODINGS
from .evaluate import data_name
from .seams import seam_scores
from .sharpness import sharpness_ratio

log = logging.getLogger(__name__)

PARTS = ("generation", "outpaint", "panorama", "resize")
#: Offsets from ``scenes.HELDOUT_SEED`` of each part's held-out scenes.
SPLITS = {"generation": 101, "outpaint": 103, "panorama": 107, "resize": 109}
#: Trials of each task part, sized for about 15-20 minutes on one CPU thread for the scenes model (dim 320,
#: 5+5 layers, 32 steps; timed with the other core busy: an outpaint ~0.45 s, a panorama 4.5-7.7 s windowed
#: and 2.7-3.7 s whole, a resize 1.9-2.8 s windowed and ~0.9 s whole per strategy, a generated image
#: 0.16-0.29 s). The yardstick generates as many images as the largest task compares windows (360).
DEFAULT_TRIALS = {"outpaint": 200, "panorama": 50, "resize": 40}
WINDOW, STRIDE = 64, 32  # the judged windows (px)
OUTPAINT_CELLS, PANORAMA_TIMES, RESIZE_SCALE = 8, 4, 2
#: Issue 17's targets: the least share judged as the class, the largest Frechet ratio to plain generation.
TARGETS = {
    "outpaint": (0.9, 1.5),
    "panorama": (0.9, 2.0),
    "resize lattice": (0.9, None),
    "resize reencode": (0.9, None),
}
GENERATION_BATCH = 20


# -- pixels ------------------------------------------------------------------------------------
def window_starts(height: int, width: int, size: int = WINDOW, stride: int = STRIDE) -> list[tuple[int, int]]:
    """(top, left) of every ``size`` square window of a ``height`` x ``width`` image, at ``stride`` px
    across and down, in raster order."""
    return [(y, x) for y in range(0, height - size + 1, stride) for x in range(0, width - size + 1, stride)]


def windows_of(images: np.ndarray, size: int = WINDOW, stride: int = STRIDE) -> np.ndarray:
    """The windows of :func:`window_starts` of (N, H, W, 3) images, image by image: (N * k, size, size, 3)."""
    starts = window_starts(images.shape[1], images.shape[2], size, stride)
    wins = [images[:, y : y + size, x : x + size] for y, x in starts]
    return np.stack(wins, axis=1).reshape(-1, size, size, images.shape[-1])


def box_downscale(images: np.ndarray, factor: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H/factor, W/factor, 3) uint8, each pixel the mean of its factor x factor box."""
    n, h, w, c = images.shape
    boxes = images.reshape(n, h // factor, factor, w // factor, factor, c).astype(np.float64)
    return np.round(boxes.mean(axis=(2, 4))).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB) of uint8 images a and b, (N, H, W, 3) each: (N,)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))


# -- scenes and sizes -----------------------------------------------------------------------
def heldout(part: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` held-out scenes of ``part``: ((n,) class ids, (n,) scene seeds)."""
    return scenes.scene_of(np.arange(n), scenes.HELDOUT_SEED + SPLITS[check_choice("part", part, PARTS)])


def canvas_of(part: str, factor: int = 4) -> tuple[int, int, float]:
    """(height, width, scale) of the true render a task part's output is compared with (``factor``:
    the tokenizer's pixels per token side, 4 for the scenes tokenizer)."""
    side = scenes.IMAGE_SIZE
    if part == "outpaint":
        return side, side + OUTPAINT_CELLS * factor, 1.0
    if part == "panorama":
        return side, side * PANORAMA_TIMES, 1.0
    return side * RESIZE_SCALE, side * RESIZE_SCALE, float(RESIZE_SCALE)


def compared_windows(part: str, trials: int) -> list[int]:
    """The numbers of windows of ``trials`` trials of a task part that enter its Frechet distances
    (a panorama's: all its windows, and those right of the input only)."""
    h, w, _ = canvas_of(part)
    if part == "outpaint":
        return [trials]
    if part == "panorama":
        return [trials * len(window_starts(h, w)), trials * len(_new_windows(h, w))]
    return [trials * len(window_starts(h, w))]


def _new_windows(height: int, width: int) -> list[int]:
    """The windows of a panorama of ``height`` x ``width`` that lie right of its 64x64 input: their indices."""
    return [j for j, (_, x) in enumerate(window_starts(height, width)) if x >= scenes.IMAGE_SIZE]


def resolve_trials(trials: Mapping[str, int] | None = None) -> dict[str, int]:
    """:data:`DEFAULT_TRIALS` with ``trials`` on top; "generation" defaults to the most windows a task compares."""
    given = dict(trials or {})
    unknown = set(given) - set(PARTS)
    if unknown:
        raise ValueError(f"trials: parts are {', '.join(PARTS)}; got {', '.join(sorted(unknown))}")
    out = {p: check_int(f"{p} trials", given.get(p, DEFAULT_TRIALS[p]), 2, 100_000) for p in DEFAULT_TRIALS}
    most = max(max(compared_windows(p, n)) for p, n in out.items())
    out["generation"] = check_int("generation trials", given.get("generation", most), 2, 1_000_000)
    return out


# -- judging ----------------------------------------------------------------------------------
class Judged:
    """Windows judged against their real counterparts: which were read as the class, and judge features."""

    def __init__(self, pipe: Any, made: np.ndarray, real: np.ndarray, labels: np.ndarray) -> None:
        pred, self.feats = judge_images(pipe.judge, made)
        real_pred, self.real_feats = judge_images(pipe.judge, real)
        self.right, self.real_right = pred == labels, real_pred == labels

    def frechet(self, k: int | None = None) -> float:
        """The Frechet distance of the first ``k`` (default all) made and real windows."""
        return round(frechet_distance(self.feats[:k], self.real_feats[:k]), 4)

    def row(self, per_image: int = 1) -> dict[str, Any]:
        """The share read as the class (made and real), the Frechet distance and its sample size.
        ``per_image`` > 1 (windows of one image each): also ``all_windows``, the share of images whose
        every made window is read right."""
        row = {
            "accuracy": round(float(self.right.mean()), 4),
            "real_accuracy": round(float(self.real_right.mean()), 4),
            "windows_judged": len(self.right),
            "frechet": self.frechet(),
            "frechet_samples": len(self.feats),
        }
        if per_image > 1:
            row["all_windows"] = round(float(self.right.reshape(-1, per_image).all(1).mean()), 4)
        return row


def measure_generation(
    pipe: Any, n: int, options: SamplingOptions, sizes: Sequence[int] = (), progress: bool = True
) -> dict[str, Any]:
    """The yardstick: ``n`` images generated for the classes of the generation part's held-out scenes
    (:data:`GENERATION_BATCH` a call, call ``b`` with seed ``b``) against those scenes' real 64x64
    renders; ``frechet_at[k]``: the distance of the first k of each, for ``n`` and every k of ``sizes``;
    ``sharpness``: their detail against the renders' (the same classes, not the same scenes)."""
    t0 = time.time()
    labels, seeds = heldout("generation", n)
    made, passes = [], 0
    for b, i in enumerate(tqdm(range(0, n, GENERATION_BATCH), desc="generation", disable=not progress)):
        out = pipe.generate(labels[i : i + GENERATION_BATCH].tolist(), options, seed=b)
        made.append(out.images)
        passes = out.trace.forward_passes
    made, real = np.concatenate(made), scenes.render_batch(labels, seeds)
    judged = Judged(pipe, made, real, labels)
    at = {str(k): judged.frechet(k) for k in sorted({k for k in sizes if 2 <= k <= n} | {n})}
    secs = round(time.time() - t0, 1)
    sharp = round(sharpness_ratio(made, real), 3)  # not the same scenes: the detail of the data set's
    row = {"samples": n, **judged.row(), "sharpness": sharp, "frechet_at": at}
    return {**row, "forward_passes": passes, "seconds": secs}


# -- the tasks ----------------------------------------------------------------------------------
def run_trial(
    pipe: Any, task: str, image: np.ndarray, label: int, seed: int, options: SamplingOptions, decoding: str
) -> tuple[np.ndarray, int]:
    """One trial of ``task`` ("outpaint", "panorama", "resize lattice", "resize reencode") from a 64x64
    scene: (the output image (H, W, 3) uint8, the forward passes of all its decodes)."""
    if task == "outpaint":
        r = tasks.outpaint(pipe, image, label, options, right=OUTPAINT_CELLS, seed=seed, decoding=decoding)
        return r.image, r.trace.forward_passes
    if task == "panorama":
        passes: list[int] = []
        r = tasks.panorama(
            pipe,
            image,
            label,
            options,
            times=PANORAMA_TIMES,
            side="right",
            seed=seed,
            decoding=decoding,
            on_round=lambda res: passes.append(res.trace.forward_passes),
        )
        return r.image, sum(passes)
    strategy = task.split()[-1]
    r = tasks.resize(pipe, image, label, options, scale=RESIZE_SCALE, strategy=strategy, seed=seed, decoding=decoding)
    return r.image, r.trace.forward_passes


def score(pipe: Any, task: str, made: np.ndarray, truth: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """A task's outputs (N, H, W, 3) against the true renders of the same canvases: see the module's text."""
    if task == "outpaint":
        return Judged(pipe, made[:, :, -WINDOW:], truth[:, :, -WINDOW:], labels).row()
    k = len(window_starts(*truth.shape[1:3]))
    windows = Judged(pipe, windows_of(made), windows_of(truth), np.repeat(labels, k))
    if task == "panorama":  # also the windows right of the input, all generated
        new = (np.arange(len(labels))[:, None] * k + np.asarray(_new_windows(*truth.shape[1:3]))).reshape(-1)
        fd_new = round(frechet_distance(windows.feats[new], windows.real_feats[new]), 4)
        return {**windows.row(per_image=k), "frechet_new": fd_new, "frechet_new_samples": len(new)}
    small = Judged(pipe, box_downscale(made, RESIZE_SCALE), box_downscale(truth, RESIZE_SCALE), labels).row()
    return {**small, "frechet": windows.frechet(), "frechet_samples": len(windows.feats), "psnr_db": _psnr(made, truth)}


def _psnr(made: np.ndarray, truth: np.ndarray) -> float:
    return round(float(psnr(made, truth).mean()), 3)


def _columns_from(width: int, height: int, x: int) -> np.ndarray:
    """The (height, width) bool mask of the columns from ``x`` on: the new part right of a join at ``x``."""
    new = np.zeros((height, width), dtype=bool)
    new[:, x:] = True
    return new


def detail(pipe: Any, task: str, made: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """The measures that see blur and seams of a task's outputs (N, H, W, 3) against the true renders:
    see the module's text. A panorama's rounds each add half the model's grid width."""
    if task.startswith("resize"):
        return {"sharpness": round(sharpness_ratio(made, truth), 3)}
    h, w, side = truth.shape[1], truth.shape[2], scenes.IMAGE_SIZE
    row = {"sharpness": round(sharpness_ratio(made[:, :, side:], truth[:, :, side:]), 3)}
    row.update(seam_scores(made, truth, _columns_from(w, h, side)))
    if task == "panorama":
        step = max(1, pipe.grid[0] // 2) * pipe.factor
        rounds = [_columns_from(w, h, x) for x in range(side + step, w, step)]
        if rounds:
            later = seam_scores(made, truth, rounds)
            row.update(seam_rounds=later["seam"], seam_rounds_peak=later["seam_peak"])
    return row


def bicubic(inputs: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """A resize's baseline: the PSNR (dB) and sharpness of the inputs' bicubic upscale to the truth's size."""
    size = (truth.shape[2], truth.shape[1])
    up = np.stack([np.asarray(Image.fromarray(x).resize(size, Image.BICUBIC)) for x in inputs])
    return {"psnr_db_bicubic": _psnr(up, truth), "sharpness_bicubic": round(sharpness_ratio(up, truth), 3)}


def measure_task(
    pipe: Any,
    task: str,
    decoding: str,
    inputs: np.ndarray,
    truth: np.ndarray,
    labels: np.ndarray,
    options: SamplingOptions,
    progress: bool = True,
) -> dict[str, Any]:
    """Every trial of ``task`` with ``decoding`` (trial i: 64x64 scene ``inputs[i]``, seed i), scored
    against the true renders ``truth`` by :func:`score`."""
    t0, made, passes = time.time(), [], []
    for i in tqdm(range(len(labels)), desc=f"{task} {decoding}", disable=not progress):
        image, n = run_trial(pipe, task, inputs[i], int(labels[i]), i, options, decoding)
        made.append(image)
        passes.append(n)
    secs = time.time() - t0
    made = np.stack(made)
    row = {**score(pipe, task, made, truth, labels), **detail(pipe, task, made, truth)}
    row.update(
        forward_passes=float(np.mean(passes)), seconds=round(secs, 1), seconds_per_trial=round(secs / len(made), 3)
    )
    log.info("%s %s: %s", task, decoding, row)
    return row


def winner(rows: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The decoding read as the class more often; the lower Frechet distance among equals (None: one decoding)."""
    if len(rows) < 2:
        return None
    return max(rows, key=lambda d: (rows[d]["accuracy"], -rows[d]["frechet"]))


def measure_part(
    pipe: Any,
    part: str,
    trials: int,
    options: SamplingOptions,
    decodings: Sequence[str] = DECODINGS,
    strategies: Sequence[str] = tasks.RESIZE_STRATEGIES,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """The rows of one task part, by task ("outpaint", "panorama" or "resize <strategy>") and decoding,
    with the ``winner`` of each task."""
    labels, seeds = heldout(part, trials)
    h, w, scale = canvas_of(part, pipe.factor)
    truth = scenes.render_batch(labels, seeds, h, w, scale)
    side = scenes.IMAGE_SIZE
    inputs = scenes.render_batch(labels, seeds) if part == "resize" else truth[:, :side, :side]  # scale 1
    names = [f"resize {s}" for s in strategies] if part == "resize" else [part]
    out = {}
    for task in names:
        rows = {d: measure_task(pipe, task, d, inputs, truth, labels, options, progress) for d in decodings}
        if part == "resize":
            base = bicubic(inputs, truth)
            for row in rows.values():
                row.update(base)
        out[task] = {**rows, "winner": winner(rows)}
    return out


# -- the run ----------------------------------------------------------------------------------
def settings(
    pipe: Any, trials: Mapping[str, int], options: SamplingOptions, decodings: Sequence[str], strategies: Sequence[str]
) -> dict[str, Any]:
    """What a run measured with: sampling, the trials of each part measured, held-out splits, canvases, targets."""
    return {
        "data": "scenes",
        "steps": options.steps,
        "schedule": options.schedule,
        "cfg_scale": options.cfg_scale,
        "cfg_schedule": options.cfg_schedule,
        "temperature": options.temperature,
        "trials": dict(trials),
        "splits": {p: scenes.HELDOUT_SEED + off for p, off in SPLITS.items()},
        "window": WINDOW,
        "stride": STRIDE,
        "outpaint_cells": OUTPAINT_CELLS,
        "panorama_times": PANORAMA_TIMES,
        "resize_scale": RESIZE_SCALE,
        "decodings": list(decodings),
        "strategies": list(strategies),
        "trained_sizes": [list(g) for g in pipe.model.cfg.trained_sizes],
        "targets": {t: {"accuracy": a, "frechet_ratio": r} for t, (a, r) in TARGETS.items()},
    }


def add_ratios(res: dict[str, Any], yardstick: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every task row's ``frechet_ratio``: its Frechet distance over the yardstick's at the same sample
    size (``res["generation"]``, else ``yardstick``, e.g. one kept from an earlier run; None when it has no
    distance at that size), and ``meets_target`` (issue 17's :data:`TARGETS`). Returns ``res``."""
    at = (res.get("generation") or yardstick or {}).get("frechet_at", {})
    for task, rows in res.get("tasks", {}).items():
        least, most = TARGETS.get(task, (None, None))
        for row in (r for d, r in rows.items() if d in DECODINGS):
            base = at.get(str(row["frechet_samples"]))
            row["yardstick_frechet"] = base
            row["frechet_ratio"] = round(row["frechet"] / base, 3) if base else None
            if "frechet_new" in row:
                new_base = at.get(str(row["frechet_new_samples"]))
                row["frechet_new_ratio"] = round(row["frechet_new"] / new_base, 3) if new_base else None
            ratio_ok = most is None or (row["frechet_ratio"] is not None and row["frechet_ratio"] <= most)
            row["meets_target"] = bool(least is not None and row["accuracy"] >= least and ratio_ok)
    return res


def measure_scenes_tasks(
    pipe: Any,
    parts: Sequence[str] = PARTS,
    trials: Mapping[str, int] | None = None,
    decodings: Sequence[str] = DECODINGS,
    strategies: Sequence[str] = tasks.RESIZE_STRATEGIES,
    options: SamplingOptions | None = None,
    yardstick: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The canvas tasks of a scenes model against real renders (see the module's text): a JSON-able dict
    of ``model``, ``settings``, ``generation`` (the yardstick, when measured) and ``tasks`` (by task and
    decoding, each with ``winner``). parts: some of :data:`PARTS`; trials: per part (see
    :func:`resolve_trials`); options: default ``pipe.defaults``; yardstick: an earlier run's
    ``generation`` for the ratios when this run does not measure it; progress: tqdm bars."""
    if pipe.judge is None:
        raise ValueError("the scenes tasks are judged by the model's judge classifier; this model has none")
    if data_name(pipe) != "scenes":
        raise ValueError(f"the scenes tasks need a model of the scenes data set; {pipe.name} learnt {data_name(pipe)}")
    parts = [check_choice("part", p, PARTS) for p in parts]
    decodings = [check_choice("decoding", d, DECODINGS) for d in decodings]
    strategies = [check_choice("strategy", s, tasks.RESIZE_STRATEGIES) for s in strategies]
    if not parts or not decodings or not strategies:
        raise ValueError("need at least one part, one decoding and one resize strategy")
    n, opts = resolve_trials(trials), options or pipe.defaults
    measured = {p: n[p] for p in parts}
    res: dict[str, Any] = {"model": pipe.name, "settings": settings(pipe, measured, opts, decodings, strategies)}
    res["tasks"] = {}
    if "generation" in parts:
        sizes = [k for p in DEFAULT_TRIALS for k in compared_windows(p, n[p])]
        res["generation"] = measure_generation(pipe, n["generation"], opts, sizes, progress)
    for part in (p for p in PARTS[1:] if p in parts):
        res["tasks"].update(measure_part(pipe, part, n[part], opts, decodings, strategies, progress))
    return add_ratios(res, yardstick)
