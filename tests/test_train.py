"""The training recipes on tiny models: every stage runs, writes weights that load, and a
second run resumes (finished stages are skipped, each with a log line saying so); recipes choose
their data set and canvases (scenes on variable canvases) and run in chunks of a time budget."""

import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from arpg.checkpoints import load_arpg, load_vq, save_checkpoint
from arpg.cli import main
from arpg.config import ARPGConfig, VQConfig, arpg_preset_name
from arpg.data import digits, scenes
from arpg.data.sets import CanvasSpec, batch_for, images
from arpg.model import ARPG
from arpg.options import SamplingOptions, model_defaults
from arpg.pipeline import SHIPPED_DIR, Pipeline
from arpg.tokenizer import VQModel
from arpg.train import run as run_mod
from arpg.train.loop import Budget, Stage, TokenSet, fit_arpg, lr_at, new_arpg_optimizer
from arpg.train.plots import phase_losses, plot_arpg
from arpg.train.preview import pack_preview
from arpg.train.recipes import RECIPES, Recipe, arpg_phases
from arpg.train.run import run_recipe
from arpg.train.stages import arpg_config, token_cache


@pytest.mark.slow
def test_smoke_recipe_trains_and_resumes(tmp_path):
    out, run, plots = tmp_path / "models", tmp_path / "run", tmp_path / "plots"
    info = run_recipe("smoke", out=out, run_dir=run, plots=plots)
    for name in ("vq", "arpg", "judge"):
        assert (out / f"{name}.safetensors").exists() and (out / f"{name}.json").exists()
        assert (plots / f"{name}_loss.png").exists()
    cfg = load_arpg(out / "arpg.safetensors").cfg
    assert arpg_preset_name(cfg) == RECIPES["smoke"].arpg and cfg.trained_grids == ((16, 16),)
    assert load_vq(out / "vq.safetensors").cfg == VQConfig.from_name(RECIPES["smoke"].vq)
    # the model ships with its recipe's sampling defaults, read back as the pipeline reads them
    assert model_defaults(weights=out / "arpg.safetensors") == SamplingOptions.from_config(RECIPES["smoke"].sampling)
    assert json.loads((run / "train_info.json").read_text())["arpg_steps"] == RECIPES["smoke"].arpg_steps
    # all three ARPG phases ran to their step counts, each leaving its weights and loss curve
    r = RECIPES["smoke"]
    for stage, steps in (("arpg", r.arpg_steps), ("arpg_focus", r.focus_steps), ("arpg_polish", r.polish_steps)):
        assert torch.load(run / f"{stage}_ckpt.pt", weights_only=True)["step"] == steps
        assert (run / f"{stage}.safetensors").exists()
        assert len(json.loads((run / f"{stage}_losses.json").read_text())) == steps
    assert (run / "tokens.pt").exists() and (run / f"tokens_{r.focus_style}.pt").exists()
    assert (run / f"tokens_{r.focus_style}_{r.polish_images}.pt").exists()
    # phase 3 keeps a moving average of its weights, and that average is what ships
    shipped, raw, ema = (
        load_file(str(p))
        for p in (out / "arpg.safetensors", run / "arpg_polish.safetensors", run / "arpg_polish_ema.safetensors")
    )
    assert all(torch.equal(shipped[k], ema[k]) for k in shipped)
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    assert info["tokenizer_s"] > 0
    again = run_recipe("smoke", out=out, run_dir=run, plots=plots)  # everything on disk: skipped
    assert again["arpg_s"] < info["arpg_s"]
    # every phase finished but the shipped file gone: it is written again, from the moving average
    (out / "arpg.safetensors").unlink()
    run_recipe("smoke", out=out, run_dir=run, plots=plots)
    assert all(torch.equal(v, ema[k]) for k, v in load_file(str(out / "arpg.safetensors")).items())


@pytest.mark.slow
def test_a_run_starts_after_the_last_finished_phase(tmp_path, caplog):
    """With only phase 2's weights in the run folder (what a GPU machine gets), only phase 3 runs."""
    first, second = tmp_path / "first", tmp_path / "second"
    run_recipe("smoke", out=first / "models", run_dir=first / "run", plots=first / "plots")
    (second / "run").mkdir(parents=True)
    (second / "models").mkdir()
    for name in ("vq", "judge"):
        for ext in (".safetensors", ".json"):
            shutil.copy(first / "models" / f"{name}{ext}", second / "models" / f"{name}{ext}")
    shutil.copy(first / "run" / "arpg_focus.safetensors", second / "run" / "arpg_focus.safetensors")
    with caplog.at_level(logging.WARNING, logger="arpg.train"):
        run_recipe("smoke", out=second / "models", run_dir=second / "run", plots=second / "plots")
    skipped = [r.getMessage() for r in caplog.records if "skipping ARPG phase" in r.getMessage()]
    assert [m.split(":")[0] for m in skipped] == ["skipping ARPG phase arpg", "skipping ARPG phase arpg_focus"]
    assert all(f"continues from {second / 'run' / 'arpg_focus.safetensors'}" in m for m in skipped)
    made = {p.name for p in (second / "run").iterdir()}
    assert "arpg_polish.safetensors" in made and not {"arpg_ckpt.pt", "arpg_focus_ckpt.pt", "tokens.pt"} & made
    # same start, same draws: the same weights as the run that did every phase
    a, b = (load_file(str(d / "models" / "arpg.safetensors")) for d in (first, second))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_plot_counts_images_seen_across_phases(tmp_path):
    r = RECIPES["smoke"]
    for name, n in (("arpg", r.arpg_steps), ("arpg_focus", r.focus_steps), ("arpg_polish", r.polish_steps)):
        (tmp_path / f"{name}_losses.json").write_text(json.dumps([1.0] * n))
    assert [len(phase_losses(tmp_path, p.name)) for p in arpg_phases(r)] == [
        r.arpg_steps,
        r.focus_steps,
        r.polish_steps,
    ]
    plot_arpg(r, tmp_path, tmp_path / "arpg.png")
    assert (tmp_path / "arpg.png").stat().st_size > 1000


def test_finished_stages_are_skipped_with_a_line_each(tmp_path, caplog):
    """A fresh clone has the shipped weights: `train` names each file it keeps and what to delete to retrain."""
    out, run, plots = tmp_path / "models", tmp_path / "run", tmp_path / "plots"
    save_checkpoint(VQModel(VQConfig.from_name(RECIPES["smoke"].vq)), out / "vq.safetensors")
    for name in ("arpg", "judge"):
        (out / f"{name}.safetensors").touch()  # only their presence counts
    run.mkdir()
    (run / "judge_ckpt.pt").touch()
    with caplog.at_level(logging.WARNING, logger="arpg.train"):
        assert (
            main(["train", "--recipe", "smoke", "--out", str(out), "--run-dir", str(run), "--plots", str(plots)]) == 0
        )
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("arpg.train")]
    assert len(lines) == 3
    for line, (what, name) in zip(lines, [("tokenizer", "vq"), ("judge", "judge"), ("ARPG model", "arpg")]):
        assert line.startswith(f"skipping the {what}: {out / name}.safetensors exists; to train it again delete it")
    assert lines[0].endswith("delete it") and lines[1].endswith(f"delete it and {run / 'judge_ckpt.pt'}")
    assert not plots.exists()  # nothing was trained


def test_retraining_keeps_the_shipped_sampling_defaults():
    """The digits recipe writes the "sampling" section the shipped arpg.json has."""
    shipped = json.loads((SHIPPED_DIR / "arpg.json").read_text())["sampling"]
    assert RECIPES["digits"].sampling == shipped


def test_cuda_request_without_cuda_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        run_recipe("smoke", out=tmp_path, run_dir=tmp_path, plots=tmp_path, device="cuda")


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 1.0) for s in range(100)]
    assert lrs[0] < lrs[4] == max(lrs) and abs(lrs[-1] - 0.1) < 0.01


# -- recipes on other data sets: scenes on variable canvases --------------------------------------------------
SCENE_GRIDS = ((16, 16), (16, 24), (16, 32), (24, 24))


def test_recipes_choose_their_data_set_and_canvases():
    r = RECIPES["scenes"]
    assert (r.data, r.vq, r.arpg, r.out) == ("scenes", "VQ-scenes", "ARPG-scenes", "assets/models/scenes")
    assert arpg_config(r, VQConfig.from_name(r.vq).downsample).trained_grids == SCENE_GRIDS
    assert arpg_config(RECIPES["digits"], 4).trained_grids == ((16, 16),)
    assert [p.canvases for p in arpg_phases(r)] == [r.canvases]
    with pytest.raises(ValueError, match="data"):
        Recipe(data="faces")
    with pytest.raises(ValueError, match="no styles"):
        Recipe(data="scenes", focus_style=None)  # phase 1's style "wide" is a digits style
    with pytest.raises(ValueError, match="style"):
        Recipe(style="tilted")


def test_data_sets_render_on_canvases():
    x, y = images("scenes", range(3), 0, CanvasSpec(64, 96))
    assert x.shape == (3, 64, 96, 3) and y.shape == (3,)
    d, _ = images("digits", range(2), 0, CanvasSpec(96, 96, 1.5), style="wide")
    assert d.shape == (2, 96, 96, 3)
    assert np.array_equal(images("digits", range(2), 0, style="wide")[0], digits.sample(range(2))[0])
    with pytest.raises(ValueError, match="square"):
        images("digits", range(2), 0, CanvasSpec(64, 128), style="wide")
    assert CanvasSpec(96, 96, 1.5).grid(4) == (24, 24) and CanvasSpec(96, 96, 1.5).tag == "96x96@1.5"
    assert CanvasSpec().tag == "" and batch_for(CanvasSpec(64, 128), 24, CanvasSpec()) == 12


def test_each_batch_has_one_grid_and_about_the_same_tokens():
    """fit_arpg takes the canvases in turn, the model's RoPE on each batch's grid."""
    torch.manual_seed(0)
    model = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights()
    sets = [
        TokenSet(torch.randint(0, 32, (5, rows * cols), dtype=torch.int16), torch.arange(5) % 10, (rows, cols))
        for rows, cols in ((4, 4), (4, 8))
    ]
    seen = []
    forward = model.forward
    model.forward = lambda tokens, labels, order, grid: (
        seen.append((tokens.shape, grid)) or forward(tokens, labels, order, grid=grid)
    )
    with tempfile.TemporaryDirectory() as tmp:
        st = Stage("arpg", Path(tmp), model, new_arpg_optimizer(model, 1e-3))
        assert fit_arpg(model, st, sets, 3, 1e-3, 4, 0.1, 0, bf16=False)
    assert seen == [((4, 16), (4, 4)), ((2, 32), (4, 8)), ((4, 16), (4, 4))]
    with pytest.raises(ValueError, match="grid"):
        TokenSet(torch.zeros(2, 12), torch.zeros(2), (4, 4))


def test_budget():
    now = [0.0]
    budget = Budget(1.5, clock=lambda: now[0])
    assert not budget.spent()
    now[0] = 89.0
    assert not budget.spent()
    now[0] = 90.0
    assert budget.spent() and not Budget().spent()


def test_weights_of_another_model_in_the_output_are_an_error(tmp_path):
    """`train --recipe scenes` into a folder of digits weights neither skips nor overwrites them."""
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")), tmp_path / "vq.safetensors")
    with pytest.raises(ValueError, match="another tokenizer"):
        run_recipe("scenes", out=tmp_path, run_dir=tmp_path / "run", plots=tmp_path / "plots")
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")), tmp_path / "vq.safetensors")
    (tmp_path / "judge.safetensors").touch()
    (tmp_path / "judge.json").write_text(json.dumps({"family": "judge", "num_classes": 10}))  # a digits judge
    with pytest.raises(ValueError, match=r"another judge \(digits\) than this recipe trains \(scenes\)"):
        run_recipe("scenes-smoke", out=tmp_path, run_dir=tmp_path / "run", plots=tmp_path / "plots")


@pytest.mark.slow
def test_scenes_smoke_recipe_trains_on_variable_canvases(tmp_path):
    out, run, plots = tmp_path / "models", tmp_path / "run", tmp_path / "plots"
    r = RECIPES["scenes-smoke"]
    info = run_recipe("scenes-smoke", out=out, run_dir=run, plots=plots, workers=1)
    assert info["finished"]
    side = json.loads((out / "arpg.json").read_text())
    assert side["trained_grids"] == [list(g) for g in SCENE_GRIDS] and side["data"] == "scenes"
    assert json.loads((out / "judge.json").read_text())["data"] == "scenes"
    model = load_arpg(out / "arpg.safetensors")
    assert model.cfg.trained_sizes == SCENE_GRIDS and arpg_preset_name(model.cfg) == r.arpg
    assert r.ship_bf16 and all(v.dtype == torch.bfloat16 for v in load_file(str(out / "arpg.safetensors")).values())
    n = r.token_images
    for k, (canvas, (rows, cols)) in enumerate(zip(r.canvases, SCENE_GRIDS)):
        cache = torch.load(token_cache(r, run, None, n, canvas), weights_only=True)
        assert cache["codes"].shape == (n, rows * cols)
        # each canvas has its own scenes: images k*n..(k+1)*n of the token split
        assert cache["labels"].tolist() == scenes.scene_of(range(k * n, (k + 1) * n), scenes.TRAIN_SEED + 1)[0].tolist()
    assert torch.load(run / "arpg_ckpt.pt", weights_only=True)["step"] == r.arpg_steps
    assert all((plots / f"{n}_loss.png").exists() for n in ("vq", "judge", "arpg"))


@pytest.mark.slow
def test_a_recipe_runs_in_chunks_and_ends_where_one_run_ends(tmp_path, monkeypatch):
    """Runs stopped by the time budget resume where they stopped: the same weights as one run."""
    r = RECIPES["scenes-smoke"]
    whole = tmp_path / "whole"
    run_recipe("scenes-smoke", out=whole / "models", run_dir=whole / "run", plots=whole / "plots", workers=1)
    calls = [0]

    def clock() -> float:  # one "second" per budget check
        calls[0] += 1
        return float(calls[0])

    monkeypatch.setattr(run_mod, "Budget", lambda minutes: Budget(minutes, clock=clock))
    kw = dict(out=tmp_path / "models", run_dir=tmp_path / "run", plots=tmp_path / "plots", workers=1)
    # checks before ARPG step 3: every tokenizer and judge step, one per canvas, then steps 0-2
    checks = r.vq_steps + r.judge_steps + len(r.canvases) + 3
    assert not run_recipe("scenes-smoke", max_minutes=(checks + 1) / 60, **kw)["finished"]
    assert torch.load(tmp_path / "run" / "arpg_ckpt.pt", weights_only=True)["step"] == 3
    assert (tmp_path / "run" / "arpg_latest.safetensors").exists() and not (tmp_path / "models" / "arpg.json").exists()
    # the weights so far can be tried: a preview folder the pipeline loads, saying how far training was
    with pytest.raises(ValueError, match="where the finished model goes"):
        pack_preview("scenes-smoke", kw["out"], kw["run_dir"], kw["out"])
    where = pack_preview("scenes-smoke", tmp_path / "preview", kw["run_dir"], kw["out"])
    assert where == {"phase": "arpg", "step": 3, "steps": r.arpg_steps}
    pipe = Pipeline.shipped(tmp_path / "preview")
    assert json.loads((tmp_path / "preview" / "arpg.json").read_text())["preview"] == where
    assert pipe.model.cfg.trained_sizes == SCENE_GRIDS and pipe.vq.cfg == VQConfig.from_name(r.vq)
    calls[0] = 0  # the next run checks once per canvas (all encoded), then steps 3 and 4 fit
    assert not run_recipe("scenes-smoke", max_minutes=(len(r.canvases) + 2 + 1) / 60, **kw)["finished"]
    assert torch.load(tmp_path / "run" / "arpg_ckpt.pt", weights_only=True)["step"] == 5
    assert run_recipe("scenes-smoke", **kw)["finished"]
    a, b = (load_file(str(d / "arpg.safetensors")) for d in (whole / "models", tmp_path / "models"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
