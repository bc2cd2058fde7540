"""Quality measurement on a random tiny model with a random judge: the order table and the judge."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import save_file

from arpg.measure import evaluate
from arpg.measure.evaluate import order_table
from arpg.measure.judge import Judge, frechet_distance, judge_images, load_judge
from arpg.measure.report import format_order_table
from arpg.pipeline import Pipeline
from arpg.viz.plots import orders_figure


def test_order_table_rows_and_figure(monkeypatch):
    real_reference = evaluate.reference_features
    monkeypatch.setattr(evaluate, "reference_features", lambda pipe: real_reference(pipe, n=200))  # not 2,000: fast
    pipe = Pipeline.random()
    pipe.judge = Judge().eval()
    res = order_table(pipe, ("random", "raster", "confidence"), (4,), per_class=2, batch=2, progress=False)
    assert [r["order"] for r in res["rows"]] == ["random", "raster", "confidence"]
    for r in res["rows"]:
        assert r["samples"] == 20 and 0 <= r["accuracy"] <= 1 and r["frechet"] >= -1e-6
    by = {r["order"]: r for r in res["rows"]}
    assert by["random"]["queries_per_image"] == 16 and by["confidence"]["queries_per_image"] > 16
    assert res["cfg_scale"] == pipe.defaults.cfg_scale
    json.dumps(res)
    assert "confidence" in format_order_table(res)
    img = orders_figure(res)
    assert img.mode == "RGB" and img.width > 300


def test_order_table_needs_a_judge():
    with pytest.raises(ValueError, match="judge"):
        order_table(Pipeline.random(), ("random",), (4,), per_class=1, progress=False)


def test_judge_round_trip_and_features(tmp_path):
    judge = Judge().eval()
    save_file(judge.state_dict(), str(tmp_path / "judge.safetensors"))
    again = load_judge(tmp_path / "judge.safetensors")
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)  # resized to 64 x 64
    preds, feats = judge_images(judge, images, batch=2)
    preds2, feats2 = judge_images(again, images)
    assert preds.shape == (5,) and feats.shape == (5, Judge.feature_dim) and feats.dtype == np.float64
    assert np.array_equal(preds, preds2) and np.allclose(feats, feats2)


def test_frechet_distance_is_zero_for_the_same_set_and_grows_with_a_shift():
    a = np.random.default_rng(1).normal(size=(200, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 3.0) == pytest.approx(4 * 9.0, rel=1e-6)
