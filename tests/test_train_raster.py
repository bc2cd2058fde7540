"""Training a LlamaGen model in raster order (arpg.train.raster, RECIPES["digits-raster"]): the stage learns,
stops and resumes bit-identically, and a recipe on a borrowed tokenizer writes a model folder the pipeline
loads as a LlamaGen and samples from."""

import json
import math
import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from arpg.checkpoints import save_checkpoint
from arpg.config import ARPGConfig, LlamaGenConfig, VQConfig, llamagen_preset_name
from arpg.data.sets import CanvasSpec
from arpg.judge import Judge
from arpg.llamagen import LlamaGen
from arpg.llamagen_sampling import UPSTREAM_SAMPLING
from arpg.model import ARPG
from arpg.options import SamplingOptions
from arpg.pipeline import SHIPPED_DIR, Pipeline
from arpg.tokenizer import VQModel
from arpg.train.loop import NO_LIMIT, Budget, Stage, TokenSet, new_arpg_optimizer
from arpg.train.raster import fit_raster, init_llamagen, raster_config
from arpg.train.recipes import RECIPES, Recipe
from arpg.train.run import SHARED_FILES, run_recipe


def _stops_after(steps: int) -> Budget:
    """A budget spent after ``steps`` training steps: its clock reads 0 when made, then 1, 2, ... per check."""
    ticks = iter(range(10**6))
    return Budget((steps + 0.5) / 60, clock=lambda: float(next(ticks)))


def _tiny() -> LlamaGen:
    torch.manual_seed(0)
    return init_llamagen(LlamaGen(replace(LlamaGenConfig.from_name("LlamaGen-tiny-vq"), grid_size=4)))


def _tokens(n: int = 20) -> TokenSet:
    """4x4 token images that follow from their class (image i: class i % 10), so the next token is learnable."""
    labels = torch.arange(n) % 10
    codes = (labels[:, None] * 3 + torch.arange(16)[None]) % 32
    return TokenSet(codes.to(torch.int16), labels, (4, 4))


def _fit(run: Path, steps: int, budget: Budget = NO_LIMIT) -> tuple[LlamaGen, Stage, bool]:
    model = _tiny()
    st = Stage("raster", run, model, new_arpg_optimizer(model, 1e-2), ema=0.9)
    return model, st, fit_raster(model, st, [_tokens()], steps, 1e-2, 8, 0.1, 0, False, budget=budget)


def test_the_raster_stage_learns_from_upstreams_start(tmp_path):
    """The zero output head starts at log(vocabulary); teacher-forced steps bring the loss well down."""
    _, st, done = _fit(tmp_path, 20)
    assert done and st.step == 20
    assert st.losses[0] == pytest.approx(math.log(32), abs=1e-5)
    assert sum(st.losses[-5:]) / 5 < st.losses[0] - 2.0


def test_a_stopped_stage_resumes_bit_identically(tmp_path):
    whole, _, _ = _fit(tmp_path / "whole", 8)
    _, st, done = _fit(tmp_path / "chunks", 8, _stops_after(3))
    assert not done and st.step == 3
    assert torch.load(tmp_path / "chunks" / "raster_ckpt.pt", weights_only=True)["step"] == 3
    resumed, st2, done = _fit(tmp_path / "chunks", 8)  # a fresh model: the checkpoint restores everything
    assert done and st2.losses[:3] == st.losses
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in whole.state_dict().items())
    ema = torch.load(tmp_path / "whole" / "raster_ckpt.pt", weights_only=True)["ema"]
    assert all(torch.equal(v, st2.ema[k]) for k, v in ema.items())


def test_the_digits_raster_recipe_fits_the_shipped_weights_budget():
    """LlamaGen-digits on the digits tokenizer, stored bf16 in the room the 64 MB of assets/models leave
    (every real file counted once: the raster folder's tokenizer and judge are links to the digits ones)."""
    r = RECIPES["digits-raster"]
    assert (r.family, r.arpg, r.data, r.vq, r.ship_bf16) == ("llamagen", "LlamaGen-digits", "digits", "VQ-digits", True)
    assert Path(r.tokenizer_from).resolve() == SHIPPED_DIR.resolve()
    cfg = raster_config(r, VQConfig.from_name(r.vq).downsample)
    assert cfg.grid_size == 16 and cfg.vocab_size == VQConfig.from_name(r.vq).codebook_size
    with torch.device("meta"):
        params = sum(p.numel() for p in LlamaGen(cfg).parameters())
        arpg_params = sum(p.numel() for p in ARPG(ARPGConfig.from_name("ARPG-digits")).parameters())
    assert 2.5e6 < params < 3.2e6 and params > 0.4 * arpg_params
    raster = (SHIPPED_DIR / "raster").resolve()
    others = {f.resolve() for f in SHIPPED_DIR.rglob("*") if f.is_file() and raster not in f.resolve().parents}
    assert sum(f.stat().st_size for f in others) + 2 * params + 20_000 <= 64 * 10**6


def test_the_raster_recipes_sampling_is_one_token_per_step_either_way():
    """The JSON's "sampling" section gives the same options over the library's defaults and over LlamaGen's."""
    r = RECIPES["digits-raster"]
    mine = SamplingOptions.from_config(r.sampling)
    assert mine == SamplingOptions.from_config({**UPSTREAM_SAMPLING, "steps": 256, **r.sampling})
    assert (mine.order, mine.schedule, mine.cfg_scale, mine.cfg_schedule) == ("raster", "k=1", 3.0, "constant")


def test_a_raster_recipe_is_checked_when_made():
    with pytest.raises(ValueError, match="unknown model family"):
        Recipe(family="maskgit")
    with pytest.raises(ValueError, match="unknown LlamaGen preset 'ARPG-digits'"):
        Recipe(family="llamagen")
    r = Recipe(family="llamagen", arpg="LlamaGen-digits", canvases=(CanvasSpec(64, 96),))
    with pytest.raises(ValueError, match="square token grid, not the 16x24"):
        raster_config(r, 4)
    assert llamagen_preset_name(raster_config(RECIPES["digits-raster"], 4)) == "LlamaGen-digits"


def _shared(folder: Path) -> Path:
    """A tiny tokenizer and judge to borrow, as the digits folder lends its own."""
    torch.manual_seed(0)
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")), folder / "vq.safetensors", VQConfig.from_name("VQ-tiny"))
    save_checkpoint(Judge(), folder / "judge.safetensors", {"family": "judge", "num_classes": 10, "data": "digits"})
    return folder


def _recipe(shared: Path, **kw) -> Recipe:
    """The digits-raster recipe on tiny sizes: LlamaGen on VQ-tiny's codes, 16 images, a few steps."""
    tiny = dict(arpg="LlamaGen-tiny-vq", vq="VQ-tiny", tokenizer_from=str(shared), token_images=16, bf16=False)
    small = dict(polish_steps=6, polish_batch=4, polish_images=16, polish_ema=0.5)
    return replace(RECIPES["digits-raster"], **tiny, **small, **kw)


def test_a_raster_recipe_refuses_a_tokenizer_folder_without_its_files_or_another_model(tmp_path):
    kw = dict(out=tmp_path / "models", run_dir=tmp_path / "run", plots=tmp_path / "plots")
    with pytest.raises(ValueError, match=r"which has no vq.safetensors, vq.json, judge.safetensors, judge.json"):
        run_recipe("x", recipe=_recipe(tmp_path / "nothing"), **kw)
    shared = _shared(tmp_path / "shared")
    torch.manual_seed(0)
    cfg = ARPGConfig.from_name("ARPG-tiny")
    save_checkpoint(ARPG(cfg), tmp_path / "models" / "arpg.safetensors", {**cfg.to_dict(), "data": "digits"})
    with pytest.raises(ValueError, match=r"is another LlamaGen model \(\('ARPG-tiny', 'digits'\)\)"):
        run_recipe("x", recipe=_recipe(shared), **kw)
    assert not (tmp_path / "models" / "vq.safetensors").exists()  # nothing linked before a model is written


@pytest.mark.slow  # about 3 s: two short runs and a 256-step decode
def test_a_raster_recipe_writes_a_folder_the_pipeline_samples_from(tmp_path):
    shared, out, run = _shared(tmp_path / "shared"), tmp_path / "models", tmp_path / "run"
    whole = run_recipe("x", recipe=_recipe(shared), out=out, run_dir=run, plots=tmp_path / "plots", workers=1)
    assert whole["finished"] and (tmp_path / "plots" / "raster_loss.png").exists()
    for name in SHARED_FILES:  # links into the borrowed folder, not copies
        assert (out / name).is_symlink() and os.readlink(out / name) == f"../shared/{name}"
    side = json.loads((out / "arpg.json").read_text())
    assert side["family"] == "llamagen" and side["data"] == "digits" and side["grid_size"] == 16
    assert all(v.dtype == torch.bfloat16 for v in load_file(str(out / "arpg.safetensors")).values())
    pipe = Pipeline.shipped(out)
    assert isinstance(pipe.model, LlamaGen) and pipe.judge is not None and pipe.grid == (16, 16)
    img = pipe.generate([3], seed=0)
    assert img.images.shape == (1, 64, 64, 3) and img.trace.forward_passes == 256 and img.trace.cfg == [3.0] * 256
    from arpg.measure.evaluate import eval_rows

    assert eval_rows(pipe, 7, (8, 32), False, 3) == [("raster", 256, 7)]  # eval judges its own decode only
    # stopped after 2 steps, then run again: the same weights as one run
    kw = dict(out=tmp_path / "m2", run_dir=tmp_path / "r2", plots=tmp_path / "p2", workers=1)
    ticks = iter(range(10**6))
    budget = lambda minutes: Budget(2.5 / 60, clock=lambda: float(next(ticks)))  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("arpg.train.run.Budget", budget)
        assert not run_recipe("x", recipe=_recipe(shared), **kw)["finished"]
    assert not (tmp_path / "m2").exists() and (tmp_path / "r2" / "raster_polish_latest.safetensors").exists()
    assert run_recipe("x", recipe=_recipe(shared), **kw)["finished"]
    a, b = (load_file(str(d / "arpg.safetensors")) for d in (out, tmp_path / "m2"))
    assert all(torch.equal(a[k], b[k]) for k in a)
