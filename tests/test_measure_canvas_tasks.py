"""arpg.measure.canvas_tasks / canvas_table / pixels: the canvas tasks of a model trained here, windowed against
whole, judged, against true renders where the data set has them; on tiny random models whose JSON names their
data set (with the shipped judges, so that real images are read as their class)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from arpg.data import scenes
from arpg.data.sets import CanvasSpec
from arpg.judge import load_judge
from arpg.measure import canvas_tasks as ct
from arpg.measure import pixels
from arpg.measure.canvas_table import TASKS, canvas_text, detail_table, task_table, windows_table
from arpg.pipeline import Pipeline
from arpg.zoo import MODELS
from tests.conftest import ROOT, run_script, tiny_folder


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return Pipeline.shipped(tiny_folder(tmp_path_factory.mktemp("tiny_scenes"), "scenes"), device="cpu")


@pytest.fixture(scope="module")
def digits_pipe(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return Pipeline.shipped(tiny_folder(tmp_path_factory.mktemp("tiny_digits"), "digits"), device="cpu")


# -- pixels and sizes -------------------------------------------------------------------------
def test_windows_cover_the_canvas_at_a_stride_of_32_px() -> None:
    assert len(pixels.window_starts(64, 256)) == 7 and len(pixels.window_starts(128, 128)) == 9
    imgs = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    wins = pixels.windows_of(imgs)
    assert wins.shape == (18, 64, 64, 3)
    assert np.array_equal(wins[9 + 5], imgs[1, 32:96, 64:128])  # image 1, window (32, 64)


def test_downscales_upscale_and_psnr() -> None:
    blocks = np.kron(np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1) * 10, np.ones((1, 2, 2, 3), np.uint8))
    assert np.array_equal(pixels.box_downscale(blocks, 2)[..., 0], np.arange(16).reshape(1, 4, 4) * 10)
    assert np.array_equal(pixels.downscale(blocks, 2), pixels.box_downscale(blocks, 2))
    assert pixels.downscale(blocks, 2, "lanczos").shape == (1, 4, 4, 3)
    assert pixels.bicubic_upscale(blocks, 16, 24).shape == (1, 16, 24, 3)
    with pytest.raises(ValueError, match="downscale"):
        pixels.downscale(blocks, 2, "nearest")
    a = np.full((1, 8, 8, 3), 100, np.uint8)
    assert pixels.psnr(a, a + 10)[0] == pytest.approx(10 * math.log10(255**2 / 100))
    assert pixels.psnr(a, a)[0] > 100


def test_trials_default_override_and_parse() -> None:
    n = ct.resolve_trials()
    assert {k: n[k] for k in ct.DEFAULT_TRIALS} == ct.DEFAULT_TRIALS
    assert n["generation"] == max(max(ct.compared_windows(p, n[p])) for p in ct.DEFAULT_TRIALS)
    assert ct.compared_windows("panorama", 3) == [21, 15]  # 7 windows each, 5 of them right of the input
    assert ct.resolve_trials({"outpaint": 5, "generation": 9})["outpaint"] == 5
    for bad in ({"paint": 3}, {"outpaint": 1}, {"resize": "x"}):
        with pytest.raises(ValueError):
            ct.resolve_trials(bad)
    assert ct.parse_trials("3") == {"outpaint": 3, "panorama": 3, "resize": 3}
    assert ct.parse_trials("outpaint=5,generation=9") == {"outpaint": 5, "generation": 9}
    assert ct.parse_trials(None) == {} == ct.parse_trials(" ")
    with pytest.raises(ValueError, match="trials"):
        ct.parse_trials("outpaint=five")


def test_held_out_images_are_their_own_and_true_renders_where_the_set_has_them() -> None:
    source = ct.Source("scenes")
    a, b = (scenes.scene_of(np.arange(50), source.seed(p))[1] for p in ("outpaint", "panorama"))
    evaluate_split = scenes.scene_of(np.arange(50), scenes.HELDOUT_SEED)[1]
    assert not set(a) & set(b) and not set(a) & set(evaluate_split)
    five, fifty = source.images("outpaint", 5), source.images("outpaint", 50)
    assert np.array_equal(five[0], fifty[0][:5]) and np.array_equal(five[1], fifty[1][:5])  # more trials add images
    wide = source.images("outpaint", 5, CanvasSpec(64, 96))[0]
    assert np.array_equal(wide[:, :, :64], five[0])  # the input is the left of its true wider render
    digits = ct.Source("digits", "centred", dict.fromkeys(ct.PARTS, 17))
    assert not digits.renders(CanvasSpec(64, 96)) and digits.renders(CanvasSpec(128, 128, 2.0))
    assert source.renders(ct.canvas_of("panorama")) and ct.canvas_of("outpaint", 64, 4).size == (64, 96)
    with pytest.raises(ValueError, match="splits"):
        ct.Source("scenes", None, {"outpaint": 3})


def test_the_source_of_a_model(pipe: Pipeline, digits_pipe: Pipeline) -> None:
    assert ct.source_of(pipe) == ct.Source("scenes", None, ct.SPLITS)
    digits = ct.source_of(digits_pipe, 17)
    assert digits.style == "centred" and set(digits.splits.values()) == {17}
    with pytest.raises(ValueError, match="trained here"):
        ct.source_of(Pipeline.random(arpg="ARPG-tiny", vq="VQ-tiny"))
    with pytest.raises(ValueError, match="style"):
        ct.source_of(pipe, style="wide").images("outpaint", 1)


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_frechet_real_against_real_is_small_and_noise_is_large() -> None:
    judge = SimpleNamespace(judge=load_judge(MODELS["scenes"].folder / "judge.safetensors"))
    source = ct.Source("scenes")
    real, labels = source.images("outpaint", 40)
    other, _ = source.images("resize", 40)
    noise = np.random.default_rng(0).integers(0, 256, real.shape, dtype=np.uint8)
    same = ct.Judged(judge, real, real, labels).row()
    assert same["frechet"] == pytest.approx(0, abs=1e-3) and same["accuracy"] == same["real_accuracy"] >= 0.9
    near, far = ct.Judged(judge, other, real, labels).frechet(), ct.Judged(judge, noise, real, labels).row()
    assert near < 0.25 * far["frechet"] and far["accuracy"] < 0.5 and far["real_accuracy"] >= 0.9
    alone = ct.Judged(judge, real, None, labels)
    assert alone.frechet() is None and set(alone.row()) == {"accuracy", "windows_judged"}


# -- the run ----------------------------------------------------------------------------------
def test_one_part_on_a_tiny_model(pipe: Pipeline) -> None:
    res = ct.measure_canvas_tasks(
        pipe, parts=("outpaint",), trials={"outpaint": 2}, decodings=("whole",), progress=False
    )
    assert res["model"] == "shipped scenes model" and res["settings"]["steps"] == 4
    assert res["settings"]["data"] == "scenes" and res["settings"]["true_renders"]["outpaint"]
    row = res["tasks"]["outpaint"]["whole"]
    assert row["windows_judged"] == row["frechet_samples"] == 2 and row["forward_passes"] == 4
    assert 0 <= row["accuracy"] <= 1 and row["real_accuracy"] == 1.0 and math.isfinite(row["frechet"])
    assert row["frechet_ratio"] is None and row["meets_target"] in (True, False)  # no yardstick in this run
    yard = {"frechet_at": {"2": row["frechet"] / 2}}
    again = ct.add_ratios(json.loads(json.dumps(res)), yard)["tasks"]["outpaint"]["whole"]
    assert again["frechet_ratio"] == pytest.approx(2.0)


@pytest.mark.slow
def test_every_part_and_decoding(pipe: Pipeline) -> None:
    trials = {"outpaint": 2, "panorama": 2, "resize": 2}
    res = json.loads(json.dumps(ct.measure_canvas_tasks(pipe, trials=trials, progress=False)))
    gen = res["generation"]
    assert gen["samples"] == 18 and set(gen["frechet_at"]) == {"2", "10", "14", "18"}
    assert set(res["tasks"]) == set(TASKS)
    for task in TASKS:
        assert res["tasks"][task]["winner"] in ("windowed", "whole")
        for dec in ("windowed", "whole"):
            row = res["tasks"][task][dec]
            assert 0 <= row["accuracy"] <= 1 and row["frechet"] >= -1e-6 and row["frechet_ratio"] > 0
    pan = res["tasks"]["panorama"]["windowed"]
    assert pan["windows_judged"] == 14 and pan["frechet_new_samples"] == 10 and pan["frechet_new_ratio"] > 0
    assert pan["forward_passes"] == 6 * 4  # 6 rounds of 8 columns, 4 steps each
    for strategy in ("lattice", "reencode"):
        row = res["tasks"][f"resize {strategy}"]["windowed"]
        assert row["frechet_samples"] == 18 and 0 < row["psnr_db"] < 60 and row["psnr_db_bicubic"] > 15
        assert row["sharpness"] > 0 and 0 < row["sharpness_bicubic"] < 1  # bicubic blurs an upscale
    for dec in ("windowed", "whole"):  # what the judge does not see: detail and seams, against the truth
        row = res["tasks"]["panorama"][dec]
        assert row["sharpness"] > 0 and 0 < row["seam"] <= row["seam_peak"] and row["seam_rounds"] > 0
    assert gen["sharpness"] > 0 and "seam_rounds" not in res["tasks"]["outpaint"]["whole"]
    # the same trials twice give the same numbers (every draw is seeded)
    again = ct.measure_canvas_tasks(pipe, parts=("outpaint",), trials=trials, progress=False)
    assert again["tasks"]["outpaint"]["whole"]["frechet"] == res["tasks"]["outpaint"]["whole"]["frechet"]


@pytest.mark.slow  # a few decodes
def test_a_data_set_without_wide_renders_is_judged_alone(digits_pipe: Pipeline) -> None:
    """Digits are square: an outpaint or panorama has no true render (judged only), a resize has one."""
    source = ct.source_of(digits_pipe, 17)
    res = ct.measure_canvas_tasks(
        digits_pipe,
        parts=("panorama", "resize"),
        trials={"panorama": 2, "resize": 2},
        strategies=("lattice",),
        source=source,
        how="lanczos",
        progress=False,
    )
    assert res["settings"]["true_renders"] == {"outpaint": False, "panorama": False, "resize": True}
    assert res["settings"]["splits"]["panorama"] == 1_000_003 + 17 and res["settings"]["downscale"] == "lanczos"
    pan = res["tasks"]["panorama"]["whole"]
    assert pan["windows_judged"] == 14 and 0 <= pan["all_windows"] <= 1 and "frechet" not in pan
    assert pan["frechet_ratio"] is None and "sharpness" not in pan
    row = res["tasks"]["resize lattice"]["whole"]
    assert row["windows_judged"] == 2 and row["real_accuracy"] >= 0.5 and row["psnr_db_bicubic"] > 15


def test_winner_reads_the_class_then_frechet_then_passes() -> None:
    rows = {"windowed": {"accuracy": 0.9, "forward_passes": 96.0}, "whole": {"accuracy": 0.9, "forward_passes": 32.0}}
    assert ct.winner(rows) == "whole"  # no Frechet distance: the fewer passes
    rows["windowed"]["frechet"], rows["whole"]["frechet"] = 1.0, 2.0
    assert ct.winner(rows) == "windowed" and ct.winner({"whole": rows["whole"]}) is None
    rows["whole"]["accuracy"] = 0.95
    assert ct.winner(rows) == "whole"


def test_bad_models_and_arguments(pipe: Pipeline) -> None:
    random_pipe = Pipeline.random(arpg="ARPG-tiny", vq="VQ-tiny")
    random_pipe.judge = pipe.judge
    with pytest.raises(ValueError, match="trained here"):
        ct.measure_canvas_tasks(random_pipe, parts=("outpaint",), progress=False)
    with pytest.raises(ValueError, match="judge"):
        ct.measure_canvas_tasks(replace(pipe, judge=None), progress=False)
    for kw, word in (({"parts": ("outpainting",)}, "part"), ({"decodings": ("tiled",)}, "decoding")):
        with pytest.raises(ValueError, match=word):
            ct.measure_canvas_tasks(pipe, progress=False, **kw)
    with pytest.raises(ValueError, match="downscale"):
        ct.measure_canvas_tasks(pipe, how="nearest", progress=False)


def test_targets_need_the_rate_and_the_ratio() -> None:
    row = {"accuracy": 0.95, "frechet": 30.0, "frechet_samples": 10}
    res = {"tasks": {"outpaint": {"windowed": dict(row)}, "resize lattice": {"whole": dict(row)}}}
    ct.add_ratios(res, {"frechet_at": {"10": 25.0}})
    out, lattice = res["tasks"]["outpaint"]["windowed"], res["tasks"]["resize lattice"]["whole"]
    assert out["frechet_ratio"] == pytest.approx(1.2) and out["meets_target"] and lattice["meets_target"]
    ct.add_ratios(res, {"frechet_at": {"10": 10.0}})  # ratio 3 > 1.5: missed; resize has no ratio target
    assert not res["tasks"]["outpaint"]["windowed"]["meets_target"] and lattice["meets_target"]
    judged_only = {"tasks": {"outpaint": {"whole": {"accuracy": 0.95, "windows_judged": 4}}}}
    ct.add_ratios(judged_only, {"frechet_at": {"4": 1.0}})  # no truth: no ratio, so the ratio target is missed
    assert judged_only["tasks"]["outpaint"]["whole"]["frechet_ratio"] is None


# -- tables and merging -------------------------------------------------------------------------
def _fake_run() -> dict:
    row = {"accuracy": 0.9, "real_accuracy": 1.0, "frechet": 20.0, "frechet_samples": 4, "forward_passes": 32.0}
    tasks = {t: {"windowed": dict(row), "whole": {**row, "accuracy": 0.5}, "winner": "windowed"} for t in TASKS}
    tasks["resize lattice"]["windowed"].update(psnr_db=21.5, psnr_db_bicubic=24.0, sharpness=0.4, sharpness_bicubic=0.6)
    tasks["outpaint"]["windowed"].update(sharpness=0.35, seam=1.25, seam_peak=1.5)
    tasks["panorama"]["whole"].update(sharpness=0.3, seam=1.1, seam_peak=1.2, seam_rounds=0.9, seam_rounds_peak=1.0)
    gen = {"accuracy": 0.97, "real_accuracy": 1.0, "frechet": 10.0, "frechet_at": {"4": 10.0}, "forward_passes": 32}
    gen["sharpness"] = 0.5
    settings = {"data": "scenes", "trials": {}, "steps": 32}
    return ct.add_ratios({"model": "m", "settings": settings, "generation": gen, "tasks": tasks})


def test_tables_put_runs_side_by_side() -> None:
    text = task_table(_fake_run())
    assert text.count("\n") == 2 + 8 and "| plain generation |" in text and "20.00 (2.00x)" in text
    assert "21.50 dB (bicubic 24.00)" in text
    detail = detail_table(_fake_run())
    assert detail.count("\n") == 2 + 8 and "| plain generation | - | 0.50 | - | - | - |" in detail
    assert "| outpaint | windowed | 0.35 | 1.25 (worst 1.50) | - | - |" in detail
    assert "| panorama | whole | 0.30 | 1.10 (worst 1.20) | 0.90 (worst 1.00) | - |" in detail
    assert "| resize lattice | windowed | 0.40 (bicubic 0.60) | - | - | 21.50 dB (bicubic 24.00) |" in detail
    digits = json.loads((ROOT / "docs" / "benchmarks" / "windows.json").read_text())  # judged only: no Frechet
    both = windows_table([("scenes", _fake_run()), ("digits", digits)])
    assert "| scenes: Frechet (ratio) |" in both and "digits: Frechet" not in both
    for task in TASKS:
        acc = digits["tasks"][task]["windowed"]["accuracy"]
        assert f"| {task} | windowed | **90.0%** |" in both and f"{100 * acc:.1f}%" in both
    assert "digits: shipped digits model, trials 50, 16 steps" in both
    assert windows_table([("scenes", None), ("digits", digits)]).count("| - |") >= 8  # one side not measured
    printed = canvas_text({**_fake_run(), "machine": "here"}, [("digits", digits)])
    assert "m on here" in printed and "| digits: passes |" in printed and "no ratio" not in printed


def test_runs_merge_the_parts_kept() -> None:
    old = _fake_run()
    new = {"model": "m", "settings": {"trials": {"outpaint": 7}}, "tasks": {"outpaint": old["tasks"]["outpaint"]}}
    merged = ct.merge_runs(old, json.loads(json.dumps(new)))
    assert set(merged["tasks"]) == set(TASKS) and merged["generation"] == old["generation"]
    assert merged["settings"]["trials"] == {"outpaint": 7}
    assert ct.merge_runs({**old, "model": "other"}, new) is new  # another model: nothing kept
    assert ct.merge_runs({"model": "m", "tasks": {}}, new) is new  # not a run of this module: nothing kept
    unmeasured = {"tasks": {"panorama": {"whole": {"accuracy": 1.0, "frechet": 2.0, "frechet_samples": 3}}}}
    assert "no ratio for panorama" in canvas_text({"model": "m", **ct.add_ratios(unmeasured)})


@pytest.mark.slow  # a few decodes
def test_the_example_rows_show_every_task_beside_its_true_render(pipe: Pipeline, digits_pipe: Pipeline) -> None:
    from arpg.measure.canvas_examples import ROWS, example_rows, example_sheet

    rows = example_rows(pipe)
    assert len(rows) == len(ROWS) and [c for c, _ in rows[1][1]] == ["input", "windowed", "whole", "real render"]
    assert rows[1][1][3][1].shape == (64, 256, 3) and rows[2][1][3][1].shape == (128, 128, 3)
    assert [c for c, _ in example_rows(digits_pipe)[2][1]] == ["input", "windowed", "whole"]  # not every canvas
    assert example_sheet(pipe).height == len(ROWS) * (128 + 46)


# -- the script -----------------------------------------------------------------------------------
@pytest.mark.slow  # over 0.5 s: the fast tier stays under a minute
def test_the_script_prints_the_tables_of_a_results_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**_fake_run(), "machine": "here"}))
    digits = "digits=" + str(ROOT / "docs" / "benchmarks" / "windows.json")
    out = run_script("bench_windows.py", "--table-only", "--json", str(path), "--beside", digits)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| scenes: judged as the class |" in out.stdout and "| digits: passes |" in out.stdout
    bad = run_script("bench_windows.py", "--parts", "outpainting")
    assert bad.returncode == 2 and "--parts" in bad.stderr
    assert run_script("bench_windows.py", "--table-only", "--json", str(tmp_path / "none.json")).returncode != 0


@pytest.mark.slow  # the script in its own process, on a tiny model
def test_the_script_measures_then_keeps_what_it_did_not_measure(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    folder, out = tiny_folder(tmp_path / "model", "scenes"), tmp_path / "r.json"
    args = ["--model", str(folder), "--decodings", "whole", "--json", str(out)]
    first = run_script("bench_windows.py", *args, "--parts", "outpaint", "--trials", "outpaint=2")
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_script("bench_windows.py", *args, "--parts", "generation", "--trials", "generation=2")
    assert again.returncode == 0, again.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["generation"]["samples"] == 2 and res["tasks"]["outpaint"]["whole"]["frechet_ratio"] > 0
    assert res["command"].endswith("--trials generation=2") and "--parts outpaint" in res["earlier_commands"][0]
