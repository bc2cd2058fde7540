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
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
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
    # phase 3: continues phase 2 on many more images of the focus style, with an exponential moving
    # average of the weights (shipped when polish_ema > 0).  Sized for a GPU: 6.5 min on one H200
    # (scripts/gpu_polish.py); about 41 hours at 2.2 s per 40 images on the 2-core CPU.  0 steps: none.
    polish_steps: int = 10_546
    polish_batch: int = 256
    polish_lr: float = 1e-3
    polish_images: int = 600_000
    polish_ema: float = 0.999
    label_dropout: float = 0.1
    judge_steps: int = 300
    judge_batch: int = 128
    judge_lr: float = 2e-3
    bf16: bool = True


RECIPES = {
    "digits": Recipe(),
    # A seconds-long recipe on tiny models, for tests of the training code itself.
    "smoke": Recipe(vq="VQ-tiny", arpg="ARPG-tiny", vq_steps=6, vq_batch=4, token_images=32,
                    arpg_steps=6, arpg_batch=4, focus_steps=4, polish_steps=5, polish_batch=6, polish_images=48,
                    polish_ema=0.9, judge_steps=4, judge_batch=8, bf16=False),
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
    _save_state(model.state_dict(), path, config)


def _save_state(state: dict[str, torch.Tensor], path: Path, config: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(path))
    path.with_suffix(".json").write_text(json.dumps(config, indent=2) + "\n")


def _autocast(enabled: bool, device: torch.device | str = "cpu"):
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class _Stage:
    """Resumable optimisation loop state: model + optimiser + step + loss history
    (+ an exponential moving average of the weights when ``ema`` > 0)."""

    def __init__(self, name: str, run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                 ema: float = 0.0):
        self.name, self.model, self.opt, self.ema_decay = name, model, opt, ema
        self.path = run_dir / f"{name}_ckpt.pt"
        self.step, self._losses, self._pending = 0, [], []
        self.ema = {k: v.detach().float().clone() for k, v in model.state_dict().items()} if ema > 0 else None
        if self.path.exists():
            state = torch.load(self.path, map_location=_device_of(model), weights_only=True)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            self.step, self._losses = int(state["step"]), list(state["losses"])
            if self.ema is not None and "ema" in state:
                self.ema = {k: v.float() for k, v in state["ema"].items()}
            log.info("resuming %s at step %d", name, self.step)

    @property
    def losses(self) -> list[float]:
        """Loss per step so far (device values are read in bulk, not one sync per step)."""
        if self._pending:
            self._losses.extend(torch.stack(self._pending).float().cpu().tolist())
            self._pending = []
        return self._losses

    def update(self, loss: torch.Tensor, clip: float | None = None, save_every: int = 100) -> None:
        """One optimiser step on ``loss``; record it, checkpoint every ``save_every`` steps."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.opt.step()
        if self.ema is not None:
            live = self.model.state_dict()
            torch._foreach_lerp_(list(self.ema.values()), [live[k].float() for k in self.ema], 1 - self.ema_decay)
        self._pending.append(loss.detach())
        self.step += 1
        if self.step % save_every == 0:
            self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        state = {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "step": self.step,
                 "losses": self.losses}
        if self.ema is not None:
            state["ema"] = self.ema
        torch.save(state, tmp)
        tmp.replace(self.path)


def _plot(losses: dict[str, list[float] | tuple[np.ndarray, list[float]]], title: str, path: Path,
          xlabel: str = "step") -> None:
    """Smoothed curves, each given as ys (x = step) or as (xs, ys)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot()
    for name, curve in losses.items():
        xs, ys = curve if isinstance(curve, tuple) else (np.arange(len(curve)), curve)
        ys = np.asarray(ys, dtype=float)
        k = max(1, len(ys) // 50)
        smooth = np.convolve(ys, np.ones(k) / k, mode="valid") if len(ys) > k else ys
        ax.plot(np.asarray(xs)[k - 1:][:len(smooth)], smooth, label=name)
    ax.set_xlabel(xlabel)
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
def _render_chunk(args: tuple[int, int, str]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi, style = args
    return data.sample(range(lo, hi), seed=data.TRAIN_SEED + 1, style=style)


def _rendered(n: int, style: str, chunk: int, workers: int):
    """Chunks of training images 0..n of ``style``, in order, rendered by ``workers`` processes."""
    jobs = [(lo, min(lo + chunk, n), style) for lo in range(0, n, chunk)]
    if workers <= 1:
        yield from map(_render_chunk, jobs)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(_render_chunk, jobs)


@torch.no_grad()
def encode_dataset(r: Recipe, vq: VQModel, run_dir: Path, style: str = "wide", n_images: int | None = None,
                   workers: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens (n, 256) int16 and labels of training images 0..n of ``style``, cached in ``run_dir``."""
    n = n_images or r.token_images
    name = "tokens" if style == "wide" else f"tokens_{style}"
    path = run_dir / (f"{name}.pt" if n == r.token_images else f"{name}_{n}.pt")
    if path.exists():
        d = torch.load(path, map_location="cpu", weights_only=True)
        return d["codes"], d["labels"]
    vq.eval()
    device = _device_of(vq)
    bs = 256 if device.type == "cpu" else 2048
    codes, labels = [], []
    for imgs, labs in tqdm(_rendered(n, style, bs, workers), desc=f"encoding ({style})", total=math.ceil(n / bs)):
        with _autocast(r.bf16, device):
            c = vq.encode(from_uint8(torch.from_numpy(imgs)).to(device))
        codes.append(c.flatten(1).to(torch.int16).cpu())
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
    device = model.device
    N = codes.shape[1]
    bar = tqdm(range(st.step, steps), desc=desc, initial=st.step, total=steps)
    for step in bar:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)  # each step's draws depend on step only
        idx = torch.randint(0, len(codes), (batch,), generator=g)
        tokens, lab = codes[idx].long(), labels[idx].clone()
        drop = torch.rand(batch, generator=g) < label_dropout
        lab[drop] = cfg.num_classes  # the null class
        order = torch.rand(batch, N, generator=g).argsort(dim=1)
        tokens, lab, order = tokens.to(device), lab.to(device), order.to(device)
        for group in st.opt.param_groups:
            group["lr"] = lr_at(step, steps, lr)
        model.train()
        with _autocast(bf16, device):
            logits = model(tokens, lab, order)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tokens.gather(1, order).flatten())
        st.update(loss, clip=1.0, save_every=50 if device.type == "cpu" else 2000)
        if step % 25 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    st.save()


@dataclass(frozen=True)
class Phase:
    """One ARPG training phase: a fresh AdamW + warm-up/cosine on ``images`` training images of ``style``."""

    name: str
    style: str
    steps: int
    batch: int
    lr: float
    images: int
    seed: int
    ema: float = 0.0


def arpg_phases(r: Recipe) -> list[Phase]:
    """The recipe's ARPG phases in order; each starts from the weights the one before ended with."""
    phases = [Phase("arpg", "wide", r.arpg_steps, r.arpg_batch, r.arpg_lr, r.token_images, r.seed),
              Phase("arpg_focus", r.focus_style, r.focus_steps, r.arpg_batch, r.focus_lr, r.token_images, r.seed + 1),
              Phase("arpg_polish", r.focus_style, r.polish_steps, r.polish_batch, r.polish_lr, r.polish_images,
                    r.seed + 2, r.polish_ema)]
    return [p for p in phases if p.steps]


def phase_losses(run_dir: Path, name: str) -> list[float]:
    """A phase's loss curve: its JSON (written when it finishes), else its checkpoint, else empty."""
    js, ckpt = run_dir / f"{name}_losses.json", run_dir / f"{name}_ckpt.pt"
    if js.exists():
        return json.loads(js.read_text())
    if ckpt.exists():
        return list(torch.load(ckpt, map_location="cpu", weights_only=True)["losses"])
    return []


def plot_arpg(r: Recipe, run_dir: Path, path: Path) -> None:
    """Loss against training images seen (millions), one curve per phase."""
    curves, seen = {}, 0
    for i, ph in enumerate(arpg_phases(r)):
        ys = phase_losses(run_dir, ph.name)
        xs = (seen + np.arange(1, len(ys) + 1) * ph.batch) / 1e6
        curves[f"phase {i + 1}: {ph.style}, batch {ph.batch}"] = (xs, ys)
        seen += ph.steps * ph.batch
    _plot(curves, "ARPG", path, xlabel="training images seen (millions)")


def train_arpg(r: Recipe, vq: VQModel, run_dir: Path, out: Path, plots: Path, device: str | torch.device = "cpu",
               workers: int = 1) -> ARPG:
    """Run the recipe's ARPG phases (``arpg_phases``).  A finished phase leaves
    ``run_dir/<phase>.safetensors``; a rerun starts after the last finished one."""
    cfg = ARPGConfig.from_name(r.arpg)
    torch.manual_seed(r.seed)
    model = ARPG(cfg).init_weights().to(device)
    phases = arpg_phases(r)
    done = [i for i, ph in enumerate(phases) if (run_dir / f"{ph.name}.safetensors").exists()]
    start = done[-1] + 1 if done else 0
    final = None  # what ships when it is not the live weights: the last phase's moving average
    if done:
        last = phases[done[-1]]
        _load(model, run_dir / f"{last.name}.safetensors")
        if last.ema and (run_dir / f"{last.name}_ema.safetensors").exists():
            final = _load_state(run_dir / f"{last.name}_ema.safetensors")
    for ph in phases[start:]:
        st = _Stage(ph.name, run_dir, model, new_arpg_optimizer(model, ph.lr), ema=ph.ema)
        if st.step < ph.steps:
            codes, labels = encode_dataset(r, vq, run_dir, style=ph.style, n_images=ph.images, workers=workers)
            fit_arpg(model, st, codes, labels, ph.steps, ph.lr, ph.batch, r.label_dropout, ph.seed, r.bf16,
                     desc=f"{ph.name} ({ph.style})")
        final = st.ema
        save_weights(model, run_dir / f"{ph.name}.safetensors", cfg.to_dict())
        if st.ema is not None:
            _save_state(st.ema, run_dir / f"{ph.name}_ema.safetensors", cfg.to_dict())
        (run_dir / f"{ph.name}_losses.json").write_text(json.dumps(st.losses))
    if final is not None:
        model.load_state_dict(final)
    save_weights(model, out / "arpg.safetensors", cfg.to_dict())
    plot_arpg(r, run_dir, plots / "arpg_loss.png")
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
               plots: str | Path = "docs/training", threads: int | None = None, device: str = "cpu",
               workers: int | None = None, recipe: Recipe | None = None) -> dict:
    """Run every stage of recipe ``name`` (or ``recipe``, saved under that name); finished stages
    (weights on disk) are skipped.  ``device`` runs the ARPG phases and the token encoding there
    (the small tokenizer and judge train on the CPU); ``workers`` processes render images for encoding."""
    if recipe is None and name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(RECIPES)}")
    r = recipe or RECIPES[name]
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but PyTorch sees no CUDA device here")
    if threads:
        torch.set_num_threads(threads)
    workers = workers or min(8, os.cpu_count() or 1)
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
        train_arpg(r, vq.to(device), run_dir, out, plots, device=device, workers=workers)
        vq.cpu()
    times["arpg_s"] = time.time() - t0
    t0 = time.time()
    if not (out / "judge.safetensors").exists():
        train_judge(r, run_dir, out, plots)
    times["judge_s"] = time.time() - t0
    info = {"recipe": name, **asdict(r), **times}
    (run_dir / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _load(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    model.load_state_dict(_load_state(path), strict=True)
    return model.eval()
