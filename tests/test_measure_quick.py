"""The app's Measure run (arpg.measure.quick) and its time estimate (arpg.measure.estimate), on tiny models."""

from __future__ import annotations

import json

import pytest

from arpg.judge import Judge
from arpg.measure import estimate as est
from arpg.measure import evaluate, quick
from arpg.pipeline import Pipeline


@pytest.fixture(scope="module")
def judged() -> Pipeline:
    """The tiny random model with a random judge (so quality is measured)."""
    pipe = Pipeline.random()
    pipe.judge = Judge().eval()
    return pipe


@pytest.fixture(autouse=True)
def small_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quick, "REFERENCE_IMAGES", 100)  # not 2,000: fast


def test_fit_passes_recovers_the_costs_it_was_built_from() -> None:
    step, step_image, token = 0.01, 0.002, 0.0003
    passes = {(b, m): step + step_image * b + token * b * m for b in est.PROBE_IMAGES for m in (2, 64)}
    assert est.fit_passes(passes) == pytest.approx((step, step_image, token))
    cost = est.CallCost(call=0.2, step=step, step_image=step_image, token=token, decode=0.05, cells=256)
    # confidence order queries every remaining cell at every step: (steps + 1) / 2 times the queries
    extra = cost.seconds(4, 8, "confidence") - cost.seconds(4, 8, "random")
    assert extra == pytest.approx(4 * token * 256 * (4.5 - 1))


def test_noisy_calibration_gives_no_negative_cost() -> None:
    fitted = est.fit_passes({(1, 2): 0.5, (1, 64): 0.1, (8, 2): 0.3, (8, 64): 0.05})
    assert min(fitted) >= 0 and max(fitted) > 0


def test_calibration_is_measured_once_per_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = Pipeline.random()
    calls = []
    monkeypatch.setattr(est, "measure_cost", lambda p: calls.append(p) or est.CallCost(0, 0, 0, 0, 0, 16))
    first = est.calibrate(pipe)
    assert est.calibrate(pipe) is first and len(calls) == 1
    est.forget(pipe)
    est.calibrate(pipe)
    assert len(calls) == 2


@pytest.mark.parametrize(
    "seconds, text", [(0.2, "about 1 s"), (7.4, "about 7 s"), (43, "about 45 s"), (200, "about 3 min")]
)
def test_duration_text(seconds: float, text: str) -> None:
    assert est.duration_text(seconds) == text


def test_plan_is_checked_in_words() -> None:
    plan = quick.QuickPlan.checked(16, ["8", 4, 4], [4, "1"], True, 1, ["raster", "random"], 2)
    assert plan.steps == (4, 8) and plan.batches == (1, 4) and plan.orders == ("raster",)
    assert plan.all_orders == ("random", "raster") and plan.methods == ("arpg", "raster")
    with pytest.raises(ValueError, match="steps must be between 1 and 16"):
        quick.QuickPlan.checked(16, [32], [1])
    with pytest.raises(ValueError, match="order must be one of"):
        quick.QuickPlan.checked(16, [4], [1], orders=["sideways"])
    with pytest.raises(ValueError, match="at least one batch size"):
        quick.QuickPlan.checked(16, [4], [])


def test_jobs_measure_quality_only_with_a_judge(judged: Pipeline) -> None:
    plan = quick.QuickPlan((4, 8), (1, 2), raster=True, orders=("spiral-in",), per_class=2)
    kinds = [(j.kind, j.order, j.steps) for j in quick.jobs(judged, plan)]
    assert ("quality", "random", 4) in kinds and ("quality", "spiral-in", 8) in kinds
    assert ("quality", "raster", 16) in kinds
    sample = next(j for j in quick.jobs(judged, plan) if j.kind == "quality")
    assert sum(sample.calls) == 2 * judged.num_classes
    bare = Pipeline.random()
    kinds = {j.kind for j in quick.jobs(bare, plan)}
    assert kinds == {"timing", "order"}  # orders timed, no quality
    assert {j.kind for j in quick.jobs(bare, quick.QuickPlan((4,), (1,)))} == {"timing"}


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_run_quick_reports_quality_per_step_and_order(judged: Pipeline) -> None:
    plan = quick.QuickPlan.checked(16, [2, 4], [2], raster=True, orders=["confidence"], per_class=2)
    seen = []
    res = quick.run_quick(judged, plan, progress=lambda f, t: seen.append((f, t)))
    arpg = [r for r in res["rows"] if r["method"] == "arpg"]
    raster = next(r for r in res["rows"] if r["method"] == "raster")
    assert [r["steps"] for r in arpg] == [2, 4]
    for r in [*arpg, raster]:
        assert 0 <= r["accuracy"] <= 1 and r["frechet"] >= -1e-6 and r["quality_samples"] == 20
    orders = [(r["order"], r["steps"]) for r in res["orders"]["rows"]]
    assert orders == [("random", 2), ("random", 4), ("confidence", 2), ("confidence", 4), ("raster", 16)]
    by = {(r["order"], r["steps"]): r for r in res["orders"]["rows"]}
    assert by[("random", 4)]["queries_per_image"] == 16 and by[("confidence", 4)]["queries_per_image"] > 16
    assert res["estimate_s"] > 0 and res["seconds"] > 0
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and 0 < fractions[-1] <= 1 and any("quality" in t for _, t in seen)
    json.dumps(res)


def test_without_a_judge_orders_get_time_and_queries_only() -> None:
    pipe = Pipeline.random()
    res = quick.run_quick(pipe, quick.QuickPlan((4,), (2,), raster=False, orders=("raster",)))
    assert [r["order"] for r in res["orders"]["rows"]] == ["random", "raster"]
    assert all(r["accuracy"] is None and r["seconds_per_image"] > 0 for r in res["orders"]["rows"])
    assert all(r["accuracy"] is None for r in res["rows"])


def test_estimate_counts_every_decode(judged: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    cost = est.CallCost(call=0.0, step=0.01, step_image=0.001, token=0.0, decode=0.0, cells=16)
    monkeypatch.setattr(quick, "calibrate", lambda pipe: cost)
    small = quick.estimate(judged, quick.QuickPlan((4,), (1,), raster=False, per_class=1))
    # one warm-up and one timed call of 1 image in 4 steps; quality: 10 images in 4 steps
    assert small.timing_s == pytest.approx(2 * 4 * 0.011)
    assert small.quality_s == pytest.approx(4 * (0.01 + 0.001 * 10)) and small.samples == 10
    bigger = quick.estimate(judged, quick.QuickPlan((4, 8), (1, 4), raster=True, per_class=4))
    assert bigger.total_s > 3 * small.total_s
    assert "Estimated time" in bigger.text() and "quality of 40 images per row" in bigger.text()


def test_reference_features_are_computed_once(judged: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = evaluate.reference_features
    monkeypatch.setattr(evaluate, "reference_features", lambda pipe, n: calls.append(n) or real(pipe, n=n))
    monkeypatch.setattr(quick, "_references", {})
    first = quick.reference(judged)
    assert quick.reference(judged) is first and calls == [100]
