"""The zero-shot canvas tasks of a model trained here, windowed against whole-canvas decoding, judged.

A model trained here learnt a data set of :mod:`arpg.data` (``pipe.data``), whose held-out images are
rendered on demand (:func:`arpg.data.sets.images`, in the style the generator learnt where the set has
styles). Every part (:data:`PARTS`) draws its own held-out images (split ``HELDOUT_SEED + splits[part]``,
by default :data:`SPLITS`, apart from the +0/+7/+11 of :mod:`arpg.measure.evaluate`); trial ``i`` starts
from image ``i`` with seed ``i``, the same for both decodings (``"windowed"`` and ``"whole"``,
:data:`arpg.windows.DECODINGS`):

* ``generation`` (the yardstick): plain 64x64 generation of the held-out images' classes, against them;
* ``outpaint``: a 64x64 image extended by 8 token cells to the right; judged: its right-most 64x64 window;
* ``panorama``: the 64x64 image grown to 4x its width (64x256); judged: every 64x64 window at a stride of
  32 px (``all_windows``: the share of panoramas whose every window is read as the class);
* ``resize``: x2 (64 -> 128 px) with each strategy of :data:`arpg.tasks.RESIZE_STRATEGIES`; judged: the
  result brought down to 64 px (``downscale``: the mean of each 2x2 box, or Lanczos, :mod:`.pixels`).

Where the data set renders the task's whole canvas (a procedural landscape has a true render at every
width and resolution; a digit only on square canvases), the output is also compared with that truth:
``real_accuracy`` (the judge on the same windows of the truth), the Frechet distance of the judge features
(:func:`~arpg.judge.frechet_distance`) of as many made as true windows (a panorama's ``frechet_new``: only
the windows right of the input; a resize's: its 64x64 windows at a stride of 32 px), a resize's PSNR
against the true 128 px render beside bicubic's, and what the judge does not see (:func:`detail`):
``sharpness``, the detail of the new part (outpaint, panorama: right of the input) or of the whole result
(resize, beside bicubic's) against the truth of the same pixels (:func:`~arpg.measure.sharpness.sharpness_ratio`),
and the seam scores (:mod:`arpg.measure.seams`) where the input meets the new part (``seam``, ``seam_peak``)
and, for a panorama, where its later rounds meet (``seam_rounds``, ``seam_rounds_peak``). Every row also
has the forward passes of one trial (a panorama: all its rounds). A Frechet distance of n samples is biased
upwards by roughly 1/n, so a row's ``frechet_ratio`` divides by the yardstick's distance at the same n
(``frechet_at``, :func:`add_ratios`). The tables are in :mod:`arpg.measure.canvas_table`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import tasks
from ..data.sets import CanvasSpec, dataset, images
from ..judge import frechet_distance, judge_images
from ..options import SamplingOptions
from ..pipeline import Pipeline
from ..validation import check_choice, check_int
from ..windows import DECODINGS
from .evaluate import data_styles
from .pixels import DOWNSCALES, STRIDE, WINDOW, bicubic_upscale, downscale, psnr, window_starts, windows_of
from .probes import machine_info, machine_string
from .seams import seam_scores
from .sharpness import sharpness_ratio

log = logging.getLogger(__name__)

PARTS = ("generation", "outpaint", "panorama", "resize")
#: Offsets from the data set's ``HELDOUT_SEED`` of each part's held-out images.
SPLITS = {"generation": 101, "outpaint": 103, "panorama": 107, "resize": 109}
#: Trials of each task part (how long a run of them takes: docs/benchmarks/README.md, "How long runs take").
#: The yardstick generates as many images as the largest task compares windows (360).
DEFAULT_TRIALS = {"outpaint": 200, "panorama": 50, "resize": 40}
OUTPAINT_CELLS, PANORAMA_TIMES, RESIZE_SCALE = 8, 4, 2
#: Each task's targets (README): the least share judged as the class, the largest Frechet ratio to plain generation.
TARGETS = {
    "outpaint": (0.9, 1.5),
    "panorama": (0.9, 2.0),
    "resize lattice": (0.9, None),
    "resize reencode": (0.9, None),
}
GENERATION_BATCH = 20


# -- held-out images and canvases ---------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where a run's held-out images come from: data set ``data`` of :mod:`arpg.data` in ``style`` (None
    for a set without styles), part ``p`` from split ``HELDOUT_SEED + splits[p]``."""

    data: str
    style: str | None = None
    splits: Mapping[str, int] = None  # type: ignore[assignment]  # None: SPLITS

    def __post_init__(self) -> None:
        dataset(self.data)  # a known data set
        splits = dict(SPLITS if self.splits is None else self.splits)
        if set(splits) != set(PARTS):
            raise ValueError(f"splits: one offset for each of {', '.join(PARTS)}; got {sorted(splits)}")
        object.__setattr__(self, "splits", splits)

    @property
    def side(self) -> int:  # the side of the data set's square images: the inputs
        return int(dataset(self.data).IMAGE_SIZE)

    def seed(self, part: str) -> int:
        return int(dataset(self.data).HELDOUT_SEED) + self.splits[check_choice("part", part, PARTS)]

    def images(self, part: str, n: int, canvas: CanvasSpec = CanvasSpec()) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` held-out images of ``part`` on ``canvas``: ((n, H, W, 3) uint8, (n,) class ids)."""
        return images(self.data, range(n), self.seed(part), canvas, self.style)

    def renders(self, canvas: CanvasSpec) -> bool:
        """Whether the data set renders ``canvas`` (a true render to compare a task's output with)."""
        try:
            self.images("generation", 1, canvas)
        except ValueError:  # e.g. a set of square images on a wide canvas
            return False
        return True


def source_of(pipe: Pipeline, splits: Mapping[str, int] | int | None = None, style: str | None = None) -> Source:
    """The :class:`Source` of a model trained here: its data set (``pipe.data``), the style its generator
    learnt unless ``style`` names another, ``splits`` (one offset for every part, or one per part)."""
    data = getattr(pipe, "data", None)
    if data is None:
        raise ValueError(f"the canvas tasks need a model trained here (its data set renders the inputs); {pipe.name}")
    style = style if style is not None else data_styles(data)[0]
    if isinstance(splits, int):
        splits = dict.fromkeys(PARTS, splits)
    return Source(data, style, splits)


def canvas_of(part: str, side: int = 64, factor: int = 4) -> CanvasSpec:
    """The canvas of a task part's output (``side``: the input's, ``factor``: the tokenizer's pixels per token
    side): what its true render is drawn on."""
    if part == "outpaint":
        return CanvasSpec(side, side + OUTPAINT_CELLS * factor)
    if part == "panorama":
        return CanvasSpec(side, side * PANORAMA_TIMES)
    return CanvasSpec(side * RESIZE_SCALE, side * RESIZE_SCALE, float(RESIZE_SCALE))


def compared_windows(part: str, trials: int) -> list[int]:
    """The numbers of windows of ``trials`` trials of a task part that enter its Frechet distances
    (a panorama's: all its windows, and those right of the input only)."""
    c = canvas_of(part)
    if part == "outpaint":
        return [trials]
    if part == "panorama":
        return [trials * len(window_starts(c.height, c.width)), trials * len(new_windows(c.height, c.width))]
    return [trials * len(window_starts(c.height, c.width))]


def new_windows(height: int, width: int, side: int = 64) -> list[int]:
    """The windows of a panorama of ``height`` x ``width`` that lie right of its ``side`` px input: their indices."""
    return [j for j, (_, x) in enumerate(window_starts(height, width)) if x >= side]


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


def parse_trials(text: str | None) -> dict[str, int]:
    """``"20"`` (every task part) or ``"outpaint=200,panorama=50,generation=400"`` -> {part: trials}."""
    if not text or not text.strip():
        return {}
    text = text.strip()
    if text.isdigit():
        return dict.fromkeys(DEFAULT_TRIALS, int(text))
    out = {}
    for item in text.split(","):
        part, _, n = item.partition("=")
        if part.strip() not in PARTS or not n.strip().isdigit():
            raise ValueError(f"trials: a number, or part=number pairs with parts {', '.join(PARTS)}; got {item!r}")
        out[part.strip()] = int(n)
    return out


# -- judging ----------------------------------------------------------------------------------
class Judged:
    """Windows judged (``made``), and beside them their true counterparts (``real``; None: no truth):
    which were read as the class, and judge features."""

    def __init__(self, pipe: Pipeline, made: np.ndarray, real: np.ndarray | None, labels: np.ndarray) -> None:
        pred, self.feats = judge_images(pipe.judge, made)
        self.right = pred == labels
        self.real_right = self.real_feats = None
        if real is not None:
            real_pred, self.real_feats = judge_images(pipe.judge, real)
            self.real_right = real_pred == labels

    def frechet(self, k: int | None = None) -> float | None:
        """The Frechet distance of the first ``k`` (default all) made and real windows (None: no truth)."""
        if self.real_feats is None:
            return None
        return round(frechet_distance(self.feats[:k], self.real_feats[:k]), 4)

    def row(self, per_image: int = 1) -> dict[str, Any]:
        """The share read as the class (made and real), the Frechet distance and its sample size.
        ``per_image`` > 1 (windows of one image each): also ``all_windows``, the share of images whose
        every made window is read right."""
        row: dict[str, Any] = {"accuracy": round(float(self.right.mean()), 4)}
        if self.real_right is not None:
            row["real_accuracy"] = round(float(self.real_right.mean()), 4)
        row["windows_judged"] = len(self.right)
        if self.real_feats is not None:
            row.update(frechet=self.frechet(), frechet_samples=len(self.feats))
        if per_image > 1:
            row["all_windows"] = round(float(self.right.reshape(-1, per_image).all(1).mean()), 4)
        return row


def measure_generation(
    pipe: Pipeline, source: Source, n: int, options: SamplingOptions, sizes: Sequence[int] = (), progress: bool = True
) -> dict[str, Any]:
    """The yardstick: ``n`` images generated for the classes of the generation part's held-out images
    (:data:`GENERATION_BATCH` a call, call ``b`` with seed ``b``) against those images; ``frechet_at[k]``:
    the distance of the first k of each, for ``n`` and every k of ``sizes``; ``sharpness``: their detail
    against the real images' (the same classes, not the same images)."""
    t0 = time.time()
    real, labels = source.images("generation", n)
    made, passes = [], 0
    for b, i in enumerate(tqdm(range(0, n, GENERATION_BATCH), desc="generation", disable=not progress)):
        out = pipe.generate(labels[i : i + GENERATION_BATCH].tolist(), options, seed=b)
        made.append(out.images)
        passes = out.trace.forward_passes
    made = np.concatenate(made)
    judged = Judged(pipe, made, real, labels)
    at = {str(k): judged.frechet(k) for k in sorted({k for k in sizes if 2 <= k <= n} | {n})}
    secs = round(time.time() - t0, 1)
    sharp = round(sharpness_ratio(made, real), 3)  # not the same images: the detail of the data set's
    row = {"samples": n, **judged.row(), "sharpness": sharp, "frechet_at": at}
    return {**row, "forward_passes": passes, "seconds": secs}


# -- the tasks ----------------------------------------------------------------------------------
def run_trial(
    pipe: Pipeline, task: str, image: np.ndarray, label: int, seed: int, options: SamplingOptions, decoding: str
) -> tuple[np.ndarray, int]:
    """One trial of ``task`` ("outpaint", "panorama", "resize lattice", "resize reencode") from a 64x64
    image: (the output image (H, W, 3) uint8, the forward passes of all its decodes)."""
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


def score(
    pipe: Pipeline, task: str, made: np.ndarray, truth: np.ndarray | None, labels: np.ndarray, how: str = "box"
) -> dict[str, Any]:
    """A task's outputs (N, H, W, 3), against the true renders of the same canvases where there are any
    (``truth``, else None): see the module's text. ``how``: a resize's :data:`~.pixels.DOWNSCALES`."""
    if task == "outpaint":
        return Judged(pipe, made[:, :, -WINDOW:], None if truth is None else truth[:, :, -WINDOW:], labels).row()
    k = len(window_starts(*made.shape[1:3]))
    if task.startswith("resize"):
        small = None if truth is None else downscale(truth, RESIZE_SCALE, how)
        row = Judged(pipe, downscale(made, RESIZE_SCALE, how), small, labels).row()
        if truth is None:
            return row
        windows = Judged(pipe, windows_of(made), windows_of(truth), np.repeat(labels, k))
        row.update(frechet=windows.frechet(), frechet_samples=len(windows.feats), psnr_db=_psnr(made, truth))
        return row
    windows = Judged(pipe, windows_of(made), None if truth is None else windows_of(truth), np.repeat(labels, k))
    row = windows.row(per_image=k)
    if truth is not None:  # also the windows right of the input, all generated
        new = (np.arange(len(labels))[:, None] * k + np.asarray(new_windows(*made.shape[1:3]))).reshape(-1)
        fd_new = round(frechet_distance(windows.feats[new], windows.real_feats[new]), 4)
        row.update(frechet_new=fd_new, frechet_new_samples=len(new))
    return row


def _psnr(made: np.ndarray, truth: np.ndarray) -> float:  # the mean over the images, rounded
    return round(float(psnr(made, truth).mean()), 3)


def _columns_from(width: int, height: int, x: int) -> np.ndarray:
    """The (height, width) bool mask of the columns from ``x`` on: the new part right of a join at ``x``."""
    new = np.zeros((height, width), dtype=bool)
    new[:, x:] = True
    return new


def detail(pipe: Pipeline, task: str, made: np.ndarray, truth: np.ndarray, side: int = 64) -> dict[str, Any]:
    """The measures that see blur and seams of a task's outputs (N, H, W, 3) against the true renders:
    see the module's text (``side``: the input's). A panorama's rounds each add half the model's grid width."""
    if task.startswith("resize"):
        return {"sharpness": round(sharpness_ratio(made, truth), 3)}
    h, w = truth.shape[1], truth.shape[2]
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
    up = bicubic_upscale(inputs, truth.shape[1], truth.shape[2])
    return {"psnr_db_bicubic": _psnr(up, truth), "sharpness_bicubic": round(sharpness_ratio(up, truth), 3)}


@dataclass(frozen=True)
class Run:
    """What every trial of a run shares: the model, where its inputs come from, the sampling options, how a
    resize is brought down to be judged (:data:`~.pixels.DOWNSCALES`) and whether to show progress bars."""

    pipe: Pipeline
    source: Source
    options: SamplingOptions
    how: str = "box"
    progress: bool = True


def measure_task(
    run: Run, task: str, decoding: str, inputs: np.ndarray, truth: np.ndarray | None, labels: np.ndarray
) -> dict[str, Any]:
    """Every trial of ``task`` with ``decoding`` (trial i: the 64x64 image ``inputs[i]``, seed i), scored by
    :func:`score` (and :func:`detail` where there are true renders ``truth``)."""
    t0, made, passes = time.time(), [], []
    for i in tqdm(range(len(labels)), desc=f"{task} {decoding}", disable=not run.progress):
        image, n = run_trial(run.pipe, task, inputs[i], int(labels[i]), i, run.options, decoding)
        made.append(image)
        passes.append(n)
    secs = time.time() - t0
    made = np.stack(made)
    row = score(run.pipe, task, made, truth, labels, run.how)
    if truth is not None:
        row.update(detail(run.pipe, task, made, truth, run.source.side))
    row.update(
        forward_passes=float(np.mean(passes)), seconds=round(secs, 1), seconds_per_trial=round(secs / len(made), 3)
    )
    log.info("%s %s: %s", task, decoding, row)
    return row


def winner(rows: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The decoding read as the class more often; among equals the lower Frechet distance (where measured),
    then the fewer forward passes (None: one decoding)."""
    if len(rows) < 2:
        return None

    def key(d: str) -> tuple[float, float, float]:
        fd = rows[d].get("frechet")
        return rows[d]["accuracy"], 0.0 if fd is None else -fd, -rows[d]["forward_passes"]

    return max(rows, key=key)


def measure_part(
    run: Run, part: str, trials: int, decodings: Sequence[str], strategies: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The rows of one task part, by task ("outpaint", "panorama" or "resize <strategy>") and decoding,
    with the ``winner`` of each task."""
    inputs, labels = run.source.images(part, trials)
    canvas = canvas_of(part, run.source.side, run.pipe.factor)
    truth = run.source.images(part, trials, canvas)[0] if run.source.renders(canvas) else None
    names = [f"resize {s}" for s in strategies] if part == "resize" else [part]
    out = {}
    for task in names:
        rows = {d: measure_task(run, task, d, inputs, truth, labels) for d in decodings}
        if part == "resize" and truth is not None:
            base = bicubic(inputs, truth)
            for row in rows.values():
                row.update(base)
        out[task] = {**rows, "winner": winner(rows)}
    return out


# -- the run ----------------------------------------------------------------------------------
def settings(run: Run, trials: Mapping[str, int], decodings: Sequence[str], strategies: Sequence[str]) -> dict:
    """What a run measured with: data set, sampling, the trials of each part measured, held-out splits,
    canvases (and which have a true render), the resize's downscale, decodings, targets."""
    opts, src = run.options, run.source
    return {
        "data": src.data,
        "style": src.style,
        "steps": opts.steps,
        "schedule": opts.schedule,
        "cfg_scale": opts.cfg_scale,
        "cfg_schedule": opts.cfg_schedule,
        "temperature": opts.temperature,
        "trials": dict(trials),
        "splits": {p: src.seed(p) for p in PARTS},
        "window": WINDOW,
        "stride": STRIDE,
        "outpaint_cells": OUTPAINT_CELLS,
        "panorama_times": PANORAMA_TIMES,
        "resize_scale": RESIZE_SCALE,
        "downscale": run.how,
        "true_renders": {p: src.renders(canvas_of(p, src.side, run.pipe.factor)) for p in PARTS[1:]},
        "decodings": list(decodings),
        "strategies": list(strategies),
        "trained_sizes": [list(g) for g in run.pipe.model.cfg.trained_sizes],
        "targets": {t: {"accuracy": a, "frechet_ratio": r} for t, (a, r) in TARGETS.items()},
    }


def add_ratios(res: dict[str, Any], yardstick: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every task row's ``frechet_ratio``: its Frechet distance over the yardstick's at the same sample
    size (``res["generation"]``, else ``yardstick``, e.g. one kept from an earlier run; None when it has no
    distance at that size, or the row none), and ``meets_target`` (:data:`TARGETS`). Returns ``res``."""
    at = (res.get("generation") or yardstick or {}).get("frechet_at", {})
    for task, rows in res.get("tasks", {}).items():
        least, most = TARGETS.get(task, (None, None))
        for row in (r for d, r in rows.items() if d in DECODINGS):
            base = at.get(str(row.get("frechet_samples")))
            row["yardstick_frechet"] = base
            row["frechet_ratio"] = round(row["frechet"] / base, 3) if base and row.get("frechet") is not None else None
            if "frechet_new" in row:
                new_base = at.get(str(row["frechet_new_samples"]))
                row["frechet_new_ratio"] = round(row["frechet_new"] / new_base, 3) if new_base else None
            ratio_ok = most is None or (row["frechet_ratio"] is not None and row["frechet_ratio"] <= most)
            row["meets_target"] = bool(least is not None and row["accuracy"] >= least and ratio_ok)
    return res


def _checked(parts: Sequence[str], decodings: Sequence[str], strategies: Sequence[str], how: str) -> tuple:
    parts = [check_choice("part", p, PARTS) for p in parts]
    decodings = [check_choice("decoding", d, DECODINGS) for d in decodings]
    strategies = [check_choice("strategy", s, tasks.RESIZE_STRATEGIES) for s in strategies]
    if not parts or not decodings or not strategies:
        raise ValueError("need at least one part, one decoding and one resize strategy")
    return parts, decodings, strategies, check_choice("downscale", how, DOWNSCALES)


def measure_canvas_tasks(
    pipe: Pipeline,
    parts: Sequence[str] = PARTS,
    trials: Mapping[str, int] | None = None,
    decodings: Sequence[str] = DECODINGS,
    strategies: Sequence[str] = tasks.RESIZE_STRATEGIES,
    options: SamplingOptions | None = None,
    yardstick: Mapping[str, Any] | None = None,
    progress: bool = True,
    source: Source | None = None,
    how: str = "box",
) -> dict[str, Any]:
    """The canvas tasks of a model trained here (see the module's text): a JSON-able dict of ``model``,
    ``settings``, ``generation`` (the yardstick, when measured) and ``tasks`` (by task and decoding, each
    with ``winner``). parts: some of :data:`PARTS`; trials: per part (see :func:`resolve_trials`); options:
    default ``pipe.defaults``; yardstick: an earlier run's ``generation`` for the ratios when this run does
    not measure it; source: the held-out images (default :func:`source_of` the model); how: a resize's
    downscale before it is judged; progress: tqdm bars."""
    if pipe.judge is None:
        raise ValueError("the canvas tasks are judged by the model's judge classifier; this model has none")
    parts, decodings, strategies, how = _checked(parts, decodings, strategies, how)
    n = resolve_trials(trials)
    run = Run(pipe, source or source_of(pipe), options or pipe.defaults, how, progress)
    measured = {p: n[p] for p in parts}
    res: dict[str, Any] = {"model": pipe.name, "settings": settings(run, measured, decodings, strategies)}
    res["tasks"] = {}
    if "generation" in parts:
        sizes = [k for p in DEFAULT_TRIALS for k in compared_windows(p, n[p])]
        res["generation"] = measure_generation(pipe, run.source, n["generation"], run.options, sizes, progress)
    for part in (p for p in PARTS[1:] if p in parts):
        res["tasks"].update(measure_part(run, part, n[part], decodings, strategies))
    return add_ratios(res, yardstick)


def merge_runs(old: Mapping[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the parts it did not measure kept from ``old`` (a run of this module on the same model;
    anything else: ``new`` alone); ``earlier_commands`` lists the commands of the parts kept."""
    if not old or old.get("model") != new["model"] or "settings" not in old:
        return new
    merged = {**new, "tasks": {**old.get("tasks", {}), **new["tasks"]}}
    merged["earlier_commands"] = [*old.get("earlier_commands", []), old.get("command")]
    if "generation" not in new and "generation" in old:
        merged["generation"] = old["generation"]
    merged["settings"] = {**new["settings"], "trials": {**old["settings"]["trials"], **new["settings"]["trials"]}}
    return add_ratios(merged)


def canvas_report(pipe: Pipeline, old: Mapping[str, Any] | None, command: str, **kw: Any) -> dict[str, Any]:
    """A results file of :func:`measure_canvas_tasks` (``kw``): the ``command`` that ran it, the machine, and
    the parts not measured kept from ``old`` (the file as it was, when of the same model: :func:`merge_runs`;
    its yardstick also gives the ratios when this run does not measure one)."""
    same = old if old and old.get("model") == pipe.name and "settings" in old else None
    res = measure_canvas_tasks(pipe, yardstick=(same or {}).get("generation"), **kw)
    info = machine_info(pipe.device)
    return merge_runs(same, {"command": command, "machine": machine_string(info), "machine_info": info, **res})
