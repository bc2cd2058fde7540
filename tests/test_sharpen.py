"""The sharper tokenizer decoder (``train --stage vq-decoder``) on tiny models: only the decoder learns
(every tensor that makes a token is bit for bit the same, so tokens and codebook usage are too), every
loss runs, a run stopped by its time budget resumes to the weights of one run, the finished folder
loads as a model, and the discriminator's losses and adaptive weight behave as their formulas say."""

import pytest
import torch

from arpg.checkpoints import load_vq, save_checkpoint
from arpg.cli import main
from arpg.config import VQConfig
from arpg.judge import Judge
from arpg.tokenizer import VQModel
from arpg.train.adversarial import PatchDiscriminator, adaptive_weight, hinge_d_loss, hinge_g_loss
from arpg.train.loop import Budget
from arpg.train.perceptual import FeatureLoss, edge_loss
from arpg.train.recipes import RECIPES, Sharpening
from arpg.train.run import run_recipe
from arpg.train.sharpen import _losses as sharpen_losses
from arpg.train.sharpen import frozen_state, sharpened_weights

RECIPE = "scenes-smoke"


def _source(folder, seed=0):
    """A random tiny tokenizer and judge in ``folder``, as a finished recipe leaves them."""
    torch.manual_seed(seed)
    vq = VQModel(VQConfig.from_name(RECIPES[RECIPE].vq))
    save_checkpoint(vq, folder / "vq.safetensors")
    save_checkpoint(Judge(), folder / "judge.safetensors", {"family": "judge", "num_classes": 10, "data": "scenes"})
    return vq


@pytest.mark.slow
def test_only_the_decoder_learns_and_the_folder_loads(tmp_path):
    before = _source(tmp_path).state_dict()
    info = run_recipe(RECIPE, out=tmp_path, run_dir=tmp_path / "run", plots=tmp_path / "plots", stage="vq-decoder")
    assert info["finished"] and info["step"] == RECIPES[RECIPE].sharpen.steps
    after = load_vq(sharpened_weights(tmp_path / "run")).state_dict()
    frozen = frozen_state(load_vq(tmp_path / "vq.safetensors"))
    assert frozen and all(torch.equal(after[k], v) for k, v in frozen.items())  # tokens cannot change
    assert any(k.startswith("quantize.") for k in frozen) and any(k.startswith("encoder.") for k in frozen)
    learnt = [k for k in after if k.startswith(("decoder.", "post_quant_conv."))]
    assert any(not torch.equal(after[k], before[k]) for k in learnt)
    assert set(after) == set(before)
    # what ships is the moving average of the decoder's weights, not the last step's
    state = torch.load(tmp_path / "run" / "vq_decoder_ckpt.pt", weights_only=True)
    assert all(torch.equal(after[k], state["ema"][f"vq.{k}"]) for k in learnt)
    assert any(not torch.equal(after[k], state["model"][f"vq.{k}"]) for k in learnt)
    # the source is untouched and the output folder is a model folder beside it
    assert all(torch.equal(load_vq(tmp_path / "vq.safetensors").state_dict()[k], v) for k, v in before.items())
    assert (sharpened_weights(tmp_path / "run").parent / "judge.safetensors").exists()
    assert (tmp_path / "plots" / "vq_decoder_loss.png").exists()


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_weights_of_one_run(tmp_path, monkeypatch):
    _source(tmp_path)
    whole = tmp_path / "whole"
    run_recipe(RECIPE, out=tmp_path, run_dir=whole, plots=tmp_path / "plots", stage="vq-decoder")
    calls = [0]

    def clock() -> float:  # one "second" per budget check
        calls[0] += 1
        return float(calls[0])

    monkeypatch.setattr("arpg.train.run.Budget", lambda minutes: Budget(minutes, clock=clock))
    kw = dict(out=tmp_path, run_dir=tmp_path / "run", plots=tmp_path / "plots", stage="vq-decoder")
    info = run_recipe(RECIPE, max_minutes=3.5 / 60, **kw)  # steps 0-2 run, the fourth check stops it
    assert not info["finished"] and info["step"] == 3
    assert (tmp_path / "run" / "vq_decoder_latest.safetensors").exists()
    assert not sharpened_weights(tmp_path / "run").exists()
    calls[0] = 0
    assert run_recipe(RECIPE, **kw)["finished"]
    a, b = (load_vq(sharpened_weights(d)).state_dict() for d in (whole, tmp_path / "run"))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow
def test_a_checkpoint_of_another_tokenizer_is_not_resumed(tmp_path, monkeypatch):
    _source(tmp_path)
    monkeypatch.setattr("arpg.train.run.Budget", lambda minutes: Budget(minutes, clock=iter(range(99)).__next__))
    kw = dict(out=tmp_path, run_dir=tmp_path / "run", plots=tmp_path / "plots", stage="vq-decoder")
    assert not run_recipe(RECIPE, max_minutes=1.5 / 60, **kw)["finished"]
    _source(tmp_path, seed=1)  # another tokenizer where the first was
    with pytest.raises(ValueError, match="another tokenizer"):
        run_recipe(RECIPE, **kw)


def test_the_stage_needs_a_tokenizer_and_says_so(tmp_path, capsys):
    code = main(["train", "--recipe", RECIPE, "--stage", "vq-decoder", "--out", str(tmp_path / "none")])
    assert code == 2 and "error: no tokenizer to sharpen" in capsys.readouterr().err


def test_hinge_losses_and_the_adaptive_weight():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (0.25 + 0.5))
    assert hinge_g_loss(fake).item() == pytest.approx(1.0)
    last = torch.ones(3, requires_grad=True)
    rec, adv = (last * torch.tensor([3.0, 0.0, 4.0])).sum(), 10 * last.sum()
    # |grad rec| = 5, |grad adv| = 10 * sqrt(3)
    assert adaptive_weight(rec, adv, last) == pytest.approx(5 / (10 * 3**0.5 + 1e-4))
    assert adaptive_weight(rec, 0 * last.sum(), last, cap=7.0) == 7.0


def test_the_discriminator_scores_patches_and_the_losses_see_detail():
    disc = PatchDiscriminator(ch=8, layers=2)
    assert disc(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 14, 14)
    assert disc(torch.zeros(1, 3, 64, 96)).shape == (1, 1, 14, 22)
    torch.manual_seed(0)
    truth = torch.rand(2, 3, 32, 32) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(truth, 3, stride=1, padding=1, count_include_pad=False)
    assert edge_loss(truth, truth).item() == 0.0 and edge_loss(blurred, truth).item() > 0.1
    feats = FeatureLoss(Judge())
    assert not any(p.requires_grad for p in feats.parameters())
    feats.train()
    assert not feats.blocks.training  # the judge's batch-norm statistics are never updated
    assert feats(truth, truth).item() == pytest.approx(0.0, abs=1e-6) and feats(blurred, truth).item() > 0


def test_the_adversarial_weight_stays_under_its_cap():
    torch.manual_seed(0)
    vq, disc = VQModel(VQConfig.from_name("VQ-tiny")), PatchDiscriminator(ch=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    for cap in (1e-3, 1e4):
        s = Sharpening(adv_start=0, adversarial=2.0, adaptive_cap=cap, perceptual=0.0)
        _, rec_loss, loss_g, weight = sharpen_losses(vq, disc, None, x, s, step=0)
        assert 0 < weight <= 2.0 * cap * (1 + 1e-6) and loss_g.item() != rec_loss.item()
    # before adv_start the adversarial term is off
    _, rec_loss, loss_g, weight = sharpen_losses(vq, disc, None, x, Sharpening(adv_start=5), step=4)
    assert weight == 0.0 and loss_g is rec_loss
