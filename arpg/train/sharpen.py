"""``python -m arpg train --recipe R --stage vq-decoder``: a sharper decoder for a recipe's trained tokenizer.

A tokenizer trained on a pixel loss alone decodes blurred images: every detail its tokens cannot
pin down is averaged away.  This stage fine-tunes only the decoder (with the 1x1 convolution
before it) against the losses of :class:`~arpg.train.recipes.Sharpening`; the encoder, the
convolution after it and the codebook stay frozen, bit for bit.  So every image keeps its tokens
and the codebook usage is what it was: the ARPG model trained on those tokens stays valid, with no
retraining, and everything it decodes (samples, tasks) comes out sharper.

It reads the tokenizer (and the judge, for the feature loss) from ``<out>`` (the recipe's shipped
folder by default) and writes ``<run_dir>/vq_decoder/``: the new ``vq.safetensors`` beside copies
of ``<out>``'s ARPG model and judge, a model folder that ``--model DIR`` loads as it is.  It never
writes into ``<out>``: adopting the new decoder is a copy of one file.  The resumable state is
``<run_dir>/vq_decoder_ckpt.pt`` (decoder, discriminator, optimiser, the moving average of the
weights, which is what ships); a run stopped by ``--max-minutes`` leaves the decoder so far in
``<run_dir>/vq_decoder_latest.safetensors``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..checkpoints import save_checkpoint
from ..config import VQConfig
from ..data.sets import batch_for, canvas_at, dataset, images
from ..judge import load_judge
from ..measure.sharpness import sharpness_ratio
from ..tokenizer import VQModel, from_uint8, to_uint8
from .adversarial import PatchDiscriminator, adaptive_weight, hinge_d_loss, hinge_g_loss
from .loop import NO_LIMIT, Budget, Stage, autocast, load_weights, lr_at
from .perceptual import FeatureLoss, edge_loss
from .plots import plot_curves
from .recipes import Recipe, Sharpening

log = logging.getLogger(__name__)
STAGE = "vq_decoder"
SPLIT = 3  # the training images' split: TRAIN_SEED + 3 (the tokenizer, tokens and judge use + 0, 1, 2)
SAVE_EVERY = 25


def decoder_parameters(vq: VQModel) -> list[nn.Parameter]:
    """What this stage trains: the decoder and the 1x1 convolution before it (nothing that makes a token)."""
    return [*vq.post_quant_conv.parameters(), *vq.decoder.parameters()]


def frozen_state(vq: VQModel) -> dict[str, torch.Tensor]:
    """Copies of every tensor that decides an image's tokens: encoder, ``quant_conv`` and codebook."""
    keep = ("encoder.", "quant_conv.", "quantize.")
    return {k: v.detach().clone() for k, v in vq.state_dict().items() if k.startswith(keep)}


def _check_same_tokenizer(vq: VQModel, frozen: dict[str, torch.Tensor], ckpt: Path) -> None:
    """``ValueError`` when a resumed checkpoint was made from another tokenizer than the one read now."""
    now = vq.state_dict()
    if any(not torch.equal(now[k], v) for k, v in frozen.items()):
        raise ValueError(f"{ckpt} fine-tunes another tokenizer than the one read now; delete it to start again")


def _losses(vq: VQModel, disc: nn.Module, feats: FeatureLoss | None, x: torch.Tensor, s: Sharpening, step: int):
    """The decoder's reconstruction of ``x`` from its (frozen) tokens, the reconstruction terms, and the
    generator's whole loss (reconstruction + adaptively weighted adversarial term from ``s.adv_start``)."""
    with torch.no_grad():
        zq = vq.quantize.lookup(vq.encode(x))
    rec = vq.decode_latent(zq).float()
    rec_loss = s.l1 * (rec - x).abs().mean() + s.edge * edge_loss(rec, x)
    if feats is not None:
        rec_loss = rec_loss + s.perceptual * feats(rec, x).float()
    weight = 0.0
    if step >= s.adv_start and s.adversarial > 0:
        adv = hinge_g_loss(disc(rec).float())
        weight = s.adversarial * adaptive_weight(rec_loss, adv, vq.decoder.conv_out.weight, s.adaptive_cap)
        return rec, rec_loss, rec_loss + weight * adv, weight
    return rec, rec_loss, rec_loss, weight


def _batch(r: Recipe, step: int, batch: int) -> torch.Tensor:
    """Training batch ``step``: the recipe's tokenizer canvases in turn, images of split TRAIN_SEED + SPLIT."""
    canvas = canvas_at(r.vq_canvases, step)
    lo = step * batch  # image indices depend on the step only
    n = batch_for(canvas, batch, r.vq_canvases[0])
    imgs, _ = images(r.data, range(lo, lo + n), dataset(r.data).TRAIN_SEED + SPLIT, canvas, r.style)
    return from_uint8(torch.from_numpy(imgs))


def _batch_stats(rec: torch.Tensor, x: torch.Tensor) -> dict[str, str]:
    """PSNR and sharpness ratio of one batch, for the progress bar."""
    made, truth = to_uint8(rec.detach()).numpy(), to_uint8(x).numpy()
    mse = np.mean((made.astype(np.float64) - truth) ** 2)
    return {"psnr": f"{10 * np.log10(255.0**2 / max(mse, 1e-10)):.2f}", "sharp": f"{sharpness_ratio(made, truth):.2f}"}


def _train_step(
    vq: VQModel,
    disc: nn.Module,
    feats: FeatureLoss | None,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    s: Sharpening,
    step: int,
    bf16: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """One step of the decoder and the discriminator on batch ``x`` (one optimiser, a parameter group
    each, each clipped on its own); returns the reconstruction, its loss, the discriminator's loss and
    the adversarial term's weight."""
    vq.train()
    disc.train()
    with autocast(bf16):
        rec, rec_loss, loss_g, weight = _losses(vq, disc, feats, x, s, step)
    opt.zero_grad(set_to_none=True)
    loss_g.backward()
    disc.zero_grad(set_to_none=True)  # the generator's adversarial term must not train the discriminator
    with autocast(bf16):
        loss_d = hinge_d_loss(disc(x).float(), disc(rec.detach()).float())
    loss_d.backward()
    torch.nn.utils.clip_grad_norm_(decoder_parameters(vq), 1.0)
    torch.nn.utils.clip_grad_norm_(disc.parameters(), 1.0)
    opt.step()
    return rec, rec_loss, loss_d, weight


def fit_decoder(r: Recipe, vq: VQModel, judge_path: Path | None, run_dir: Path, budget: Budget = NO_LIMIT) -> Stage:
    """Fine-tune ``vq``'s decoder in place by ``r.sharpen`` from the checkpoint's step (if any) on; returns
    the stage (its ``step`` tells whether it reached ``r.sharpen.steps``; its state is saved either way)."""
    s = r.sharpen
    torch.manual_seed(r.seed)
    vq.requires_grad_(False)
    dec = decoder_parameters(vq)
    for p in dec:
        p.requires_grad_(True)
    disc = PatchDiscriminator(s.disc_ch, s.disc_layers)
    feats = FeatureLoss(load_judge(judge_path)) if judge_path is not None and s.perceptual > 0 else None
    groups = [{"params": dec, "lr": s.lr}, {"params": list(disc.parameters()), "lr": s.disc_lr}]
    opt = torch.optim.AdamW(groups, betas=(0.5, 0.9), weight_decay=0.0)
    frozen = frozen_state(vq)
    st = Stage(STAGE, run_dir, nn.ModuleDict({"vq": vq, "disc": disc}), opt, ema=s.ema)
    _check_same_tokenizer(vq, frozen, st.path)
    bar = tqdm(range(st.step, s.steps), desc="tokenizer decoder", initial=st.step, total=s.steps)
    for step in bar:
        if budget.spent():
            break
        x = _batch(r, step, s.batch)
        for g, peak in zip(opt.param_groups, (s.lr, s.disc_lr), strict=True):
            g["lr"] = lr_at(step, s.steps, peak)
        rec, rec_loss, loss_d, weight = _train_step(vq, disc, feats, opt, x, s, step, r.bf16)
        st.record(rec_loss, save_every=SAVE_EVERY)
        if step % 10 == 0 or step == s.steps - 1:
            bar.set_postfix(
                rec=f"{rec_loss.item():.4f}", d=f"{loss_d.item():.3f}", w=f"{weight:.3g}", **_batch_stats(rec, x)
            )
    bar.close()
    st.save()
    vq.eval()
    return st


def _shipped(st: Stage, vq: VQModel) -> dict[str, torch.Tensor]:
    """The tokenizer's weights to write: the moving average of the stage's weights when it keeps one
    (the frozen tensors average to themselves), else the live ones."""
    if st.ema is None:
        return vq.state_dict()
    live = vq.state_dict()
    return {k: st.ema[f"vq.{k}"].to(v.dtype) for k, v in live.items()}


def run_vq_decoder(name: str, r: Recipe, out: Path, run_dir: Path, plots: Path, budget: Budget = NO_LIMIT) -> dict:
    """Fine-tune the decoder of ``out/vq.safetensors`` (see the module's docstring); returns what ran."""
    source = out / "vq.safetensors"
    if not source.is_file():
        raise ValueError(f"no tokenizer to sharpen: {source} does not exist (train the recipe's tokenizer first)")
    vq = load_weights(VQModel(VQConfig.from_name(r.vq)), source)
    judge = out / "judge.safetensors"
    if r.sharpen.perceptual > 0 and not judge.is_file():
        raise ValueError(f"the feature loss needs the recipe's judge: {judge} does not exist")
    st = fit_decoder(r, vq, judge if judge.is_file() else None, run_dir, budget)
    done = st.step >= r.sharpen.steps
    dest = sharpened_weights(run_dir).parent
    if done:
        save_checkpoint(_shipped(st, vq), dest / "vq.safetensors", vq.cfg)
        for f in ("arpg.safetensors", "arpg.json", "judge.safetensors", "judge.json"):
            if (out / f).is_file():
                shutil.copy2(out / f, dest / f)
        plot_curves({"reconstruction loss": st.losses}, "tokenizer decoder", plots / "vq_decoder_loss.png")
    else:
        save_checkpoint(_shipped(st, vq), run_dir / "vq_decoder_latest.safetensors", vq.cfg)
        log.warning(
            "stopped the decoder at step %d of %d (time budget spent); run again to continue; the decoder so far "
            "is in %s",
            st.step,
            r.sharpen.steps,
            run_dir / "vq_decoder_latest.safetensors",
        )
    return {"recipe": name, "stage": "vq-decoder", "step": st.step, "finished": done, "weights": str(dest)}


def sharpened_weights(run_dir: Path) -> Path:
    """Where :func:`run_vq_decoder` writes the finished decoder's tokenizer for ``run_dir``."""
    return run_dir / "vq_decoder" / "vq.safetensors"
