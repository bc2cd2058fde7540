"""How long a measurement will take, said before it runs: a model's cost per call, calibrated
once on this machine with a few short decodes, and the sum over a plan's calls.

The cost of one ``Pipeline.generate`` call of ``b`` images in ``s`` steps is modelled as
``call + s * (step + step_image * b) + b * (query + decode)`` seconds: a fixed cost per call, a
step's fixed cost and its cost per image, then per image the queries of its cells (the same work
however many steps) and decoding tokens to pixels.  "confidence" order scores every remaining
cell at every step, about ``(s + 1) / 2`` times the queries of the other orders.
:func:`calibrate` measures the numbers with four short calls (after a warm-up) and one decode to
pixels.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import torch

#: Calls of the calibration, (images, steps): two batch sizes at two step counts (after a warm-up).
FEW, MANY = (1, 8), (4, 16)  # images, steps
CALIBRATION = tuple((b, s) for b in FEW for s in MANY)
_lock = threading.Lock()
_costs: dict[int, tuple[weakref.ref, CallCost]] = {}  # id(pipeline) -> (the pipeline, its cost)


@dataclass(frozen=True)
class CallCost:
    """Seconds of one ``generate`` call on this machine: see the module docstring."""

    call: float  # fixed seconds per call
    step: float  # fixed seconds per step
    step_image: float  # seconds per step and image
    query: float  # seconds per image for querying its cells (once each)
    decode: float = 0.0  # seconds per image for decoding tokens to pixels

    def seconds(self, images: int, steps: int, order: str = "random") -> float:
        """Estimated seconds of one call of ``images`` images decoded in ``steps`` steps."""
        queries = self.query * ((steps + 1) / 2 if order == "confidence" else 1.0)
        return self.call + steps * (self.step + self.step_image * images) + images * (queries + self.decode)


def _timed_call(pipe: Any, images: int, steps: int) -> float:
    options = pipe.defaults.replace(steps=steps, order="random")
    t0 = time.perf_counter()
    pipe.generate([0] * images, options, seed=0)
    return time.perf_counter() - t0


def _timed_decode(pipe: Any, images: int) -> float:
    """Seconds per image of decoding tokens to pixels."""
    tokens = torch.zeros((images, *pipe.grid), dtype=torch.long)
    t0 = time.perf_counter()
    pipe.decode(tokens)
    return (time.perf_counter() - t0) / images


def fit_cost(times: dict[tuple[int, int], float], decode: float = 0.0) -> CallCost:
    """The :class:`CallCost` through the calibration's four (images, steps) -> seconds
    (:data:`CALIBRATION`) and ``decode`` (seconds per image): at each batch size the two step
    counts give the cost per step (its slope) and the rest (its intercept); the two batch sizes
    split both into a fixed part and a part per image.  Negative shares (noise) become 0."""
    (b1, b2), (s1, s2) = FEW, MANY
    slope = {b: (times[(b, s2)] - times[(b, s1)]) / (s2 - s1) for b in FEW}
    rest = {b: times[(b, s1)] - s1 * slope[b] for b in FEW}
    step_image = max(0.0, (slope[b2] - slope[b1]) / (b2 - b1))
    step = max(0.0, slope[b1] - step_image * b1)
    per_image = max(0.0, (rest[b2] - rest[b1]) / (b2 - b1))
    call = max(0.0, rest[b1] - per_image * b1)
    decode = min(max(0.0, decode), per_image)
    return CallCost(call, step, step_image, per_image - decode, decode)


def calibrate(pipe: Any) -> CallCost:
    """The cost of ``pipe``'s calls on this machine, measured once per pipeline (a warm-up,
    :data:`CALIBRATION`'s four short decodes and a decode to pixels: about a second for the
    shipped model on a CPU)."""
    with _lock:
        ref, cost = _costs.get(id(pipe), (None, None))
        if cost is None or ref() is not pipe:
            _timed_call(pipe, 1, 2)
            times = {(b, s): _timed_call(pipe, b, s) for b, s in CALIBRATION}
            cost = fit_cost(times, _timed_decode(pipe, FEW[-1]))
            _costs[id(pipe)] = (weakref.ref(pipe), cost)
        return cost


def forget(pipe: Any) -> None:
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
