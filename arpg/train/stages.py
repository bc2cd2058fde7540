"""The training stages of a recipe: tokenizer, token data set, the image model's phases (ARPG, or LlamaGen in
raster order: :mod:`arpg.train.raster`), judge.

Each stage resumes from its ``<run_dir>/<stage>_ckpt.pt`` and ends by writing its weights
with :func:`arpg.checkpoints.save_checkpoint` (``.safetensors`` + ``.json`` config).  Each
stops early, its state saved, when the run's :class:`~arpg.train.loop.Budget` is spent, and
then returns None.  Images come from the recipe's data set (:mod:`arpg.data.sets`), each
batch on one of the recipe's canvases.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..checkpoints import save_checkpoint
from ..config import ARPGConfig, LlamaGenConfig, VQConfig
from ..data.sets import CanvasSpec, batch_for, canvas_at, dataset, images
from ..judge import Judge
from ..llamagen import LlamaGen
from ..model import ARPG
from ..state_dicts import read_state_dict
from ..tokenizer import VQModel, from_uint8
from .loop import (
    NO_LIMIT,
    Budget,
    Stage,
    TokenSet,
    autocast,
    device_of,
    fit_arpg,
    load_weights,
    lr_at,
    new_arpg_optimizer,
    save_training_state,
)
from .plots import plot_arpg, plot_curves
from .raster import fit_raster, init_llamagen, raster_config
from .recipes import Phase, Recipe, arpg_phases

log = logging.getLogger(__name__)


def _stopped(st: Stage, total: int) -> bool:
    """Whether ``st`` stopped before ``total`` steps (its state is saved); logs so."""
    if st.step >= total:
        return False
    log.warning("stopped %s at step %d of %d (time budget spent); run again to continue", st.name, st.step, total)
    return True


# -- stage 1: tokenizer ---------------------------------------------------------------
def train_vq(r: Recipe, run_dir: Path, out: Path, plots: Path, budget: Budget = NO_LIMIT) -> VQModel | None:
    """Train the recipe's VQ tokenizer on ``r.vq_canvases`` in turn; writes ``out/vq.safetensors`` and
    ``plots/vq_loss.png``.  None when ``budget`` ran out first."""
    cfg = VQConfig.from_name(r.vq)
    torch.manual_seed(r.seed)
    model = VQModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=r.vq_lr, betas=(0.9, 0.95), weight_decay=0.0)
    st = Stage("vq", run_dir, model, opt)
    usage = torch.zeros(cfg.codebook_size)
    seed = dataset(r.data).TRAIN_SEED
    bar = tqdm(range(st.step, r.vq_steps), desc="tokenizer", initial=st.step, total=r.vq_steps)
    for step in bar:
        if budget.spent():
            break
        canvas = canvas_at(r.vq_canvases, step)
        lo = step * r.vq_batch  # image indices depend on the step only
        imgs, _ = images(r.data, range(lo, lo + batch_for(canvas, r.vq_batch, r.vq_canvases[0])), seed, canvas, r.style)
        x = from_uint8(torch.from_numpy(imgs))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, r.vq_steps, r.vq_lr)
        model.train()
        with autocast(r.bf16):
            rec, vq_loss, commit, codes = model(x)
        rec_loss = F.mse_loss(rec.float(), x)
        st.update(rec_loss + vq_loss.float() + commit.float(), clip=1.0)
        st.losses[-1] = rec_loss.item()  # the curve shows the reconstruction error
        usage += torch.bincount(codes.flatten(), minlength=cfg.codebook_size).float()
        if step == 0 or (step + 1) % 50 == 0:
            _restart_dead_codes(model, x, usage, first=step == 0)
            usage.zero_()
        psnr = 10 * math.log10(4.0 / max(rec_loss.item(), 1e-10))
        bar.set_postfix(mse=f"{rec_loss.item():.4f}", psnr=f"{psnr:.1f}", canvas=f"{x.shape[2]}x{x.shape[3]}")
    bar.close()
    st.save()
    if _stopped(st, r.vq_steps):
        return None
    save_checkpoint(model, out / "vq.safetensors", cfg)
    plot_curves({"reconstruction mse": st.losses}, "tokenizer", plots / "vq_loss.png")
    return model.eval()


@torch.no_grad()
def _restart_dead_codes(model: VQModel, x: torch.Tensor, usage: torch.Tensor, first: bool) -> None:
    """Move unused codebook rows onto random encoder outputs of the current batch."""
    dead = torch.arange(len(usage)) if first else (usage == 0).nonzero().flatten()
    if len(dead) == 0:
        return
    z = F.normalize(model.latent(x.float()).float(), dim=1).permute(0, 2, 3, 1).flatten(0, 2)
    pick = torch.randint(0, len(z), (len(dead),))
    model.quantize.embedding.weight.data[dead] = z[pick].to(model.quantize.embedding.weight.dtype)


# -- stage 2: token data set --------------------------------------------------------------
def _render_chunk(args: tuple[str, int, int, str | None, CanvasSpec]) -> tuple[np.ndarray, np.ndarray]:
    data, lo, hi, style, canvas = args
    return images(data, range(lo, hi), dataset(data).TRAIN_SEED + 1, canvas, style)


def _rendered(jobs: list[tuple], workers: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The image chunks of ``jobs`` (each the arguments of :func:`_render_chunk`), in order, rendered by
    ``workers`` processes."""
    if workers <= 1:
        yield from map(_render_chunk, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_render_chunk, jobs)


def token_cache(r: Recipe, run_dir: Path, style: str | None, n: int, canvas: CanvasSpec) -> Path:
    """The token cache of ``n`` images of ``style`` on ``canvas``: ``tokens[_<style>][_<canvas tag>][_<n>].pt``."""
    parts = [
        "tokens",
        *([style] if style not in ("wide", None) else []),
        *([canvas.tag] if canvas.tag else []),
        *([str(n)] if n != r.token_images else []),
    ]
    return run_dir / f"{'_'.join(parts)}.pt"


@torch.no_grad()
def encode_dataset(
    r: Recipe,
    vq: VQModel,
    run_dir: Path,
    style: str | None = "wide",
    n_images: int | None = None,
    workers: int = 1,
    canvas: CanvasSpec = CanvasSpec(),
    first: int = 0,
) -> TokenSet:
    """Tokens of training images ``first``..``first + n`` of ``style`` on ``canvas`` (int16, raster order),
    cached in ``run_dir``."""
    n = n_images or r.token_images
    path = token_cache(r, run_dir, style, n, canvas)
    grid = canvas.grid(vq.cfg.downsample)
    if path.exists():
        d = torch.load(path, map_location="cpu", weights_only=True)
        return TokenSet(d["codes"], d["labels"], grid)
    vq.eval()
    device = device_of(vq)
    bs = max(1, (256 if device.type == "cpu" else 2048) * CanvasSpec().pixels // canvas.pixels)
    jobs = [(r.data, lo, min(lo + bs, first + n), style, canvas) for lo in range(first, first + n, bs)]
    codes, labels = [], []
    desc = f"encoding ({style or r.data}{', ' + canvas.tag if canvas.tag else ''})"
    for imgs, labs in tqdm(_rendered(jobs, workers), desc=desc, total=math.ceil(n / bs)):
        with autocast(r.bf16, device):
            c = vq.encode(from_uint8(torch.from_numpy(imgs)).to(device))
        codes.append(c.flatten(1).to(torch.int16).cpu())
        labels.append(torch.from_numpy(labs))
    out = TokenSet(torch.cat(codes), torch.cat(labels), grid)
    save_training_state({"codes": out.codes, "labels": out.labels}, path)
    return out


def _token_sets(
    r: Recipe, vq: VQModel, run_dir: Path, ph: Phase, workers: int, budget: Budget
) -> list[TokenSet] | None:
    """The phase's tokens, one set per canvas, each of other images (canvas k: images k*n..(k+1)*n), each
    cached as it is made; None when ``budget`` ran out first."""
    sets = []
    for k, canvas in enumerate(ph.canvases):
        if budget.spent() and not token_cache(r, run_dir, ph.style, ph.images, canvas).exists():
            log.warning("stopped before encoding %s (time budget spent); run again to continue", canvas)
            return None
        sets.append(encode_dataset(r, vq, run_dir, ph.style, ph.images, workers, canvas, first=k * ph.images))
    return sets


# -- stage 3: the image model (ARPG, or LlamaGen in raster order) ------------------------
def _resume_point(phases: list[Phase], run_dir: Path, title: str = "ARPG") -> int:
    """Index of the first phase to run: the one after the last with weights in ``run_dir``; logs those skipped."""
    done = [i for i, ph in enumerate(phases) if (run_dir / f"{ph.name}.safetensors").exists()]
    if not done:
        return 0
    last = run_dir / f"{phases[done[-1]].name}.safetensors"
    for ph in phases[: done[-1] + 1]:
        again = f"{run_dir / ph.name}.safetensors and {run_dir / ph.name}_ckpt.pt"
        log.warning(
            "skipping %s phase %s: training continues from %s; to train the phase again delete %s "
            "and the same files of the phases after it",
            title,
            ph.name,
            last,
            again,
        )
    return done[-1] + 1


def arpg_config(r: Recipe, factor: int) -> ARPGConfig:
    """The recipe's ARPG preset, recording the token grids of its canvases (``factor`` pixels per token)."""
    grids = tuple(dict.fromkeys(c.grid(factor) for c in r.canvases))
    return replace(ARPGConfig.from_name(r.arpg), trained_grids=grids)


def model_config(r: Recipe, factor: int) -> ARPGConfig | LlamaGenConfig:
    """The config of the recipe's image model: ARPG's (:func:`arpg_config`) or LlamaGen's (:func:`raster_config`)."""
    return raster_config(r, factor) if r.family == "llamagen" else arpg_config(r, factor)


def new_model(r: Recipe, cfg: ARPGConfig | LlamaGenConfig) -> ARPG | LlamaGen:
    """The recipe's image model of config ``cfg``, initialised from seed ``r.seed`` as its family trains."""
    torch.manual_seed(r.seed)
    return init_llamagen(LlamaGen(cfg)) if r.family == "llamagen" else ARPG(cfg).init_weights()


def _stop_phase(r: Recipe, st: Stage, steps: int, cfg: ARPGConfig | LlamaGenConfig, run_dir: Path, plots: Path) -> None:
    """A phase stopped by the budget: its weights so far (the moving average if it keeps one) go to
    ``<run_dir>/<phase>_latest.safetensors`` (to try them), and the loss curve is drawn."""
    latest = run_dir / f"{st.name}_latest.safetensors"
    save_checkpoint(
        st.ema if st.ema is not None else st.model,
        latest,
        r.arpg_meta(cfg),
    )
    _stopped(st, steps)
    log.warning("the weights so far are in %s", latest)
    plot_arpg(r, run_dir, plots / f"{r.prefix}_loss.png")


def train_model(
    r: Recipe,
    vq: VQModel,
    run_dir: Path,
    out: Path,
    plots: Path,
    device: str | torch.device = "cpu",
    workers: int = 1,
    budget: Budget = NO_LIMIT,
) -> ARPG | LlamaGen | None:
    """Run the phases of the recipe's image model (``arpg_phases``): ARPG's in random orders, a LlamaGen
    model's in raster order (``r.family``).  A finished phase leaves ``run_dir/<phase>.safetensors``; a
    rerun starts after the last finished one.  Writes ``out/arpg.safetensors`` (the file name of every
    image model of a model folder, :data:`arpg.zoo.MODEL_FILES`) and its JSON.  None when ``budget`` ran
    out first."""
    cfg = model_config(r, vq.cfg.downsample)
    if cfg.vocab_size != vq.cfg.codebook_size:  # more ids would sample codes the tokenizer cannot decode
        raise ValueError(f"{r.arpg} has {cfg.vocab_size} token ids; the tokenizer has {vq.cfg.codebook_size} codes")
    model = new_model(r, cfg).to(device)
    fit = fit_raster if r.family == "llamagen" else fit_arpg
    phases = arpg_phases(r)
    start = _resume_point(phases, run_dir, r.model_title.removesuffix(" model"))
    final = None  # what ships when it is not the live weights: the last phase's moving average
    if start:
        last = phases[start - 1]
        load_weights(model, run_dir / f"{last.name}.safetensors")
        if last.ema and (run_dir / f"{last.name}_ema.safetensors").exists():
            final = read_state_dict(run_dir / f"{last.name}_ema.safetensors")
    for ph in phases[start:]:
        st = Stage(ph.name, run_dir, model, new_arpg_optimizer(model, ph.lr), ema=ph.ema)
        if st.step < ph.steps:
            sets = _token_sets(r, vq, run_dir, ph, workers, budget)
            desc = f"{ph.name} ({ph.style or r.data})"
            if sets is None or not fit(
                model, st, sets, ph.steps, ph.lr, ph.batch, r.label_dropout, ph.seed, r.bf16, desc=desc, budget=budget
            ):
                _stop_phase(r, st, ph.steps, cfg, run_dir, plots)
                return None
        final = st.ema
        save_checkpoint(model, run_dir / f"{ph.name}.safetensors", cfg)
        if st.ema is not None:
            save_checkpoint(st.ema, run_dir / f"{ph.name}_ema.safetensors", cfg)
        (run_dir / f"{ph.name}_losses.json").write_text(json.dumps(st.losses))
    if final is not None:
        model.load_state_dict(final)
    shipped = {
        k: v.to(torch.bfloat16) if r.ship_bf16 and v.is_floating_point() else v for k, v in model.state_dict().items()
    }
    save_checkpoint(shipped, out / "arpg.safetensors", r.arpg_meta(cfg))
    plot_arpg(r, run_dir, plots / f"{r.prefix}_loss.png")
    return model.eval()


# -- stage 4: judge ---------------------------------------------------------------------
def judge_config(r: Recipe) -> dict:
    """The judge's JSON sidecar: its family, classes and data set."""
    return {"family": "judge", "num_classes": len(dataset(r.data).CLASS_NAMES), "data": r.data}


def train_judge(r: Recipe, run_dir: Path, out: Path, plots: Path, budget: Budget = NO_LIMIT) -> Judge | None:
    """Train the judge classifier on 64x64 images of the recipe's data (and style); writes
    ``out/judge.safetensors`` and its loss plot.  None when ``budget`` ran out first."""
    torch.manual_seed(r.seed)
    model = Judge()
    opt = torch.optim.AdamW(model.parameters(), lr=r.judge_lr, weight_decay=1e-4)
    st = Stage("judge", run_dir, model, opt)
    seed = dataset(r.data).TRAIN_SEED + 2
    bar = tqdm(range(st.step, r.judge_steps), desc="judge", initial=st.step, total=r.judge_steps)
    for step in bar:
        if budget.spent():
            break
        imgs, labs = images(r.data, range(step * r.judge_batch, (step + 1) * r.judge_batch), seed, style=r.style)
        x = from_uint8(torch.from_numpy(imgs))
        # Mild blur on half the batch so the judge is not thrown by slightly soft generated images.
        if step % 2:
            x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, r.judge_steps, r.judge_lr)
        model.train()
        loss = F.cross_entropy(model(x), torch.from_numpy(labs))
        st.update(loss)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    st.save()
    if _stopped(st, r.judge_steps):
        return None
    save_checkpoint(model, out / "judge.safetensors", judge_config(r))
    plot_curves({"cross-entropy": st.losses}, "judge", plots / "judge_loss.png")
    return model.eval()
