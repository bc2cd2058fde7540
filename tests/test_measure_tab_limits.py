"""The Trade-offs tab's Measure and its limits (demo.tabs.tradeoffs_results): a plan over the ceiling is said
to be too long before Measure is pressed, and refused in words when it is; a run stops at its next
unit of work when the request is cancelled; the progress text carries a percentage."""

from __future__ import annotations

from typing import Any

import pytest

gr = pytest.importorskip("gradio")

from arpg.measure import estimate as est  # noqa: E402
from arpg.measure import quick  # noqa: E402
from arpg.pipeline import Pipeline  # noqa: E402
from demo.parts.cancel import raise_if_cancelled  # noqa: E402
from demo.tabs import tradeoffs_results  # noqa: E402

COST = est.CallCost(call=0.0, step=0.01, step_image=0.001, token=0.0, decode=0.0, cells=16)
ARGS = ([1, 4], [4, 8], True, 1, ["raster"], 2)  # batches, steps, raster, repeats, orders, images per class


@pytest.fixture()
def pipe(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setattr(quick, "calibrate", lambda p: COST)
    monkeypatch.delenv(quick.MAX_SECONDS_ENV, raising=False)
    return Pipeline.random()


def test_a_plan_over_the_ceiling_is_said_and_refused_in_words(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tradeoffs_results.estimate_text(pipe, *ARGS).startswith("Estimated time: **about")
    monkeypatch.setenv(quick.MAX_SECONDS_ENV, "0.01")
    said = tradeoffs_results.estimate_text(pipe, *ARGS)
    assert said.startswith("**Too long to measure here:** this measurement would take") and "; try " in said
    ran: list = []
    monkeypatch.setattr(quick, "run_quick", lambda *a, **k: ran.append(a))
    with pytest.raises(gr.Error, match="over the limit of about 1 s"):
        tradeoffs_results.run_measure(pipe, *ARGS, progress=lambda *a, **k: None)
    assert ran == []


def test_measure_stops_when_cancelled_and_says_a_percentage(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def run_quick(p: Any, plan: Any, progress: Any = None, seed: int = 0, check_cancel: Any = None) -> dict:
        seen["check"] = check_cancel
        progress(0.25, "speed: arpg, 4 steps")
        raise RuntimeError("stop here")

    said: list[str] = []
    monkeypatch.setattr(quick, "run_quick", run_quick)
    with pytest.raises(RuntimeError, match="stop here"):
        tradeoffs_results.run_measure(pipe, *ARGS, progress=lambda f, desc: said.append(desc))
    assert seen["check"] is raise_if_cancelled  # checked at every timed call and forward pass
    assert said == ["speed: arpg, 4 steps (25%)"]


def test_the_progress_bar_moves_a_few_times_a_second_not_at_every_pass() -> None:
    """A run reports at every forward pass (thousands); the page gets at most one update per
    PROGRESS_EVERY_S, and always the last."""
    from demo.tabs.tradeoffs_results import throttled

    shown: list[float] = []
    report = throttled(lambda done, text: shown.append(done), every_s=60.0)
    for i in range(1, 2001):
        report(i / 2000, "step")
    assert shown == [1 / 2000, 1.0]
