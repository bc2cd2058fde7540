"""Measure's limits (:mod:`arpg.measure.quick`): a plan estimated over the ceiling is refused before
anything runs, with what to measure less of; a cancelled run stops within one unit of work (a timed
call, or a forward pass of a sample); progress is reported at every forward pass of a sample."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from arpg import sampling
from arpg.judge import Judge
from arpg.measure import estimate as est
from arpg.measure import quick
from arpg.pipeline import Pipeline

#: A made-up machine: 10 ms a pass and 1 ms a pass and image, nothing else.
COST = est.CallCost(call=0.0, step=0.01, step_image=0.001, token=0.0, decode=0.0, cells=16)


class Stop(Exception):
    """What the app's cancel check raises."""


@pytest.fixture(scope="module")
def bare() -> Pipeline:
    return Pipeline.random()  # 4x4 cells, no judge: orders are timed, quality is not measured


@pytest.fixture(scope="module")
def judged() -> Pipeline:
    pipe = Pipeline.random()
    pipe.judge = Judge().eval()
    return pipe


@pytest.fixture(autouse=True)
def made_up_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quick, "calibrate", lambda pipe: COST)
    monkeypatch.setattr(quick, "reference", lambda pipe: np.zeros((1, 1)))  # no real images: not run here
    monkeypatch.delenv(quick.MAX_SECONDS_ENV, raising=False)


@pytest.fixture()
def passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every forward pass of every decode, as the batch size it ran on."""
    seen: list[int] = []
    real = sampling._Decoder.step

    def step(self: Any, s: int, keep_logits: bool = False) -> None:
        seen.append(self.tokens.shape[0])
        real(self, s, keep_logits)

    monkeypatch.setattr(sampling._Decoder, "step", step)
    return seen


def test_a_plan_over_the_ceiling_is_refused_with_what_to_measure_less(
    judged: Pipeline, passes: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = quick.QuickPlan((2, 4), (1, 2), raster=True, repeats=3, per_class=20)
    total = quick.estimate(judged, plan).total_s
    assert total > 1.0
    with pytest.raises(ValueError, match="over the limit of about 1 s; try ") as err:
        quick.check_plan(judged, plan, 1.0)
    text = str(err.value)
    assert text.startswith(f"this measurement would take {est.duration_text(total)} on this machine")
    named = text.split("; try ")[1]
    assert "per class" in named and "no raster order" in named and "1 repeat" in named, named
    monkeypatch.setenv(quick.MAX_SECONDS_ENV, "1")
    with pytest.raises(ValueError, match="over the limit"):
        quick.run_quick(judged, plan)
    assert passes == []  # refused before anything ran


def test_the_named_change_fits(judged: Pipeline) -> None:
    plan = quick.QuickPlan((2, 4), (1, 2), raster=True, per_class=8)
    ceiling = quick.estimate(judged, quick.QuickPlan((2, 4), (1, 2), raster=True, per_class=3)).total_s
    with pytest.raises(ValueError, match="at most 3 images per class") as err:
        quick.check_plan(judged, plan, ceiling)
    assert "all of" not in str(err.value)


def test_the_ceiling_is_a_setting(bare: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = quick.QuickPlan((2,), (1,), raster=False)
    assert quick.max_seconds() == quick.MAX_SECONDS
    assert quick.check_plan(bare, plan).total_s <= quick.MAX_SECONDS
    monkeypatch.setenv(quick.MAX_SECONDS_ENV, "0.001")
    with pytest.raises(ValueError, match="over the limit"):
        quick.check_plan(bare, plan)
    monkeypatch.setenv(quick.MAX_SECONDS_ENV, "soon")
    with pytest.raises(ValueError, match=quick.MAX_SECONDS_ENV):
        quick.max_seconds()


def _cancel_after(passes: list, n: int) -> Any:
    """A cancel check that raises once ``n`` forward passes have run (the request was cancelled then)."""

    def check() -> None:
        if len(passes) >= n:
            raise Stop

    return check


#: The speed part: 1 and 8 images in 4 steps, a warm-up and a timed call each (16 passes); then the
#: orders, random and raster, 8 images in 4 steps each (8 passes).
PLAN = quick.QuickPlan((4,), (1, 8), raster=False, orders=("raster",))


@pytest.mark.parametrize("n, ran", [(1, 4), (18, 18)])
def test_a_cancelled_run_stops_within_one_unit_of_work(bare: Pipeline, passes: list, n: int, ran: int) -> None:
    """Cancelled at the first pass of the speed part (a unit there is a timed call: 4 passes), or at the
    second pass of an order's sample (a unit there is one forward pass): nothing more runs."""
    with pytest.raises(Stop):
        quick.run_quick(bare, PLAN, check_cancel=_cancel_after(passes, n))
    assert len(passes) == ran
    assert n == 1 or passes[-1] == 8  # cancelled in a sample of 8 images


def test_progress_is_reported_at_every_pass_of_a_sample(bare: Pipeline) -> None:
    seen: list[tuple[float, str]] = []
    quick.run_quick(
        bare, quick.QuickPlan((4,), (2,), raster=False, orders=("raster",)), progress=lambda f, t: seen.append((f, t))
    )
    samples = [f for f, t in seen if t.startswith("order")]
    assert len(samples) >= 2 * 4  # every pass of both orders' samples (4 steps each)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_the_pages_default_plan_fits_on_a_slow_machine(judged: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ceiling is at least 1.5x the estimate of the page's default plan: on a machine 10,000x
    slower than the made-up one the default is still accepted, and a plan twice as long is not."""
    slow = est.CallCost(call=0.0, step=100.0, step_image=10.0, token=0.0, decode=0.0, cells=16)
    monkeypatch.setattr(quick, "calibrate", lambda pipe: slow)
    default = quick.default_plan(judged)
    assert quick.estimate(judged, default).total_s > quick.MAX_SECONDS
    assert quick.check_plan(judged, default).total_s <= quick.max_seconds(judged)
    assert quick.max_seconds(judged) == pytest.approx(quick.DEFAULT_ROOM * quick.estimate(judged, default).total_s)
    with pytest.raises(ValueError, match="over the limit"):
        quick.check_plan(judged, quick.QuickPlan.checked(16, default.steps, default.batches, repeats=2, per_class=8))
    monkeypatch.setattr(quick, "calibrate", lambda pipe: COST)  # a fast machine: the fixed ceiling
    assert quick.max_seconds(judged) == quick.MAX_SECONDS
