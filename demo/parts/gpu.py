"""Hugging Face ZeroGPU: how long a request holds the GPU, and a callback as registered with gradio
(:func:`action`: errors in plain words, on the GPU when the ``spaces`` package is there).

Each endpoint says how many seconds a request needs with a function of its own (``generate_seconds``
beside ``generate_callback``, ...), which gets the callback's arguments in their order and passes the
values that count to :func:`request_seconds`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .errors import guard

#: GPU time a request reserves on ZeroGPU: a fixed share (moving the model, decoding tokens to
#: pixels, streaming) plus a cost per image and step, never below the floor nor above the cap.
GPU_BASE_S, GPU_STEP_S, GPU_FLOOR_S, GPU_CAP_S = 10.0, 0.05, 15, 120
#: Seconds of a function that says how long a request needs, from the callback's arguments.
Seconds = Callable[..., int]


def gpu_seconds(steps: float, images: float = 1.0, area: float = 1.0) -> int:
    """Seconds of GPU to reserve for ``images`` images decoded in ``steps`` steps, on a grid
    ``area`` times the model's (e.g. 4 for twice the resolution): 10 s + 0.05 s per image-step,
    within [15 s, 120 s] (0.05 s is several times an ARPG-XXL step on a ZeroGPU slice)."""
    seconds = GPU_BASE_S + max(0.0, steps) * max(1.0, images) * max(1.0, area) * GPU_STEP_S
    return int(min(GPU_CAP_S, max(GPU_FLOOR_S, math.ceil(seconds))))


def _amount(value: Any, default: float) -> float:
    """A request's number (or the sum of a list of them); ``default`` when there is none or it is not finite."""
    try:
        total = float(sum(float(v) for v in value)) if isinstance(value, (list, tuple)) else float(value)
    except (TypeError, ValueError):
        return default
    return total if math.isfinite(total) and total > 0 else default


def request_seconds(
    steps: Any,
    images: Any = 1,
    repeats: Any = 1,
    scale: Any = 1,
    times: Any = None,
    decodes: float = 1.0,
    extra_steps: float = 0.0,
) -> int:
    """:func:`gpu_seconds` of one request from its values as the API gives them (one left out or malformed
    counts as its default): ``steps`` (a list: all of them; default 32), ``images`` (a list: all of them)
    times ``repeats``, ``scale`` (area: its square) and ``times`` (a panorama: about two windows per time);
    ``decodes`` decodes of ``steps`` + ``extra_steps``."""
    total_steps = _amount(steps, 32.0) * decodes + extra_steps
    count = _amount(images, 1.0) * _amount(repeats, 1.0)
    area = _amount(scale, 1.0) ** 2
    if times is not None:
        area *= 2 * _amount(times, 1.0)
    return gpu_seconds(total_steps, count, area)


def gpu_duration(seconds: Seconds) -> Callable[..., int]:
    """A ZeroGPU ``duration`` function: it gets the callback's arguments and returns ``seconds(*arguments)``
    (the cap when they do not fit it or it fails: a malformed request is the callback's to report)."""

    def duration(*args: Any, **kwargs: Any) -> int:
        try:
            return int(seconds(*args, **kwargs))
        except Exception:
            return int(GPU_CAP_S)

    return duration


def on_gpu(fn: Callable, duration: Callable[..., int] | None = None) -> Callable:
    """``spaces.GPU`` (Hugging Face ZeroGPU) when the ``spaces`` package is importable: with
    ``duration`` (seconds from the call's arguments) when given, else its default duration."""
    try:
        import spaces  # type: ignore[import-not-found]  # optional: only on Hugging Face Spaces
    except ImportError:
        return fn
    return spaces.GPU(fn) if duration is None else spaces.GPU(duration=duration)(fn)


def action(fn: Callable, seconds: Seconds | None) -> Callable:
    """A callback as registered with gradio: errors in plain words, on the GPU when available for as long
    as ``seconds(*its arguments)`` says (None: ZeroGPU's default)."""
    return on_gpu(guard(fn), None if seconds is None else gpu_duration(seconds))
