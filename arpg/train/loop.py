"""The optimisation loop: learning-rate schedule, resumable stage state, the teacher-forced steps (ARPG's here).

Weights a stage finishes with go through :func:`arpg.checkpoints.save_checkpoint`; the
resumable state here (model + optimiser + step + losses, ``<run_dir>/<stage>_ckpt.pt``)
and the token caches are written atomically by :func:`save_training_state`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..model import ARPG
from ..state_dicts import read_state_dict

log = logging.getLogger(__name__)


def lr_at(step: int, total: int, peak: float, warmup_frac: float = 0.05, floor: float = 0.1) -> float:
    """Linear warm-up then cosine decay to ``floor * peak``."""
    warm = max(1, int(total * warmup_frac))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def autocast(enabled: bool, device: torch.device | str = "cpu") -> torch.autocast:
    """bfloat16 autocast on ``device``'s type when ``enabled``."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def device_of(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter."""
    return next(model.parameters()).device


def load_weights(model: torch.nn.Module, path: Path) -> torch.nn.Module:
    """Copy the weights of ``path`` into ``model`` (strict; the model keeps its device); eval mode."""
    model.load_state_dict(read_state_dict(path), strict=True)
    return model.eval()


def save_training_state(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary sibling, then ``os.replace``: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class Stage:
    """Resumable optimisation loop state: model + optimiser + step + loss history
    (+ an exponential moving average of the weights when ``ema`` > 0)."""

    def __init__(self, name: str, run_dir: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, ema: float = 0.0):
        self.name, self.model, self.opt, self.ema_decay = name, model, opt, ema
        self.path = run_dir / f"{name}_ckpt.pt"
        self.step, self._losses, self._pending = 0, [], []
        self.ema = {k: v.detach().float().clone() for k, v in model.state_dict().items()} if ema > 0 else None
        if self.path.exists():
            state = torch.load(self.path, map_location=device_of(model), weights_only=True)
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
        self.record(loss, save_every)

    def record(self, loss: torch.Tensor, save_every: int = 100) -> None:
        """Book an optimiser step already taken (by :meth:`update`, or by a caller that steps with several
        losses, e.g. a generator and its discriminator): the moving average, ``loss`` in the history, the
        step count, and a checkpoint every ``save_every`` steps."""
        if self.ema is not None:
            live = self.model.state_dict()
            torch._foreach_lerp_(list(self.ema.values()), [live[k].float() for k in self.ema], 1 - self.ema_decay)
        self._pending.append(loss.detach())
        self.step += 1
        if self.step % save_every == 0:
            self.save()

    def save(self) -> None:
        """Write the resumable state to ``<run_dir>/<name>_ckpt.pt``."""
        state = {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "step": self.step,
            "losses": self.losses,
        }
        if self.ema is not None:
            state["ema"] = self.ema
        save_training_state(state, self.path)


class Budget:
    """When a run stops: after ``minutes`` of wall time since it was made (None: never).

    Every training loop asks :meth:`spent` before each step; a loop that stops saves its
    resumable state, so the next run continues from that step."""

    def __init__(self, minutes: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.minutes, self.clock = minutes, clock
        self.end = None if minutes is None else clock() + 60.0 * minutes

    def spent(self) -> bool:
        """Whether the time is up."""
        return self.end is not None and self.clock() >= self.end


NO_LIMIT = Budget()


@dataclass(frozen=True)
class TokenSet:
    """The training images of one canvas as tokens: ``codes`` (n, rows * cols) int16 in raster order,
    ``labels`` (n,) int64, on the token ``grid`` (rows, cols)."""

    codes: torch.Tensor
    labels: torch.Tensor
    grid: tuple[int, int]

    def __post_init__(self) -> None:
        if self.codes.shape[1] != self.grid[0] * self.grid[1] or len(self.labels) != len(self.codes):
            raise ValueError(
                f"codes {tuple(self.codes.shape)} and labels {tuple(self.labels.shape)} do not fit the grid {self.grid}"
            )

    @property
    def tokens(self) -> int:
        """Tokens per image."""
        return self.grid[0] * self.grid[1]


def new_arpg_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only (ARPG's phases and the raster model's, as LlamaGen trains)."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95)
    )


def _draw(
    ts: TokenSet, batch: int, label_dropout: float, null: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch of ``ts``: tokens (B, N) long, labels (B,) with the null class at a ``label_dropout``
    rate, and a random order per row (B, N); every draw from ``g``."""
    idx = torch.randint(0, len(ts.codes), (batch,), generator=g)
    tokens, lab = ts.codes[idx].long(), ts.labels[idx].clone()
    drop = torch.rand(batch, generator=g) < label_dropout
    lab[drop] = null
    order = torch.rand(batch, ts.tokens, generator=g).argsort(dim=1)
    return tokens, lab, order


#: One step's loss: ``loss_of(tokens, batch, g)`` draws ``batch`` images of a token set with ``g`` and returns the loss.
LossOf = Callable[[TokenSet, int, torch.Generator], torch.Tensor]


def fit_steps(
    model: torch.nn.Module,
    st: Stage,
    sets: Sequence[TokenSet],
    steps: int,
    lr: float,
    batch: int,
    seed: int,
    loss_of: LossOf,
    desc: str,
    budget: Budget = NO_LIMIT,
) -> bool:
    """The teacher-forced loop every image model trains with (:func:`fit_arpg`, :func:`arpg.train.raster.fit_raster`).

    ``sets``: the training tokens, one :class:`TokenSet` per canvas; step s trains on
    ``sets[s % len(sets)]``, with ``batch`` images on the first set's grid and about as many tokens on
    the others; warm-up then cosine (:func:`lr_at`) to ``lr``, gradients clipped at 1.  Runs ``st`` from
    its step to ``steps``, each step's draws from a generator seeded by ``seed`` and the step only.
    Returns whether it reached ``steps`` (False: ``budget`` ran out first; the state is saved either way).
    """
    device = device_of(model)
    bar = tqdm(range(st.step, steps), desc=desc, initial=st.step, total=steps)
    for step in bar:
        if budget.spent():
            break
        ts = sets[step % len(sets)]
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)  # each step's draws depend on step only
        for group in st.opt.param_groups:
            group["lr"] = lr_at(step, steps, lr)
        model.train()
        loss = loss_of(ts, max(1, round(batch * sets[0].tokens / ts.tokens)), g)
        st.update(loss, clip=1.0, save_every=50 if device.type == "cpu" else 2000)
        if step % 25 == 0 or step == steps - 1:
            bar.set_postfix(loss=f"{loss.item():.3f}", grid=f"{ts.grid[0]}x{ts.grid[1]}")
    bar.close()
    st.save()
    return st.step >= steps


def fit_arpg(
    model: ARPG,
    st: Stage,
    sets: Sequence[TokenSet],
    steps: int,
    lr: float,
    batch: int,
    label_dropout: float,
    seed: int,
    bf16: bool,
    desc: str = "arpg",
    budget: Budget = NO_LIMIT,
) -> bool:
    """Teacher-forced random-order training (:func:`fit_steps`): every sequence gets its own random order,
    its label dropped to the null class at the ``label_dropout`` rate; the model's RoPE follows each
    batch's grid.  Returns whether it reached ``steps``."""
    device = model.device

    def loss_of(ts: TokenSet, b: int, g: torch.Generator) -> torch.Tensor:
        tokens, lab, order = (t.to(device) for t in _draw(ts, b, label_dropout, model.cfg.num_classes, g))
        with autocast(bf16, device):
            logits = model(tokens, lab, order, grid=ts.grid)  # (B, N, vocab), in decoding order
        return F.cross_entropy(logits.flatten(0, 1).float(), tokens.gather(1, order).flatten())

    return fit_steps(model, st, sets, steps, lr, batch, seed, loss_of, desc, budget)
