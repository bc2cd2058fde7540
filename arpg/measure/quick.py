"""The app's Measure button: a small measurement of one model, its time estimated before it runs.

* **Speed**: every step count and batch size (and raster order, one token per step) timed by
  :func:`arpg.measure.bench.run_bench` (one warm-up pass, no matmul-peak probe).
* **Quality**, when the model has a judge: judge accuracy and Frechet distance (judge features
  of the sample against real held-out images) of ``per_class`` images per class for every step
  count in random order (ARPG's own), for raster order, and for every decoding order chosen.
  Small samples make the Frechet distance biased upwards: compare rows of one run, not runs of
  different sample sizes.
* **Orders** compared without a judge get their seconds and queries per image only (one call of
  the largest batch each).

:func:`estimate` says how long :func:`run_quick` will take on this machine
(:mod:`arpg.measure.estimate` calibrates the model's cost once); :func:`prepare` does the
one-off work (calibration, the real images' judge features) so the estimate can be shown first.
:func:`check_plan` refuses a plan estimated over :func:`max_seconds` (``ARPG_MAX_MEASURE_S``), naming
what to measure less of. A run stops at its next unit of work once ``check_cancel`` raises: a unit
is one timed call of the speed part, or one forward pass of a quality or orders sample.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..options import SAMPLER_ORDERS
from ..pipeline import Pipeline
from ..validation import check_choice, check_int, check_number
from . import bench, evaluate
from .estimate import CallCost, calibrate, duration_text

Progress = Callable[[float, str], None]
Check = Callable[[], None]  # raises to stop a run

QUALITY_BATCH = 50  # images per call of a quality sample
DEFAULT_PER_CLASS = 4
MAX_PER_CLASS = 20
WARMUP = 1
REFERENCE_IMAGES = 2000  # real images whose judge features the sample is compared with
#: The longest Measure run a server starts, in seconds estimated on its own machine: a few times the
#: dearest request the cost ceiling admits and the page's default plan (the measurements behind it are
#: in docs/reliability.md).
MAX_SECONDS = 40.0
MAX_SECONDS_ENV = "ARPG_MAX_MEASURE_S"
#: The page's default plan (Trade-offs tab), and how far above its estimate the ceiling always is:
#: the estimate comes from the model's timed passes on this machine at that moment, so on a slow
#: or busy machine the default plan is still accepted.
DEFAULT_BATCHES = (4,)
DEFAULT_STEPS = (8, 16, 32)
DEFAULT_ROOM = 1.5
_lock = threading.Lock()
_references: dict[int, tuple[weakref.ref, np.ndarray]] = {}  # id(pipeline) -> (the pipeline, features)


@dataclass(frozen=True)
class QuickPlan:
    """What one Measure run does (checked by :meth:`checked`)."""

    steps: tuple[int, ...]
    batches: tuple[int, ...]
    raster: bool = True
    repeats: int = 1
    orders: tuple[str, ...] = ()  # decoding orders compared with "random" (ARPG's own, always measured)
    per_class: int = DEFAULT_PER_CLASS  # quality sample: images per class (models with a judge)

    @classmethod
    def checked(
        cls,
        cells: int,
        steps: Iterable[Any],
        batches: Iterable[Any],
        raster: bool = True,
        repeats: Any = 1,
        orders: Iterable[Any] = (),
        per_class: Any = DEFAULT_PER_CLASS,
    ) -> QuickPlan:
        """A plan for a grid of ``cells`` cells; ``ValueError`` naming the argument when one is wrong."""
        steps_t = tuple(sorted({check_int("steps", s, 1, cells) for s in steps or ()}))
        batches_t = tuple(sorted({check_int("batch size", b, 1, 64) for b in batches or ()}))
        if not steps_t or not batches_t:
            raise ValueError("pick at least one batch size and one step count to measure")
        chosen = [check_choice("order", o, SAMPLER_ORDERS) for o in orders or ()]
        return cls(
            steps_t,
            batches_t,
            bool(raster),
            check_int("repeats", repeats, 1, 10),
            tuple(dict.fromkeys(o for o in chosen if o != "random")),
            check_int("images per class", per_class, 1, MAX_PER_CLASS),
        )

    @property
    def methods(self) -> tuple[str, ...]:
        """The :data:`arpg.sampling.METHODS` timed."""
        return ("arpg", "raster") if self.raster else ("arpg",)

    @property
    def all_orders(self) -> tuple[str, ...]:
        """Random order first, then the orders chosen."""
        return ("random", *self.orders)


@dataclass(frozen=True)
class Job:
    """One piece of a run: what it decodes, in which order, how many images per call, how often."""

    kind: str  # "timing", "quality" or "order"
    order: str
    steps: int
    calls: tuple[int, ...]  # images of each call


def jobs(pipe: Pipeline, plan: QuickPlan) -> list[Job]:
    """Every decode of a run, in the order :func:`run_quick` runs them."""
    cells = pipe.grid[0] * pipe.grid[1]
    passes = WARMUP + plan.repeats
    out = [Job("timing", "random", s, (b,) * passes) for b in plan.batches for s in plan.steps]
    out += [Job("timing", "raster", cells, (b,) * passes) for b in plan.batches if plan.raster]
    if getattr(pipe, "judge", None) is not None:
        n = plan.per_class * pipe.num_classes
        sample = tuple(min(QUALITY_BATCH, n - i) for i in range(0, n, QUALITY_BATCH))
        out += [Job("quality", o, s, sample) for o in plan.all_orders for s in plan.steps]
        out += [Job("quality", "raster", cells, sample)] if plan.raster else []
    elif plan.orders:
        out += [Job("order", o, s, (plan.batches[-1],)) for o in plan.all_orders for s in plan.steps]
    return out


def job_seconds(cost: CallCost, job: Job) -> float:
    """Estimated seconds of ``job`` (its decodes; judging a sample is cheap beside them)."""
    return sum(cost.seconds(b, job.steps, job.order) for b in job.calls)


@dataclass(frozen=True)
class Estimate:
    """How long a run will take: seconds for speed and for quality (and orders)."""

    timing_s: float
    quality_s: float
    samples: int  # images per quality row (0: no judge)

    @property
    def total_s(self) -> float:
        """Seconds of the whole run."""
        return self.timing_s + self.quality_s

    def text(self) -> str:
        """One line for the page, e.g. "Estimated time: about 45 s on this machine (...)"."""
        parts = [f"speed {duration_text(self.timing_s)}"]
        if self.quality_s:
            what = f"quality of {self.samples} images per row" if self.samples else "orders"
            parts.append(f"{what} {duration_text(self.quality_s)}")
        return f"Estimated time: **{duration_text(self.total_s)}** on this machine ({', '.join(parts)})."


def estimate(pipe: Pipeline, plan: QuickPlan) -> Estimate:
    """How long :func:`run_quick` of ``plan`` takes on this machine; the first call for a model
    does its one-off work (:func:`prepare`), so the run itself has none left."""
    prepare(pipe)
    cost = calibrate(pipe)
    all_jobs = jobs(pipe, plan)
    timing = sum(job_seconds(cost, j) for j in all_jobs if j.kind == "timing")
    rest = sum(job_seconds(cost, j) for j in all_jobs if j.kind != "timing")
    judged = getattr(pipe, "judge", None) is not None
    return Estimate(timing, rest, plan.per_class * pipe.num_classes if judged else 0)


def default_plan(pipe: Pipeline) -> QuickPlan:
    """What the page measures unless told otherwise: batch 4, 8/16/32 steps (those the grid has),
    raster order, :data:`DEFAULT_PER_CLASS` images per class for quality."""
    cells = pipe.grid[0] * pipe.grid[1]
    steps = [s for s in DEFAULT_STEPS if s <= cells] or [cells]
    return QuickPlan.checked(cells, steps, DEFAULT_BATCHES)


def max_seconds(pipe: Pipeline | None = None) -> float:
    """The ceiling of a run's estimate: ``$ARPG_MAX_MEASURE_S`` when set, else :data:`MAX_SECONDS`,
    raised for ``pipe`` to :data:`DEFAULT_ROOM` times the estimate of its :func:`default_plan`."""
    text = os.environ.get(MAX_SECONDS_ENV, "").strip()
    if text:
        return check_number(MAX_SECONDS_ENV, text, 0.0, lo_open=True)
    if pipe is None:
        return MAX_SECONDS
    return max(MAX_SECONDS, DEFAULT_ROOM * estimate(pipe, default_plan(pipe)).total_s)


def _lighter(pipe: Pipeline, plan: QuickPlan, ceiling: float) -> str:
    """What to measure less of: of each part that can shrink, the smallest change that alone brings
    ``plan`` under ``ceiling``; when none does, the smallest plan of every part, together."""

    def images(k: int) -> str:
        return f"at most {k} image{'s' if k > 1 else ''} per class"

    kinds = [
        [("no raster order", replace(plan, raster=False))] if plan.raster else [],
        [("1 repeat", replace(plan, repeats=1))] if plan.repeats > 1 else [],
        [("no other decoding orders", replace(plan, orders=()))] if plan.orders else [],
        [
            (f"batch sizes up to {plan.batches[n - 1]}", replace(plan, batches=plan.batches[:n]))
            for n in range(len(plan.batches) - 1, 0, -1)
        ],
        [
            (f"step counts up to {plan.steps[n - 1]}", replace(plan, steps=plan.steps[:n]))
            for n in range(len(plan.steps) - 1, 0, -1)
        ],
        [(images(k), replace(plan, per_class=k)) for k in range(plan.per_class - 1, 0, -1)]
        if getattr(pipe, "judge", None) is not None
        else [],
    ]
    tips = [next((text for text, p in kind if estimate(pipe, p).total_s <= ceiling), None) for kind in kinds]
    if any(tips):
        return "try " + ", or ".join(t for t in tips if t)
    return "try all of " + ", ".join(kind[-1][0] for kind in kinds if kind)


def check_plan(pipe: Pipeline, plan: QuickPlan, ceiling: float | None = None) -> Estimate:
    """:func:`estimate` of ``plan``, refused with ``ValueError`` over ``ceiling`` seconds (default
    :func:`max_seconds` of ``pipe``); the message names what to measure less of."""
    est = estimate(pipe, plan)
    ceiling = max_seconds(pipe) if ceiling is None else check_number("ceiling", ceiling, 0.0, lo_open=True)
    if est.total_s > ceiling:
        raise ValueError(
            f"this measurement would take {duration_text(est.total_s)} on this machine, over the limit of "
            f"{duration_text(ceiling)}; {_lighter(pipe, plan, ceiling)}"
        )
    return est


def reference(pipe: Pipeline) -> np.ndarray:
    """Judge features of real held-out images (computed once per pipeline)."""
    with _lock:
        ref, feats = _references.get(id(pipe), (None, None))
        if feats is None or ref() is not pipe:
            feats = evaluate.reference_features(pipe, n=REFERENCE_IMAGES)
            _references[id(pipe)] = (weakref.ref(pipe), feats)
        return feats


def prepare(pipe: Pipeline) -> None:
    """The one-off work of a model's first run: its cost calibration and, with a judge, the
    reference features (so :func:`estimate` is quick and the estimate excludes them)."""
    calibrate(pipe)
    if getattr(pipe, "judge", None) is not None:
        reference(pipe)


class _Bar:
    """Progress over a run, weighted by the estimated seconds of its parts; every report first calls
    ``check`` (which raises to stop the run)."""

    def __init__(self, total_s: float, progress: Progress | None, check: Check | None = None):
        self.total, self.done, self.progress, self.check = max(total_s, 1e-9), 0.0, progress, check

    def part(self, seconds: float) -> Progress:
        """A ``progress(fraction, text)`` for a part of ``seconds`` estimated seconds."""
        start = self.done

        def report(fraction: float, text: str) -> None:
            if self.check is not None:
                self.check()
            if self.progress is not None:
                self.progress(min(1.0, (start + fraction * seconds) / self.total), text)

        return report

    def advance(self, seconds: float, text: str) -> None:
        """A part of ``seconds`` is done."""
        self.done += seconds
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total), text)


def _decode_job(
    pipe: Pipeline, job: Job, seed: int, report: Callable[[float], None] | None = None
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Decode ``job``'s calls: (images, labels, seconds, queries); ``report(fraction of the job)``
    after every forward pass."""
    options = pipe.defaults.replace(steps=job.steps, order=job.order)
    labels = np.arange(sum(job.calls)) % pipe.num_classes
    labels = np.sort(labels, kind="stable") if job.kind == "quality" else labels
    imgs, queries, start, total = [], 0, 0, sum(job.calls)
    t0 = time.perf_counter()
    for k, b in enumerate(job.calls):
        callback = None
        if report is not None:
            callback = lambda s, n, _, done=start, b=b: report((done + b * (s + 1) / n) / total)  # noqa: E731
        out = pipe.generate(labels[start : start + b].tolist(), options, seed=seed + k, callback=callback)
        imgs.append(out.images)
        queries += out.trace.queries * b
        start += b
    return np.concatenate(imgs), labels, time.perf_counter() - t0, queries


def _job_row(pipe: Pipeline, job: Job, seed: int, report: Callable[[float], None] | None = None) -> dict:
    """One row of the orders table (the format of :func:`arpg.measure.evaluate.order_table`)."""
    imgs, labels, secs, queries = _decode_job(pipe, job, seed, report)
    quality: dict[str, Any] = {"accuracy": None, "frechet": None}
    if job.kind == "quality":
        quality = evaluate.generation_quality(pipe, imgs, labels, reference(pipe))
    return {
        "order": job.order,
        "steps": job.steps,
        "samples": len(imgs),
        "batch": max(job.calls),
        **quality,
        "seconds_per_image": secs / len(imgs),
        "queries_per_image": queries / len(imgs),
    }


def _attach_quality(rows: list[dict], order_rows: list[dict], cells: int) -> None:
    """Copy accuracy and Frechet distance of random order (per step count) and raster order onto
    the timing rows of ARPG and raster."""
    by_key = {(r["order"], r["steps"]): r for r in order_rows}
    for row in rows:
        q = by_key.get(("random", row["steps"]) if row["method"] == "arpg" else (row["method"], cells))
        if q is not None and q["accuracy"] is not None:
            row.update(accuracy=q["accuracy"], frechet=q["frechet"], quality_samples=q["samples"])


def _samples(pipe: Pipeline, plan: QuickPlan, bar: _Bar, seed: int) -> list[dict]:
    """The quality and orders rows, reported (and checked) after every forward pass."""
    rows, cost = [], calibrate(pipe)
    for job in (j for j in jobs(pipe, plan) if j.kind != "timing"):
        text, seconds = f"{job.kind}: {job.order} order, {job.steps} steps", job_seconds(cost, job)
        part = bar.part(seconds)
        part(0.0, text)
        rows.append(_job_row(pipe, job, seed, lambda f, part=part, text=text: part(f, text)))
        bar.advance(seconds, text)
    return rows


def run_quick(
    pipe: Pipeline, plan: QuickPlan, progress: Progress | None = None, seed: int = 0, check_cancel: Check | None = None
) -> dict:
    """Run ``plan`` on ``pipe``: :func:`arpg.measure.bench.run_bench`'s result (the trade-off plot's
    JSON, rows with accuracy and Frechet distance when the model has a judge) plus ``"orders"``
    (rows of order, steps, samples, accuracy, frechet, seconds_per_image, queries_per_image) and
    ``"estimate_s"`` / ``"seconds"`` (the time said before and taken).  ``progress(fraction, text)``
    is called after every timed call and every forward pass of a sample; ``check_cancel()`` before
    each of those reports (raise from it to stop: the run ends within one unit of work). A plan
    estimated over :func:`max_seconds` is refused (:func:`check_plan`) before anything runs."""
    est = check_plan(pipe, plan)
    bar = _Bar(est.total_s, progress, check_cancel)
    t0 = time.perf_counter()
    results = bench.run_bench(
        pipe,
        steps=plan.steps,
        batch=plan.batches,
        methods=plan.methods,
        repeats=plan.repeats,
        warmup=WARMUP,
        measure_peak=False,
        seed=seed,
        progress=bar.part(est.timing_s),
        command="the app's Measure button",
    )
    bar.advance(est.timing_s, "speed measured")
    order_rows = _samples(pipe, plan, bar, seed)
    _attach_quality(results["rows"], order_rows, pipe.grid[0] * pipe.grid[1])
    results["orders"] = {
        "model": results.get("model"),
        "rows": order_rows,
        "per_class": plan.per_class if est.samples else None,
    }
    results.update(estimate_s=round(est.total_s, 1), seconds=round(time.perf_counter() - t0, 1))
    return results
