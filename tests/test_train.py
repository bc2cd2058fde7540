"""The training recipe on tiny models: every stage runs, writes weights that load, and a
second run resumes (finished stages are skipped)."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from arpg.checkpoints import load_arpg, load_vq
from arpg.train import RECIPES, arpg_phases, lr_at, phase_losses, plot_arpg, run_recipe


def test_smoke_recipe_trains_and_resumes(tmp_path):
    out, run, plots = tmp_path / "models", tmp_path / "run", tmp_path / "plots"
    info = run_recipe("smoke", out=out, run_dir=run, plots=plots)
    for name in ("vq", "arpg", "judge"):
        assert (out / f"{name}.safetensors").exists() and (out / f"{name}.json").exists()
        assert (plots / f"{name}_loss.png").exists()
    assert load_arpg(out / "arpg.safetensors").cfg.vocab_size == 32
    assert load_vq(out / "vq.safetensors").cfg.codebook_size == 32
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
    shipped, raw, ema = (load_file(str(p)) for p in (out / "arpg.safetensors", run / "arpg_polish.safetensors",
                                                      run / "arpg_polish_ema.safetensors"))
    assert all(torch.equal(shipped[k], ema[k]) for k in shipped)
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    assert info["tokenizer_s"] > 0
    again = run_recipe("smoke", out=out, run_dir=run, plots=plots)  # everything on disk: skipped
    assert again["arpg_s"] < info["arpg_s"]
    # every phase finished but the shipped file gone: it is written again, from the moving average
    (out / "arpg.safetensors").unlink()
    run_recipe("smoke", out=out, run_dir=run, plots=plots)
    assert all(torch.equal(v, ema[k]) for k, v in load_file(str(out / "arpg.safetensors")).items())


def test_a_run_starts_after_the_last_finished_phase(tmp_path):
    """With only phase 2's weights in the run folder (what a GPU machine gets), only phase 3 runs."""
    first, second = tmp_path / "first", tmp_path / "second"
    run_recipe("smoke", out=first / "models", run_dir=first / "run", plots=first / "plots")
    (second / "run").mkdir(parents=True)
    (second / "models").mkdir()
    for name in ("vq", "judge"):
        for ext in (".safetensors", ".json"):
            shutil.copy(first / "models" / f"{name}{ext}", second / "models" / f"{name}{ext}")
    shutil.copy(first / "run" / "arpg_focus.safetensors", second / "run" / "arpg_focus.safetensors")
    run_recipe("smoke", out=second / "models", run_dir=second / "run", plots=second / "plots")
    made = {p.name for p in (second / "run").iterdir()}
    assert "arpg_polish.safetensors" in made and not {"arpg_ckpt.pt", "arpg_focus_ckpt.pt", "tokens.pt"} & made
    # same start, same draws: the same weights as the run that did every phase
    a, b = (load_file(str(d / "models" / "arpg.safetensors")) for d in (first, second))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_plot_counts_images_seen_across_phases(tmp_path):
    r = RECIPES["smoke"]
    for name, n in (("arpg", r.arpg_steps), ("arpg_focus", r.focus_steps), ("arpg_polish", r.polish_steps)):
        (tmp_path / f"{name}_losses.json").write_text(json.dumps([1.0] * n))
    assert [len(phase_losses(tmp_path, p.name)) for p in arpg_phases(r)] == [r.arpg_steps, r.focus_steps,
                                                                             r.polish_steps]
    plot_arpg(r, tmp_path, tmp_path / "arpg.png")
    assert (tmp_path / "arpg.png").stat().st_size > 1000


def test_cuda_request_without_cuda_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        run_recipe("smoke", out=tmp_path, run_dir=tmp_path, plots=tmp_path, device="cuda")


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 1.0) for s in range(100)]
    assert lrs[0] < lrs[4] == max(lrs) and abs(lrs[-1] - 0.1) < 0.01
