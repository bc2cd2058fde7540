"""Loss curves of the training stages (``docs/training/*.png``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..data.sets import batch_for
from .recipes import Phase, Recipe, arpg_phases


def plot_curves(
    losses: dict[str, list[float] | tuple[np.ndarray, list[float]]], title: str, path: Path, xlabel: str = "step"
) -> None:
    """Smoothed curves on a log scale, each given as ys (x = step) or as (xs, ys); written to ``path``."""
    from matplotlib.figure import Figure  # heavy; only when a plot is drawn

    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.add_subplot()
    for name, curve in losses.items():
        xs, ys = curve if isinstance(curve, tuple) else (np.arange(len(curve)), curve)
        ys = np.asarray(ys, dtype=float)
        k = max(1, len(ys) // 50)
        smooth = np.convolve(ys, np.ones(k) / k, mode="valid") if len(ys) > k else ys
        ax.plot(np.asarray(xs)[k - 1 :][: len(smooth)], smooth, label=name)
    ax.set_xlabel(xlabel)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def phase_losses(run_dir: Path, name: str) -> list[float]:
    """A phase's loss curve: its JSON (written when it finishes), else its checkpoint, else empty."""
    js, ckpt = run_dir / f"{name}_losses.json", run_dir / f"{name}_ckpt.pt"
    if js.exists():
        return json.loads(js.read_text())
    if ckpt.exists():
        return list(torch.load(ckpt, map_location="cpu", weights_only=True)["losses"])
    return []


def images_per_step(ph: Phase) -> float:
    """A phase's training images per step, on average over its canvases (as :func:`arpg.train.loop.fit_arpg` draws)."""
    return float(np.mean([batch_for(c, ph.batch, ph.canvases[0]) for c in ph.canvases]))


def plot_arpg(r: Recipe, run_dir: Path, path: Path) -> None:
    """Loss against training images seen (millions), one curve per phase of the recipe's image model."""
    curves, seen = {}, 0.0
    for i, ph in enumerate(arpg_phases(r)):
        ys = phase_losses(run_dir, ph.name)
        per_step = images_per_step(ph)
        xs = (seen + np.arange(1, len(ys) + 1) * per_step) / 1e6
        canvases = f", {len(ph.canvases)} canvases" if len(ph.canvases) > 1 else ""
        curves[f"phase {i + 1}: {ph.style or r.data}, batch {ph.batch}{canvases}"] = (xs, ys)
        seen += ph.steps * per_step
    title = "ARPG" if r.family == "arpg" else f"{r.model_title.removesuffix(' model')} (raster order)"
    plot_curves(curves, title, path, xlabel="training images seen (millions)")
