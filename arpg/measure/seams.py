"""The seam score: how hard a task's output steps where kept and generated pixels meet, against the truth.

A join is the border of a region of new pixels (``new``, (H, W) bool): every pair of 4-neighbour pixels
with one kept and one new.  The score is the mean absolute luminance difference across those pairs in
the made images over the same in the true renders of the same canvases (:func:`seam_score`): 1.0 steps
as much as the truth does, a visible seam reads well above it, a blur across the join below it.
A join blended over a band spreads its step over a few pixels, so :func:`seam_profile` also scores the
join moved ``shift`` px along its normal (negative: into the kept side), and :func:`seam_scores` gives
the worst of them (``seam_peak``) beside the join itself (``seam``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .sharpness import luminance

#: Pixels each side of a join that :func:`seam_scores` looks at for the worst step.
SEAM_REACH = 6


def join_pairs(new: np.ndarray, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices (kept, new) of the 4-neighbour pixel pairs across the border of ``new`` (H, W) bool,
    each pair moved ``shift`` px along its direction from kept to new (pairs that leave the image dropped)."""
    new = np.asarray(new, dtype=bool)
    h, w = new.shape
    kept_idx, new_idx = [], []
    for axis in (0, 1):
        step = np.diff(new.astype(np.int8), axis=axis)
        for sign in (1, -1):  # +1: kept then new along the axis; -1: new then kept
            ys, xs = np.nonzero(step == sign)
            first = np.stack([ys, xs])
            second = first.copy()
            second[axis] += 1
            a, b = (first, second) if sign == 1 else (second, first)
            d = (b - a) * shift
            a, b = a + d, b + d
            ok = (np.minimum(a, b) >= 0).all(0) & (a[0] < h) & (b[0] < h) & (a[1] < w) & (b[1] < w)
            kept_idx.append(a[0][ok] * w + a[1][ok])
            new_idx.append(b[0][ok] * w + b[1][ok])
    return np.concatenate(kept_idx), np.concatenate(new_idx)


def _step(lum: np.ndarray, joins: Sequence[np.ndarray], shift: int) -> float:
    """The total absolute luminance difference of ``lum`` (N, H, W) across the pairs of every join."""
    flat = lum.reshape(len(lum), -1)
    total = 0.0
    for new in joins:
        a, b = join_pairs(new, shift)
        total += float(np.abs(flat[:, b] - flat[:, a]).sum())
    return total


def _joins(new: np.ndarray | Sequence[np.ndarray], shape: tuple[int, int]) -> list[np.ndarray]:
    """``new`` as a list of (H, W) bool masks of the images' size (one join each)."""
    joins = [np.asarray(new, dtype=bool)] if np.ndim(new) == 2 else [np.asarray(m, dtype=bool) for m in new]
    for m in joins:
        if m.shape != shape:
            raise ValueError(f"a join's mask is {m.shape}, the images {shape}")
    return joins


def seam_profile(
    made: np.ndarray, truth: np.ndarray, new: np.ndarray | Sequence[np.ndarray], reach: int = SEAM_REACH
) -> dict[int, float]:
    """The seam score of ``made`` against ``truth`` (uint8 (N, H, W, 3), same shapes) across the joins
    of ``new`` (an (H, W) bool mask, or several), moved by every shift from ``-reach`` to ``reach``:
    {shift: ratio}; a shift whose pairs have no step in the truth is left out."""
    if np.shape(made) != np.shape(truth):
        raise ValueError(f"shapes differ: {np.shape(made)} vs {np.shape(truth)}")
    lm, lt = luminance(made), luminance(truth)
    joins = _joins(new, lm.shape[1:])
    out = {}
    for shift in range(-reach, reach + 1):
        base = _step(lt, joins, shift)
        if base > 0:
            out[shift] = _step(lm, joins, shift) / base
    return out


def seam_score(made: np.ndarray, truth: np.ndarray, new: np.ndarray | Sequence[np.ndarray]) -> float:
    """The step across the joins of ``new`` in ``made`` over the same in ``truth`` (see the module)."""
    return seam_scores(made, truth, new, reach=0)["seam"]


def seam_scores(
    made: np.ndarray, truth: np.ndarray, new: np.ndarray | Sequence[np.ndarray], reach: int = SEAM_REACH
) -> dict[str, float]:
    """``seam`` (the join itself) and ``seam_peak`` (the worst shift within ``reach`` px), rounded."""
    profile = seam_profile(made, truth, new, reach)
    if 0 not in profile:
        raise ValueError("the true images have no step across these joins to compare against")
    return {"seam": round(profile[0], 3), "seam_peak": round(max(profile.values()), 3)}
