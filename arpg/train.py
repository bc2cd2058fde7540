"""Training recipes for the shipped model: tokenizer, then ARPG, then the judge.

``python -m arpg train --recipe digits`` writes ``assets/models/{vq,arpg,judge}.safetensors``
(+ a JSON config each) and loss curves under ``docs/training/``.  Every stage saves a
resumable checkpoint under ``runs/<recipe>/``; rerunning the command continues where it
stopped and skips finished stages.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import data
from .config import ARPGConfig, VQConfig
from .judge import Judge
from .model import ARPG
from .tokenizer import VQModel, from_uint8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    vq: str = "VQ-digits"
    arpg: str = "ARPG-digits"
    seed: int = 0
    vq_steps: int = 900
    vq_batch: int = 32
    vq_lr: float = 5e-4
    token_images: int = 36_000
    arpg_steps: int = 1500  # phase 1: the "wide" data style
    arpg_batch: int = 40
    arpg_lr: float = 1e-3
    focus_steps: int = 2600  # phase 2: continues phase 1 on the "centred" style (0: no phase 2)
    focus_lr: float = 1e-3
    focus_style: str = data.GENERATOR_STYLE
    label_dropout: float = 0.1
    judge_steps: int = 300
    judge_batch: int = 128
    judge_lr: float = 2e-3
    bf16: bool = True


RECIPES = {
    "digits": Recipe(),
    # A seconds-long recipe on tiny models, for tests of the training code itself.
    "smoke": Recipe(vq="VQ-tiny", arpg="ARPG-tiny", vq_steps=6, vq_batch=4, token_images=32,
                    arpg_steps=6, arpg_batch=4, focus_steps=4, judge_steps=4, judge_batch=8, bf16=False),
}


def lr_at(step: int, total: int, peak: float, warmup_frac: float = 0.05, floor: float = 0.1) -> float:
    """Linear warm-up then cosine decay to ``floor * peak``."""
    warm = max(1, int(total * warmup_frac))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def save_weights(model: torch.nn.Module, path: Path, config: dict) -> None:
    """Write ``path`` (.safetensors) and its config sidecar ``path.with_suffix('.json')``."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(path))
    path.with_suffix(".json").write_text(json.dumps(config, indent=2) + "\n")


def _autocast(enabled: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)


class _Stage:
    """Resumable optimisation loop state: model + optimiser + step + loss history."""

    def __init__(self, name: str, run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer):
        self.name, self.model, self.opt = name, model, opt
        self.path = run_dir / f"{name}_ckpt.pt"
        self.step, self.losses = 0, []
        if self.path.exists():
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            self.step, self.losses = int(state["step"]), list(state["losses"])
            log.info("resuming %s at step %d", name, self.step)

    def update(self, loss: torch.Tensor, clip: float | None = None, save_every: int = 100) -> None:
        """One optimiser step on ``loss``; record it, show it, checkpoint every ``save_every`` steps."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.opt.step()
        self.losses.append(loss.item())
        self.step += 1
        if self.step % save_every == 0:
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                    "losses": self.losses}, tmp)
        tmp.replace(self.path)


def _plot(losses: dict[str, list[float]], title: str, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot()
    for name, ys in losses.items():
        ys = np.asarray(ys, dtype=float)
        k = max(1, len(ys) // 50)
        smooth = np.convolve(ys, np.ones(k) / k, mode="valid") if len(ys) > k else ys
        ax.plot(np.arange(len(smooth)) + k - 1, smooth, label=name)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


# -- stage 1: tokenizer ---------------------------------------------------------------
def train_vq(r: Recipe, run_dir: Path, out: Path, plots: Path) -> VQModel:
    cfg = VQConfig.from_name(r.vq)
    torch.manual_seed(r.seed)
    model = VQModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=r.vq_lr, betas=(0.9, 0.95), weight_decay=0.0)
    st = _Stage("vq", run_dir, model, opt)
    usage = torch.zeros(cfg.codebook_size)
    batches = data.batches(r.vq_batch, seed=data.TRAIN_SEED, start=st.step * r.vq_batch)
    bar = tqdm(range(st.step, r.vq_steps), desc="tokenizer", initial=st.step, total=r.vq_steps)
    for step in bar:
        imgs, _ = next(batches)
        x = from_uint8(torch.from_numpy(imgs))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, r.vq_steps, r.vq_lr)
        model.train()
        with _autocast(r.bf16):
            rec, vq_loss, commit, codes = model(x)
        rec_loss = F.mse_loss(rec.float(), x)
        st.update(rec_loss + vq_loss.float() + commit.float(), clip=1.0)
        st.losses[-1] = rec_loss.item()  # the curve shows the reconstruction error
        usage += torch.bincount(codes.flatten(), minlength=cfg.codebook_size).float()
        if step == 0 or (step + 1) % 50 == 0:
            _restart_dead_codes(model, x, usage, first=step == 0)
            usage.zero_()
        psnr = 10 * math.log10(4.0 / max(rec_loss.item(), 1e-10))
        bar.set_postfix(mse=f"{rec_loss.item():.4f}", psnr=f"{psnr:.1f}")
    st.save()
    save_weights(model, out / "vq.safetensors", cfg.to_dict())
    _plot({"reconstruction mse": st.losses}, "tokenizer", plots / "vq_loss.png")
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
@torch.no_grad()
def encode_dataset(r: Recipe, vq: VQModel, run_dir: Path, style: str = "wide") -> tuple[torch.Tensor, torch.Tensor]:
    path = run_dir / ("tokens.pt" if style == "wide" else f"tokens_{style}.pt")
    if path.exists():
        d = torch.load(path, map_location="cpu", weights_only=True)
        return d["codes"], d["labels"]
    vq.eval()
    codes, labels = [], []
    bs = 256
    for i in tqdm(range(0, r.token_images, bs), desc=f"encoding ({style})"):
        imgs, labs = data.sample(range(i, min(i + bs, r.token_images)), seed=data.TRAIN_SEED + 1, style=style)
        with _autocast(r.bf16):
            c = vq.encode(from_uint8(torch.from_numpy(imgs)))
        codes.append(c.flatten(1).to(torch.int16))
        labels.append(torch.from_numpy(labs))
    out = torch.cat(codes), torch.cat(labels)
    torch.save({"codes": out[0], "labels": out[1]}, path)
    return out


# -- stage 3: ARPG --------------------------------------------------------------------
def new_arpg_optimizer(model: ARPG, lr: float) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95))


def fit_arpg(model: ARPG, st: _Stage, codes: torch.Tensor, labels: torch.Tensor, steps: int, lr: float,
             batch: int, label_dropout: float, seed: int, bf16: bool, desc: str = "arpg") -> None:
    """Teacher-forced random-order training: every sequence gets its own random order."""
    cfg = model.cfg
    N = codes.shape[1]
    bar = tqdm(range(st.step, steps), desc=desc, initial=st.step, total=steps)
    for step in bar:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)  # each step's draws depend on step only
        idx = torch.randint(0, len(codes), (batch,), generator=g)
        tokens, lab = codes[idx].long(), labels[idx].clone()
        drop = torch.rand(batch, generator=g) < label_dropout
        lab[drop] = cfg.num_classes  # the null class
        order = torch.rand(batch, N, generator=g).argsort(dim=1)
        for group in st.opt.param_groups:
            group["lr"] = lr_at(step, steps, lr)
        model.train()
        with _autocast(bf16):
            logits = model(tokens, lab, order)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tokens.gather(1, order).flatten())
        st.update(loss, clip=1.0, save_every=50)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    st.save()


def train_arpg(r: Recipe, vq: VQModel, run_dir: Path, out: Path, plots: Path) -> ARPG:
    """Phase 1 on the wide data style, then (``focus_steps``) phase 2 on ``focus_style``,
    starting from phase 1's weights with a fresh optimiser and schedule."""
    cfg = ARPGConfig.from_name(r.arpg)
    torch.manual_seed(r.seed)
    model = ARPG(cfg).init_weights()
    first = _Stage("arpg", run_dir, model, new_arpg_optimizer(model, r.arpg_lr))
    curves = {}
    if first.step < r.arpg_steps:
        codes, labels = encode_dataset(r, vq, run_dir)
        fit_arpg(model, first, codes, labels, r.arpg_steps, r.arpg_lr, r.arpg_batch, r.label_dropout, r.seed,
                 r.bf16, desc="arpg (wide)")
    curves["phase 1 (wide)"] = first.losses
    if r.focus_steps:
        second = _Stage("arpg_focus", run_dir, model, new_arpg_optimizer(model, r.focus_lr))
        if second.step < r.focus_steps:
            codes, labels = encode_dataset(r, vq, run_dir, style=r.focus_style)
            fit_arpg(model, second, codes, labels, r.focus_steps, r.focus_lr, r.arpg_batch, r.label_dropout,
                     r.seed + 1, r.bf16, desc=f"arpg ({r.focus_style})")
        curves[f"phase 2 ({r.focus_style})"] = [math.nan] * len(first.losses) + second.losses
    save_weights(model, out / "arpg.safetensors", cfg.to_dict())
    _plot(curves, "ARPG", plots / "arpg_loss.png")
    return model.eval()


# -- stage 4: judge ---------------------------------------------------------------------
def train_judge(r: Recipe, run_dir: Path, out: Path, plots: Path) -> Judge:
    torch.manual_seed(r.seed)
    model = Judge()
    opt = torch.optim.AdamW(model.parameters(), lr=r.judge_lr, weight_decay=1e-4)
    st = _Stage("judge", run_dir, model, opt)
    batches = data.batches(r.judge_batch, seed=data.TRAIN_SEED + 2, start=st.step * r.judge_batch)
    bar = tqdm(range(st.step, r.judge_steps), desc="judge", initial=st.step, total=r.judge_steps)
    for step in bar:
        imgs, labs = next(batches)
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
    st.save()
    save_weights(model, out / "judge.safetensors", {"family": "judge", "num_classes": 10})
    _plot({"cross-entropy": st.losses}, "judge", plots / "judge_loss.png")
    return model.eval()


def run_recipe(name: str, out: str | Path = "assets/models", run_dir: str | Path | None = None,
               plots: str | Path = "docs/training", threads: int | None = None) -> dict:
    """Run every stage of recipe ``name``; finished stages (weights on disk) are skipped."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(RECIPES)}")
    r = RECIPES[name]
    if threads:
        torch.set_num_threads(threads)
    out, plots = Path(out), Path(plots)
    run_dir = Path(run_dir or Path("runs") / name)
    run_dir.mkdir(parents=True, exist_ok=True)
    times = {}
    t0 = time.time()
    if (out / "vq.safetensors").exists():
        vq = _load(VQModel(VQConfig.from_name(r.vq)), out / "vq.safetensors")
    else:
        vq = train_vq(r, run_dir, out, plots)
    times["tokenizer_s"] = time.time() - t0
    t0 = time.time()
    if not (out / "arpg.safetensors").exists():
        train_arpg(r, vq, run_dir, out, plots)
    times["arpg_s"] = time.time() - t0
    t0 = time.time()
    if not (out / "judge.safetensors").exists():
        train_judge(r, run_dir, out, plots)
    times["judge_s"] = time.time() - t0
    info = {"recipe": name, **asdict(r), **times}
    (run_dir / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _load(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()
