"""``eval`` says how long it will take before it starts (arpg.measure.evaluate.estimate_seconds)."""

from __future__ import annotations

import pytest

from arpg.judge import Judge
from arpg.measure import evaluate
from arpg.pipeline import Pipeline


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    p = Pipeline.random()
    p.judge = Judge().eval()
    return p


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_the_estimate_grows_with_the_work(pipe: Pipeline) -> None:
    small = evaluate.estimate_seconds(pipe, per_class=1, steps_list=(4,), raster=False)
    big = evaluate.estimate_seconds(pipe, per_class=400, steps_list=(4, 16), raster=True)
    assert 0 < small < big


def test_eval_prints_its_estimate_before_it_starts(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """It gave no estimate: a first run of the default settings took most of an hour without a word."""

    def stop(*args: object, **kwargs: object) -> None:
        raise RuntimeError("stopped at the first measurement")

    monkeypatch.setattr(evaluate, "tokenizer_quality", stop)
    with pytest.raises(RuntimeError, match="first measurement"):
        evaluate.evaluate(pipe, per_class=1, steps_list=(4,), raster=False)
    out = capsys.readouterr()
    assert "eval: about" in out.out + out.err and "on this machine" in out.out + out.err
