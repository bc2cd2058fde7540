"""arpg.measure.scenes_tasks / scenes_table and scripts/bench_scenes.py: the canvas tasks of a scenes model
judged against real renders, on a tiny random model whose JSON says data="scenes" (with the shipped scenes
judge, so that real renders are read as their class)."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch

from arpg.checkpoints import save_checkpoint
from arpg.config import ARPGConfig, VQConfig
from arpg.data import scenes
from arpg.judge import load_judge
from arpg.measure import scenes_tasks as st
from arpg.measure.scenes_table import TASKS, detail_table, scenes_table, windows_table
from arpg.model import ARPG
from arpg.pipeline import Pipeline
from arpg.tokenizer import VQModel
from arpg.zoo import MODELS

SCENES_DIR = MODELS["scenes"].folder

ROOT = Path(__file__).resolve().parents[1]
SCENES_GRIDS = ((16, 16), (16, 24), (16, 32), (24, 24))


def tiny_scenes_folder(d: Path) -> Path:
    """A folder :meth:`Pipeline.shipped` loads: random ARPG-tiny on the scenes grids (64 px high at 4 px per
    token), random VQ-tiny, the shipped scenes judge; its JSON says data="scenes" and 4 steps."""
    torch.manual_seed(0)
    cfg = replace(ARPGConfig.from_name("ARPG-tiny"), grid_size=16, trained_grids=SCENES_GRIDS)
    save_checkpoint(
        ARPG(cfg).init_weights(0.2),
        d / "arpg.safetensors",
        {**cfg.to_dict(), "data": "scenes", "sampling": {"steps": 4}},
    )
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")), d / "vq.safetensors")
    shutil.copyfile(SCENES_DIR / "judge.safetensors", d / "judge.safetensors")
    return d


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_scenes_folder(tmp_path_factory.mktemp("tiny_scenes"))


@pytest.fixture(scope="module")
def pipe(folder: Path) -> Pipeline:
    return Pipeline.shipped(folder, device="cpu")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scenes", ROOT / "scripts" / "bench_scenes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- pixels and sizes -------------------------------------------------------------------------
def test_windows_cover_the_canvas_at_a_stride_of_32_px() -> None:
    assert len(st.window_starts(64, 256)) == 7 and len(st.window_starts(128, 128)) == 9
    imgs = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    wins = st.windows_of(imgs)
    assert wins.shape == (18, 64, 64, 3)
    assert np.array_equal(wins[9 + 5], imgs[1, 32:96, 64:128])  # image 1, window (32, 64)


def test_box_downscale_and_psnr() -> None:
    blocks = np.kron(np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1) * 10, np.ones((1, 2, 2, 3), np.uint8))
    assert np.array_equal(st.box_downscale(blocks, 2)[..., 0], np.arange(16).reshape(1, 4, 4) * 10)
    a = np.full((1, 8, 8, 3), 100, np.uint8)
    assert st.psnr(a, a + 10)[0] == pytest.approx(10 * math.log10(255**2 / 100))
    assert st.psnr(a, a)[0] > 100


def test_trials_default_and_override() -> None:
    n = st.resolve_trials()
    assert {k: n[k] for k in st.DEFAULT_TRIALS} == st.DEFAULT_TRIALS
    assert n["generation"] == max(max(st.compared_windows(p, n[p])) for p in st.DEFAULT_TRIALS)
    assert st.compared_windows("panorama", 3) == [21, 15]  # 7 windows each, 5 of them right of the input
    assert st.resolve_trials({"outpaint": 5, "generation": 9})["outpaint"] == 5
    for bad in ({"paint": 3}, {"outpaint": 1}, {"resize": "x"}):
        with pytest.raises(ValueError):
            st.resolve_trials(bad)


def test_held_out_scenes_are_their_own() -> None:
    a, b = st.heldout("outpaint", 50), st.heldout("panorama", 50)
    evaluate_split = scenes.scene_of(np.arange(50), scenes.HELDOUT_SEED)
    assert not set(a[1]) & set(b[1]) and not set(a[1]) & set(evaluate_split[1])
    assert np.array_equal(st.heldout("outpaint", 5)[1], a[1][:5])  # a prefix: more trials add scenes


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_frechet_real_against_real_is_small_and_noise_is_large() -> None:
    judge = SimpleNamespace(judge=load_judge(SCENES_DIR / "judge.safetensors"))
    labels, seeds = st.heldout("outpaint", 40)
    real = scenes.render_batch(labels, seeds)
    other = scenes.render_batch(*st.heldout("resize", 40))
    noise = np.random.default_rng(0).integers(0, 256, real.shape, dtype=np.uint8)
    same = st.Judged(judge, real, real, labels).row()
    assert same["frechet"] == pytest.approx(0, abs=1e-3) and same["accuracy"] == same["real_accuracy"] >= 0.9
    near, far = st.Judged(judge, other, real, labels).frechet(), st.Judged(judge, noise, real, labels).row()
    assert near < 0.25 * far["frechet"] and far["accuracy"] < 0.5 and far["real_accuracy"] >= 0.9


# -- the run ----------------------------------------------------------------------------------
def test_one_part_on_a_tiny_scenes_model(pipe: Pipeline) -> None:
    res = st.measure_scenes_tasks(
        pipe, parts=("outpaint",), trials={"outpaint": 2}, decodings=("whole",), progress=False
    )
    assert res["model"] == "shipped scenes model" and res["settings"]["steps"] == 4
    row = res["tasks"]["outpaint"]["whole"]
    assert row["windows_judged"] == row["frechet_samples"] == 2 and row["forward_passes"] == 4
    assert 0 <= row["accuracy"] <= 1 and row["real_accuracy"] == 1.0 and math.isfinite(row["frechet"])
    assert row["frechet_ratio"] is None and row["meets_target"] in (True, False)  # no yardstick in this run
    yard = {"frechet_at": {"2": row["frechet"] / 2}}
    again = st.add_ratios(json.loads(json.dumps(res)), yard)["tasks"]["outpaint"]["whole"]
    assert again["frechet_ratio"] == pytest.approx(2.0)


@pytest.mark.slow
def test_every_part_and_decoding(pipe: Pipeline) -> None:
    trials = {"outpaint": 2, "panorama": 2, "resize": 2}
    res = json.loads(json.dumps(st.measure_scenes_tasks(pipe, trials=trials, progress=False)))
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
    again = st.measure_scenes_tasks(pipe, parts=("outpaint",), trials=trials, progress=False)
    assert again["tasks"]["outpaint"]["whole"]["frechet"] == res["tasks"]["outpaint"]["whole"]["frechet"]


def test_bad_models_and_arguments(pipe: Pipeline) -> None:
    digits = Pipeline.random(arpg="ARPG-tiny", vq="VQ-tiny")
    digits.judge = pipe.judge
    with pytest.raises(ValueError, match="scenes data set"):
        st.measure_scenes_tasks(digits, parts=("outpaint",), progress=False)
    no_judge = replace(pipe, judge=None)
    with pytest.raises(ValueError, match="judge"):
        st.measure_scenes_tasks(no_judge, progress=False)
    with pytest.raises(ValueError, match="part"):
        st.measure_scenes_tasks(pipe, parts=("outpainting",), progress=False)
    with pytest.raises(ValueError, match="decoding"):
        st.measure_scenes_tasks(pipe, decodings=("tiled",), progress=False)


def test_targets_need_the_rate_and_the_ratio() -> None:
    row = {"accuracy": 0.95, "frechet": 30.0, "frechet_samples": 10}
    res = {"tasks": {"outpaint": {"windowed": dict(row)}, "resize lattice": {"whole": dict(row)}}}
    st.add_ratios(res, {"frechet_at": {"10": 25.0}})
    assert res["tasks"]["outpaint"]["windowed"]["frechet_ratio"] == pytest.approx(1.2)
    assert (
        res["tasks"]["outpaint"]["windowed"]["meets_target"] and res["tasks"]["resize lattice"]["whole"]["meets_target"]
    )
    st.add_ratios(res, {"frechet_at": {"10": 10.0}})  # ratio 3 > 1.5: missed; resize has no ratio target
    assert (
        not res["tasks"]["outpaint"]["windowed"]["meets_target"]
        and res["tasks"]["resize lattice"]["whole"]["meets_target"]
    )


# -- tables and the script --------------------------------------------------------------------
def _fake_run() -> dict:
    row = {"accuracy": 0.9, "real_accuracy": 1.0, "frechet": 20.0, "frechet_samples": 4, "forward_passes": 32.0}
    tasks = {t: {"windowed": dict(row), "whole": {**row, "accuracy": 0.5}, "winner": "windowed"} for t in TASKS}
    tasks["resize lattice"]["windowed"].update(psnr_db=21.5, psnr_db_bicubic=24.0, sharpness=0.4, sharpness_bicubic=0.6)
    tasks["outpaint"]["windowed"].update(sharpness=0.35, seam=1.25, seam_peak=1.5)
    tasks["panorama"]["whole"].update(sharpness=0.3, seam=1.1, seam_peak=1.2, seam_rounds=0.9, seam_rounds_peak=1.0)
    gen = {"accuracy": 0.97, "real_accuracy": 1.0, "frechet": 10.0, "frechet_at": {"4": 10.0}, "forward_passes": 32}
    gen["sharpness"] = 0.5
    return st.add_ratios({"model": "m", "settings": {"trials": {}, "steps": 32}, "generation": gen, "tasks": tasks})


def test_tables_put_scenes_beside_digits() -> None:
    text = scenes_table(_fake_run())
    assert text.count("\n") == 2 + 8 and "| plain generation |" in text and "20.00 (2.00x)" in text
    assert "21.50 dB (bicubic 24.00)" in text
    detail = detail_table(_fake_run())
    assert detail.count("\n") == 2 + 8 and "| plain generation | - | 0.50 | - | - | - |" in detail
    assert "| outpaint | windowed | 0.35 | 1.25 (worst 1.50) | - | - |" in detail
    assert "| panorama | whole | 0.30 | 1.10 (worst 1.20) | 0.90 (worst 1.00) | - |" in detail
    assert "| resize lattice | windowed | 0.40 (bicubic 0.60) | - | - | 21.50 dB (bicubic 24.00) |" in detail
    digits = json.loads((ROOT / "docs" / "benchmarks" / "windows.json").read_text())
    both = windows_table(_fake_run(), digits)
    for task in TASKS:
        acc = digits["tasks"][task]["windowed"]["accuracy"]
        assert f"| {task} | windowed | **90.0%** |" in both and f"{100 * acc:.1f}%" in both
    assert "digits: shipped digits model" in both
    assert windows_table(None, digits).count("| - |") >= 8  # no scenes run yet: dashes


def test_script_trials_and_merge(bench: ModuleType) -> None:
    assert bench.parse_trials("3") == {"outpaint": 3, "panorama": 3, "resize": 3}
    assert bench.parse_trials("outpaint=5,generation=9") == {"outpaint": 5, "generation": 9}
    with pytest.raises(SystemExit):
        bench.parse_trials("outpaint=five")
    old = _fake_run()
    new = {"model": "m", "settings": {"trials": {"outpaint": 7}}, "tasks": {"outpaint": old["tasks"]["outpaint"]}}
    merged = bench._merge(old, json.loads(json.dumps(new)))
    assert set(merged["tasks"]) == set(TASKS) and merged["generation"] == old["generation"]
    assert bench._merge({**old, "model": "other"}, new) is new  # another model: nothing kept
