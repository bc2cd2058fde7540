"""The training recipe on tiny models: every stage runs, writes weights that load, and a
second run resumes (finished stages are skipped)."""
import json

import torch

from arpg.checkpoints import load_arpg, load_vq
from arpg.train import RECIPES, lr_at, run_recipe


def test_smoke_recipe_trains_and_resumes(tmp_path):
    out, run, plots = tmp_path / "models", tmp_path / "run", tmp_path / "plots"
    info = run_recipe("smoke", out=out, run_dir=run, plots=plots)
    for name in ("vq", "arpg", "judge"):
        assert (out / f"{name}.safetensors").exists() and (out / f"{name}.json").exists()
        assert (plots / f"{name}_loss.png").exists()
    assert load_arpg(out / "arpg.safetensors").cfg.vocab_size == 32
    assert load_vq(out / "vq.safetensors").cfg.codebook_size == 32
    assert json.loads((run / "train_info.json").read_text())["arpg_steps"] == RECIPES["smoke"].arpg_steps
    # both ARPG phases ran to their step counts: wide data, then the focus style from phase 1's weights
    for stage, steps in (("arpg", RECIPES["smoke"].arpg_steps), ("arpg_focus", RECIPES["smoke"].focus_steps)):
        assert torch.load(run / f"{stage}_ckpt.pt", weights_only=True)["step"] == steps
    assert (run / "tokens.pt").exists() and (run / f"tokens_{RECIPES['smoke'].focus_style}.pt").exists()
    assert info["tokenizer_s"] > 0
    again = run_recipe("smoke", out=out, run_dir=run, plots=plots)  # everything on disk: skipped
    assert again["arpg_s"] < info["arpg_s"]


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 1.0) for s in range(100)]
    assert lrs[0] < lrs[4] == max(lrs) and abs(lrs[-1] - 0.1) < 0.01
