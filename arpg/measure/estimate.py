"""How long a measurement will take, said before it runs: a model's cost per forward pass, measured
once on this machine on the model itself, and the sum over a plan's calls.

One ``Pipeline.generate`` call of ``b`` images in ``s`` steps runs ``s`` forward passes; pass ``t``
feeds every image the tokens decoded at the step before and queries the cells of its own step, so a
decode puts about ``2 x cells`` tokens per image through the model whatever ``s`` is (an order that
queries every remaining cell at every step, :attr:`arpg.orders.OrderPolicy.queries_remaining`, runs
about ``cells x (s + 1) / 2`` queries instead of ``cells``). The call is modelled as::

    call + s x (step + step_image x b) + b x (token x tokens + decode)   seconds

a fixed cost per call, a fixed cost per pass and per pass and image, the cost of a token through the
model, and decoding tokens to pixels. :func:`calibrate` measures the pass costs on forward passes of
the model itself at the corners of what a measurement decodes (one image and :data:`PROBE_IMAGES`
images; one token per pass, as raster order decodes, and :data:`PROBE_STEPS` steps' worth), each the
median of a few passes (a busy moment of the machine does not skew it) of a decode stopped early. A
pass reads the cache of every token before it, so a late pass of a long decode costs more than an
early one: the probes start with half the grid given as context, where a decode's passes are on
average. Then one short call (the fixed cost) and one decode to pixels.
"""

from __future__ import annotations

import statistics
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..orders import order_policy
from ..pipeline import Pipeline
from ..sampling import Context

#: The probes' images per call: one, and a batch whose passes are dominated by its tokens.
PROBE_IMAGES = (1, 16)
#: The probes' steps per decode: every cell a step (one token per image per pass), and this many.
PROBE_STEPS = 8
#: Passes timed per probe and round (after one untimed pass that prefills the class token and the
#: context); a pass of one token is short, so its probes time :data:`SHORT_PASSES` of them.
PROBE_PASSES = 3
SHORT_PASSES = 12
#: Rounds over the probes, one probe after the other: a busy spell of the machine slows them all alike.
PROBE_ROUNDS = 2
_lock = threading.Lock()
_costs: dict[int, tuple[weakref.ref, CallCost]] = {}  # id(pipeline) -> (the pipeline, its cost)


def tokens_through(cells: int, steps: int, order: str = "random") -> float:
    """Tokens per image one decode of ``cells`` cells in ``steps`` steps puts through the model: every
    cell fed once and queried once, or, for an order that queries every remaining cell, queried at every
    step until it is decoded."""
    queries = cells * (steps + 1) / 2 if order_policy(order).queries_remaining else cells
    return cells + queries


@dataclass(frozen=True)
class CallCost:
    """Seconds of one ``generate`` call on this machine: see the module docstring."""

    call: float  # fixed seconds per call
    step: float  # fixed seconds per forward pass
    step_image: float  # seconds per forward pass and image
    token: float  # seconds per token through the model, per image
    decode: float  # seconds per image decoding tokens to pixels
    cells: int  # cells of the model's grid

    def seconds(self, images: int, steps: int, order: str = "random") -> float:
        """Estimated seconds of one call of ``images`` images decoded in ``steps`` steps."""
        per_image = self.token * tokens_through(self.cells, steps, order) + self.decode
        return self.call + steps * (self.step + self.step_image * images) + images * per_image


class _Stop(Exception):
    """Ends a probe's decode after its timed passes."""


def _half_given(pipe: Pipeline, per_step: int, passes: int) -> Context | None:
    """A context of the first cells of the grid, as many as put a probe's ``passes`` timed passes (after
    the pass that prefills it) around the middle of a decode of the whole grid (None: no cell)."""
    rows, cols = pipe.grid
    known = torch.zeros(rows * cols, dtype=torch.bool)
    known[: max(0, rows * cols // 2 - per_step * (passes + 1) // 2)] = True
    return Context(torch.zeros((rows, cols), dtype=torch.long), known.view(rows, cols)) if known.any() else None


def _pass_seconds(pipe: Pipeline, images: int, per_step: int) -> list[float]:
    """The seconds of the timed forward passes (:data:`PROBE_PASSES`, or :data:`SHORT_PASSES` of one
    token) of a decode of ``images`` images, ``per_step`` cells a step (random order), after its first
    pass (see :func:`_half_given`); the decode stops there."""
    passes = SHORT_PASSES if per_step == 1 else PROBE_PASSES
    stamps: list[float] = []

    def tick(step: int, n: int, tokens: Any) -> None:
        stamps.append(time.perf_counter())
        if len(stamps) > passes:
            raise _Stop

    options = pipe.defaults.replace(schedule=f"k={per_step}", order="random")  # as many cells every step
    t0 = time.perf_counter()
    try:
        pipe.generate([0] * images, options, seed=0, context=_half_given(pipe, per_step, passes), callback=tick)
    except _Stop:
        pass
    if len(stamps) < 2:  # a grid of a pass or two: the whole call
        return [(time.perf_counter() - t0) / max(1, len(stamps))]
    return np.diff(stamps).tolist()


def _timed_call(pipe: Pipeline, images: int, steps: int) -> float:
    options = pipe.defaults.replace(steps=steps, order="random")
    t0 = time.perf_counter()
    pipe.generate([0] * images, options, seed=0)
    return time.perf_counter() - t0


def _timed_decode(pipe: Pipeline, images: int) -> float:
    """Seconds per image of decoding tokens to pixels."""
    tokens = torch.zeros((images, *pipe.grid), dtype=torch.long)
    t0 = time.perf_counter()
    pipe.decode(tokens)
    return (time.perf_counter() - t0) / images


def fit_passes(passes: dict[tuple[int, float], float]) -> tuple[float, float, float]:
    """(step, step_image, token) through seconds per pass at (images, tokens per image and pass):
    least squares of ``step + step_image x images + token x images x tokens``; a negative share (noise)
    becomes 0 and the others are fitted again without it."""
    keys = list(passes)
    columns = np.array([[1.0, b, b * m] for b, m in keys])
    seconds = np.array([passes[k] for k in keys])
    free = [0, 1, 2]
    while True:
        coef, *_ = np.linalg.lstsq(columns[:, free], seconds, rcond=None)
        if (coef >= 0).all() or len(free) == 1:
            break
        free.pop(int(np.argmin(coef)))
    out = [0.0, 0.0, 0.0]
    for i, c in zip(free, coef):
        out[i] = max(0.0, float(c))
    return out[0], out[1], out[2]


def measure_cost(pipe: Pipeline) -> CallCost:
    """Measure ``pipe``'s :class:`CallCost` on this machine (see the module docstring): a warm-up call,
    the four probes, a short call and a decode to pixels (about a second for a shipped model on a CPU)."""
    cells = pipe.grid[0] * pipe.grid[1]
    _timed_call(pipe, 1, 2)
    probes = [(b, k) for b in PROBE_IMAGES for k in (1, max(2, cells // PROBE_STEPS))]
    seen: dict[tuple[int, int], list[float]] = {p: [] for p in probes}
    for _ in range(PROBE_ROUNDS):
        for b, k in probes:
            seen[(b, k)] += _pass_seconds(pipe, b, k)
    # a pass feeds the cells of the step before and queries as many
    step, step_image, token = fit_passes({(b, 2 * k): statistics.median(t) for (b, k), t in seen.items()})
    decode = _timed_decode(pipe, PROBE_IMAGES[-1])
    partial = CallCost(0.0, step, step_image, token, decode, cells)
    call = max(0.0, _timed_call(pipe, 1, 2) - partial.seconds(1, 2))
    return CallCost(call, step, step_image, token, decode, cells)


def calibrate(pipe: Pipeline) -> CallCost:
    """The cost of ``pipe``'s calls on this machine (:func:`measure_cost`), measured once per pipeline."""
    with _lock:
        ref, cost = _costs.get(id(pipe), (None, None))
        if cost is None or ref() is not pipe:
            cost = measure_cost(pipe)
            _costs[id(pipe)] = (weakref.ref(pipe), cost)
        return cost


def forget(pipe: Pipeline) -> None:
    """Drop ``pipe``'s calibration (the next :func:`calibrate` measures again)."""
    with _lock:
        _costs.pop(id(pipe), None)


def duration_text(seconds: float) -> str:
    """``"about 40 s"``, ``"about 3 min"``: a rounded duration."""
    if seconds < 10:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90:
        return f"about {5 * round(seconds / 5)} s"
    return f"about {round(seconds / 60)} min"
