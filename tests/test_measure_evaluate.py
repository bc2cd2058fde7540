"""Quality measurement on a random tiny model with a random judge: the order table and the judge; the data
set a model learnt (digits unchanged, scenes) and ``eval --model``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from safetensors.torch import save_file

from arpg import cli, zoo
from arpg.data import digits, scenes
from arpg.judge import Judge, frechet_distance, judge_images, load_judge
from arpg.measure import evaluate
from arpg.measure.evaluate import order_table
from arpg.measure.report import format_order_table
from arpg.pipeline import Pipeline
from arpg.viz.plots import orders_figure
from tests.conftest import tiny_scenes_folder


@pytest.mark.slow  # over a second: the fast tier stays under a minute
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


# -- the data set a model learnt ---------------------------------------------------------------
def test_real_images_come_from_the_models_data_set():
    digits_imgs, digits_labels = evaluate.real_images(6)
    want = digits.sample(range(6), seed=digits.HELDOUT_SEED, style=digits.GENERATOR_STYLE)
    assert np.array_equal(digits_imgs, want[0]) and np.array_equal(digits_labels, want[1])  # today's images
    imgs, labels = evaluate.real_images(6, style="wide", data="scenes")  # scenes have no style: ignored
    want = scenes.sample(range(6), seed=scenes.HELDOUT_SEED)
    assert np.array_equal(imgs, want[0]) and np.array_equal(labels, want[1])
    assert evaluate.data_styles("digits") == [digits.GENERATOR_STYLE, "wide"] and evaluate.data_styles("scenes") == [
        None
    ]
    assert evaluate.data_name(Pipeline.random()) == "digits"


@pytest.fixture(scope="module")
def scenes_folder(tmp_path_factory):
    return tiny_scenes_folder(tmp_path_factory.mktemp("scenes_eval"))


def _small_eval(monkeypatch):
    """evaluate() on a few dozen real images instead of thousands."""
    tok, judge, ref = evaluate.tokenizer_quality, evaluate.judge_accuracy, evaluate.reference_features
    monkeypatch.setattr(evaluate, "tokenizer_quality", lambda pipe, style=None: tok(pipe, n=20, style=style))
    monkeypatch.setattr(evaluate, "judge_accuracy", lambda pipe, style=None: judge(pipe, n=40, style=style))
    monkeypatch.setattr(evaluate, "reference_features", lambda pipe: ref(pipe, n=40))


@pytest.mark.slow
def test_eval_of_a_scenes_model_from_the_command_line(scenes_folder, tmp_path, monkeypatch, capsys):
    _small_eval(monkeypatch)
    out = tmp_path / "q.json"
    argv = [
        "eval",
        "--model",
        str(scenes_folder),
        "--per-class",
        "1",
        "--steps",
        "2",
        "--no-raster",
        "--json",
        str(out),
    ]
    assert cli.main(argv) == 0
    res = json.loads(out.read_text())
    assert res["model"] == "shipped scenes model" and res["data"] == "scenes" and res["data_style"] is None
    assert "tokenizer_psnr_db_wide" not in res and 0 < res["tokenizer_psnr_db"] < 60
    assert 0 < res["tokenizer_sharpness"] < np.inf  # a random tokenizer: noise, any detail
    assert res["judge_accuracy"] >= 0.9  # the shipped scenes judge on real held-out scenes
    (row,) = res["generation"]
    assert row["steps"] == 2 and row["samples"] == 10 and 0 <= row["accuracy"] <= 1 and np.isfinite(row["frechet"])
    assert row["texture_frechet"] > 0 and row["sharpness"] > 0  # what the judge does not see, beside it
    assert f"wrote {out}" in capsys.readouterr().out


def test_eval_model_errors_are_one_line(scenes_folder, tmp_path, monkeypatch, capsys):
    not_yet = dataclasses.replace(zoo.MODELS["scenes"], folder=tmp_path / "not_yet")
    monkeypatch.setitem(zoo.MODELS, "scenes", not_yet)
    cases = [
        (["--model", "scenes"], "not trained yet"),
        (["--model", str(tmp_path / "nowhere")], "no such folder"),
        (["--model", str(tmp_path)], "arpg.safetensors"),
        (["--model", str(scenes_folder), "--weights", "ARPG-L"], "alternatives"),
    ]
    for args, words in cases:
        assert cli.main(["eval", *args]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
