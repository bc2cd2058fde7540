"""Which resize setting (strategy, scale, regenerate fraction) measures best on a model, against the true render.

The data sets of the models trained here are procedural, so a held-out image has a true render at every
size: trial ``i`` renders held-out image ``i`` at 64 px (the input) and at ``64 * scale`` px (the truth),
resizes the input with the model (seed ``i``, the model's sampling defaults and resize decoding) and with
plain bicubic, and compares both with the truth: PSNR, and sharpness as a ratio to the truth's
(:mod:`arpg.measure.sharpness`). A row's ``gap_db`` is its PSNR minus bicubic's at the same scale: how much
the model loses to (or gains on) bicubic. The best row is the one with the largest gap (the setting where
the model earns its place).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import tasks
from ..data.sets import CanvasSpec, dataset, images
from ..pipeline import Pipeline
from .evaluate import data_styles
from .pixels import bicubic_upscale, psnr
from .sharpness import sharpness_ratio

#: (strategy, scale, regenerate): lattice has no regenerate fraction.
SETTINGS = [("lattice", s, None) for s in (1.25, 1.5, 2.0)] + [
    ("reencode", s, g) for s in (1.25, 1.5, 2.0) for g in (0.125, 0.25, 0.5)
]
SPLIT = 113  # offset from the data set's HELDOUT_SEED: apart from the other benchmarks' splits


def truth_pairs(data: str, n: int, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs (n, 64, 64, 3), truths (n, S, S, 3) with S = 64 * scale, labels) of held-out images of data
    set ``data`` (in the style its generator learnt, where it has styles)."""
    style, seed, side = data_styles(data)[0], dataset(data).HELDOUT_SEED + SPLIT, round(64 * scale)
    small, labels = images(data, range(n), seed, style=style)
    big, same = images(data, range(n), seed, CanvasSpec(side, side, side / 64), style=style)  # the same draws
    if not (same == labels).all():
        raise ValueError(f"the {data} data set draws other images at {side} px: no true render to compare with")
    return small, big, labels


def quality(made: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """PSNR (dB) and sharpness ratio of ``made`` against ``truth``."""
    return {"psnr_db": round(float(psnr(made, truth).mean()), 3), "sharpness": round(sharpness_ratio(made, truth), 3)}


def _model_row(pipe: Pipeline, setting: tuple, small: np.ndarray, big: np.ndarray, labels: np.ndarray) -> dict:
    """One setting of :data:`SETTINGS` on every trial: its quality against the truth."""
    strategy, scale, regen = setting
    t0 = time.time()
    extra = {} if regen is None else {"regenerate": regen}
    made = np.stack(
        [
            tasks.resize(pipe, small[i], int(labels[i]), scale=scale, strategy=strategy, seed=i, **extra).image
            for i in range(len(small))
        ]
    )
    return {"strategy": strategy, "scale": scale, "regenerate": regen, **quality(made, big), "t0": t0}


def sweep(pipe: Pipeline, trials: int, report: Callable[[dict], None] = lambda row: None) -> list[dict[str, Any]]:
    """One row per setting of :data:`SETTINGS` (and bicubic at each scale) on ``trials`` held-out images of
    the model's data set; ``report`` sees each row as it is measured."""
    rows = []
    for scale in sorted({s for _, s, _ in SETTINGS}):
        small, big, labels = truth_pairs(pipe.data, trials, scale)
        bicubic = quality(bicubic_upscale(small, big.shape[1], big.shape[2]), big)
        rows.append({"strategy": "bicubic", "scale": scale, **bicubic})
        report(rows[-1])
        for setting in (s for s in SETTINGS if s[1] == scale):
            r = _model_row(pipe, setting, small, big, labels)
            r.update(gap_db=round(r["psnr_db"] - bicubic["psnr_db"], 3), seconds=round(time.time() - r.pop("t0"), 1))
            report(r)
            rows.append(r)
    return rows


def resize_sweep(pipe: Pipeline, trials: int, report: Callable[[dict], None] = lambda row: None) -> dict[str, Any]:
    """:func:`sweep` as a results file: the model, its data set, sampling and resize decoding, the rows and
    the best setting."""
    if getattr(pipe, "data", None) is None:
        raise ValueError(f"the resize sweep needs a model trained here (its data set has true renders); {pipe.name}")
    rows = sweep(pipe, trials, report)
    best = max((r for r in rows if r["strategy"] != "bicubic"), key=lambda r: r["gap_db"])
    return {
        "model": pipe.name,
        "data": pipe.data,
        "trials": trials,
        "sampling": pipe.defaults.as_kwargs(),
        "decoding": pipe.decodings.get("resize"),
        "rows": rows,
        "best": {k: best[k] for k in ("strategy", "scale", "regenerate")},
    }
