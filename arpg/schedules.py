"""Decoding schedules: how many tokens to decode per step, and the CFG weight per step.

ARPG decodes the ``n`` cells of the token grid in ``steps`` parallel steps. The number
of cells decoded at each step follows a masking curve ``r(t)`` (the fraction of cells
still masked after step ``t``), as in the released ARPG code:

    done = 0
    for s in range(steps):
        r = arccos((s + 1) / steps) / (pi / 2)      # 'arccos'
        r = cos(pi / 2 * (s + 1) / steps)           # 'cosine'
        r = 1 - (s + 1) / steps                     # 'linear'
        m = max(1, min(n - done - 1, int(n * r)))   # cells left masked after this step
        k = n - done - m                            # cells decoded at this step
        if s == steps - 1: k = n - done
        done += k

Degenerate cases of the raw formula: once only one cell is left before the last step,
every further step gets ``k = 0`` (``k`` is never negative, since ``m <= n - done - 1``
whenever ``n - done >= 2``). With ``'linear'`` this happens e.g. for ``steps == n`` and
``n in (10, 11, 12, 13, 14, 15, 17, ...)`` because ``int(n * (1 - (s + 1) / n))`` can
round down by one (``(1 - 3/10) * 10 == 6.999...``), which decodes two cells in one step
and starves the last step but one. :func:`token_counts` repairs this with

    k = min(max(k, 1), n - done - (steps - s - 1))

i.e. decode at least one cell per step while leaving at least one cell for each
remaining step. If the raw counts are all positive this clamp never binds (all later
counts are >= 1, so ``k <= n - done - (steps - s - 1)`` already holds), so the result is
identical to the released code wherever that code is well behaved.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

__all__ = [
    "TOKEN_SCHEDULES",
    "CFG_SCHEDULES",
    "token_counts",
    "fixed_counts",
    "raw_token_counts",
    "cfg_scales",
]

#: Named masking curves accepted by :func:`token_counts` (in addition to ``"k=<int>"``).
TOKEN_SCHEDULES: tuple[str, ...] = ("arccos", "cosine", "linear")
#: Guidance schedules accepted by :func:`cfg_scales`.
CFG_SCHEDULES: tuple[str, ...] = ("linear", "constant")

_FIXED_PREFIX = "k="


def _as_int(value: Any, arg: str) -> int:
    """Return ``value`` as a Python int; ValueError for bools, floats and other non-integers."""
    if isinstance(value, bool):
        raise ValueError(f"{arg} must be an integer, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{arg} must be an integer, got {type(value).__name__} {value!r}") from None


def _masked_ratio(schedule: str, s: int, steps: int) -> float:
    """Fraction of cells still masked after step ``s`` (0-based) of ``steps``."""
    t = (s + 1) / steps
    if schedule == "arccos":
        return math.acos(t) / (math.pi / 2)
    if schedule == "cosine":
        return math.cos(math.pi / 2 * t)
    return 1.0 - t  # linear


def _check_schedule_name(schedule: Any) -> str:
    allowed = ", ".join(repr(x) for x in TOKEN_SCHEDULES)
    if not isinstance(schedule, str):
        raise ValueError(
            f"schedule must be a string, one of {allowed} or 'k=<int>', got {type(schedule).__name__} {schedule!r}"
        )
    if schedule not in TOKEN_SCHEDULES and not schedule.startswith(_FIXED_PREFIX):
        raise ValueError(
            f"schedule must be one of {allowed} or 'k=<int>' (fixed k >= 1 tokens per step), got {schedule!r}"
        )
    return schedule


def _check_n_steps(n: Any, steps: Any) -> tuple[int, int]:
    n = _as_int(n, "n")
    if n < 1:
        raise ValueError(f"n must be >= 1 (number of cells to decode), got {n}")
    steps = _as_int(steps, "steps")
    if not 1 <= steps <= n:
        raise ValueError(f"steps must be in [1, n] = [1, {n}], got {steps}")
    return n, steps


def raw_token_counts(n: int, steps: int, schedule: str = "arccos") -> list[int]:
    """Per-step counts from the unrepaired upstream formula (may contain zeros).

    Only the named curves (``TOKEN_SCHEDULES``) are accepted. Returns ``steps`` ints
    summing to ``n``. Exposed for reference/testing; use :func:`token_counts`.
    """
    n, steps = _check_n_steps(n, steps)
    schedule = _check_schedule_name(schedule)
    if schedule not in TOKEN_SCHEDULES:
        raise ValueError(
            f"schedule must be one of {', '.join(map(repr, TOKEN_SCHEDULES))} for raw_token_counts, got {schedule!r}"
        )
    return _counts(n, steps, schedule, repair=False)


def _counts(n: int, steps: int, schedule: str, repair: bool) -> list[int]:
    """The released formula; ``repair`` clamps each count to >= 1 while leaving one cell
    for each remaining step (a no-op when the raw counts are all positive)."""
    done = 0
    counts: list[int] = []
    for s in range(steps):
        r = _masked_ratio(schedule, s, steps)
        m = max(1, min(n - done - 1, int(n * r)))
        k = n - done if s == steps - 1 else n - done - m
        if repair:
            k = min(max(k, 1), n - done - (steps - s - 1))
        done += k
        counts.append(k)
    return counts


def fixed_counts(n: int, k: int) -> list[int]:
    """Decode ``k`` cells per step: ``[k] * (n // k)`` plus a final ``n % k`` if nonzero.

    Returns ``ceil(n / k)`` positive ints summing to ``n`` (``[n]`` if ``k >= n``).
    """
    n = _as_int(n, "n")
    if n < 1:
        raise ValueError(f"n must be >= 1 (number of cells to decode), got {n}")
    k = _as_int(k, "k")
    if k < 1:
        raise ValueError(f"k (tokens per step of a fixed schedule) must be >= 1, got {k}")
    counts = [k] * (n // k)
    if n % k:
        counts.append(n % k)
    return counts


def token_counts(n: int, steps: int, schedule: str = "arccos") -> list[int]:
    """Number of cells decoded at each step when ``n`` cells are decoded in ``steps`` steps.

    Args:
        n: cells to decode, ``n >= 1``.
        steps: number of steps, ``1 <= steps <= n``. Ignored (not validated) for fixed
            schedules, where it is derived as ``ceil(n / k)``.
        schedule: ``'arccos'`` (default), ``'cosine'``, ``'linear'`` or ``'k=<int>'``
            (fixed ``k >= 1`` cells per step, see :func:`fixed_counts`).

    Returns:
        list of positive ints summing to ``n``; ``len == steps`` for the named curves.
        Equal to the released ARPG formula whenever that formula gives positive counts
        (see the module docstring for the repair of degenerate cases).
    """
    schedule = _check_schedule_name(schedule)
    if schedule.startswith(_FIXED_PREFIX):
        text = schedule[len(_FIXED_PREFIX) :]
        try:
            k = int(text)
        except ValueError:
            raise ValueError(f"schedule 'k=<int>' needs an integer k >= 1, got {schedule!r}") from None
        return fixed_counts(n, k)

    n, steps = _check_n_steps(n, steps)
    return _counts(n, steps, schedule, repair=True)


def cfg_scales(counts: Sequence[int], scale: float, schedule: str = "linear") -> list[float]:
    """Classifier-free guidance weight for each decoding step.

    Args:
        counts: per-step decoded-cell counts (positive ints), e.g. from
            :func:`token_counts`; ``n = sum(counts)``.
        scale: target guidance scale (finite float).
        schedule: ``'linear'``: ``w_s = 1 + (scale - 1) * sum(counts[:s+1]) / n``
            (the last step is exactly ``scale``); ``'constant'``: ``w_s = scale``.

    Returns:
        list of ``len(counts)`` floats.
    """
    if not isinstance(schedule, str) or schedule not in CFG_SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(map(repr, CFG_SCHEDULES))}, got {schedule!r}")
    if isinstance(scale, (bool, str, bytes)):
        raise ValueError(f"scale must be a real number, got {type(scale).__name__} {scale!r}")
    if not isinstance(scale, (int, float)):
        try:
            scale = float(scale)  # numpy / torch scalars
        except (TypeError, ValueError):
            raise ValueError(f"scale must be a real number, got {type(scale).__name__} {scale!r}") from None
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    if isinstance(counts, (str, bytes)):
        raise ValueError("counts must be a sequence of positive ints, got a string")
    try:
        items = list(counts)
    except TypeError:
        raise ValueError(f"counts must be a sequence of positive ints, got {type(counts).__name__}") from None
    if not items:
        raise ValueError("counts must be a non-empty sequence of positive ints, got []")
    ints = [_as_int(c, f"counts[{i}]") for i, c in enumerate(items)]
    for i, c in enumerate(ints):
        if c < 1:
            raise ValueError(f"counts[{i}] must be >= 1, got {c}")

    if schedule == "constant":
        return [scale] * len(ints)
    n = sum(ints)
    out: list[float] = []
    done = 0
    for c in ints:
        done += c
        out.append(scale if done == n else 1.0 + (scale - 1.0) * done / n)
    return out
