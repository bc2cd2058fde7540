"""Measure's time estimate (:mod:`arpg.measure.estimate`) on a simulated machine: a model whose forward
pass takes known seconds on a fake clock, shaped as the shipped model's passes are on a CPU (a fixed
part, the rows' work, and a read of the cache that makes a late pass of a decode dearer than an early
one). The estimate must hold far from the calls it is calibrated on: raster order's 256 passes of one
token, and 40-image quality samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from arpg.measure import estimate as est
from arpg.measure import quick
from arpg.options import SamplingOptions
from arpg.schedules import token_counts

CELLS = 256


@dataclass
class Machine:
    """A 16x16-cell model on a fake clock (seconds in ``now``); guidance doubles every pass's rows."""

    now: float = 0.0
    grid: tuple[int, int] = (16, 16)
    defaults: SamplingOptions = field(default_factory=lambda: SamplingOptions(steps=32, cfg_scale=3.0))
    num_classes: int = 10
    judge: Any = None

    @staticmethod
    def pass_seconds(images: int, tokens: int, cache: int) -> float:
        """A fixed part, the rows' work (guidance doubles them) and every image's read of its cache
        (the tokens before the pass): the shape the shipped digits model's passes have on a CPU."""
        return 0.005 + 3.7e-5 * 2 * images * tokens + 2.8e-6 * images * cache

    def generate(
        self, labels: list[int], options: SamplingOptions, seed: int = 0, callback: Any = None, context: Any = None
    ) -> Any:
        given = 0 if context is None else int(context.known.sum())
        counts = token_counts(CELLS - given, options.steps, options.schedule)
        self.now += 0.01  # the call's own cost
        fed, done = 1 + given, 0  # the first pass feeds the class token and the context
        for s, n in enumerate(counts):
            queried = CELLS - given - done if options.order == "confidence" else n
            self.now += self.pass_seconds(len(labels), fed + queried, 1 + given + done)
            fed, done = n, done + n
            if callback is not None:
                callback(s, len(counts), None)
        self.decode(np.zeros((len(labels), *self.grid)))
        return SimpleNamespace(images=np.zeros((len(labels), 4, 4, 3), np.uint8), trace=SimpleNamespace(queries=0))

    def decode(self, tokens: Any) -> None:
        self.now += 0.003 * len(tokens)

    def seconds(self, job: quick.Job) -> float:
        """What ``job`` truly takes on this machine."""
        start = self.now
        for b in job.calls:
            self.generate([0] * b, self.defaults.replace(steps=job.steps, order=job.order))
        return self.now - start


@pytest.fixture()
def machine(monkeypatch: pytest.MonkeyPatch) -> Machine:
    m = Machine()
    monkeypatch.setattr(est, "time", SimpleNamespace(perf_counter=lambda: m.now))
    return m


def test_the_estimate_holds_far_from_its_probes(machine: Machine) -> None:
    """Every call of the page's default plan (with a 40-image quality sample), within 30%: the
    calibration used to fit whole calls of 1 and 4 images in 8 and 16 steps, and missed raster order's
    256 passes of one token by far."""
    cost = est.measure_cost(machine)
    plan = quick.QuickPlan((8, 16, 32), (4,), raster=True, per_class=4)
    jobs = quick.jobs(machine, plan) + [quick.Job("quality", o, s, (40,)) for o, s in (("random", 8), ("raster", 256))]
    for job in jobs:
        truth = machine.seconds(job)
        assert quick.job_seconds(cost, job) == pytest.approx(truth, rel=0.3), job
    confidence = quick.Job("order", "confidence", 16, (8,))
    assert quick.job_seconds(cost, confidence) == pytest.approx(machine.seconds(confidence), rel=0.3)
