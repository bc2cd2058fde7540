"""How callbacks run: every exception of a callback (or of an input check) becomes one short
``gr.Error`` in plain words on the page, never a traceback; on a ZeroGPU Space each callback
holds the GPU for a time computed from its inputs (:func:`action`)."""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import gradio as gr

from arpg.validation import short_message

log = logging.getLogger("demo")

#: Exceptions whose message is written for the user (bad input, a missing file, ...).
PLAIN_ERRORS = (ValueError, KeyError, IndexError)
PLAIN_ERROR_NAMES = ("CheckpointError", "WeightsUnavailable")


def refuse(message: str) -> gr.Error:
    """A gr.Error for bad input: shown on the page, not logged with a traceback; one line, echoed
    input at most 80 characters (:func:`arpg.validation.short_message`)."""
    return gr.Error(short_message(message), print_exception=False)


def _sentence(text: str) -> str:
    """One sentence of an error text: :func:`arpg.validation.short_message` (first line, echoed input
    at most 80 characters), capitalised, with a full stop."""
    text = short_message(text)
    if not text:
        return "Something went wrong."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def to_error(exc: BaseException) -> gr.Error:
    """A plain-words gr.Error for any exception (no traceback reaches the page)."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, PLAIN_ERRORS) or type(exc).__name__ in PLAIN_ERROR_NAMES:
        return refuse(_sentence(short_message(str(exc)).strip("'\"")))  # cut before a KeyError's quotes go
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return refuse("Out of memory: try fewer images, a smaller batch or a smaller scale.")
    log.exception("unexpected error in a callback", exc_info=exc)
    return refuse(
        f"Something went wrong ({type(exc).__name__}: {_sentence(str(exc))}) "
        "The app is still running; try other settings."
    )


@contextmanager
def plain_errors() -> Iterator[None]:
    """Inside this block every exception leaves as :func:`to_error`'s gr.Error."""
    try:
        yield
    except Exception as exc:
        raise to_error(exc) from None


def guard(fn: Callable) -> Callable:
    """Turn every exception of a callback (plain or generator) into a gr.Error."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with plain_errors():
                yield from fn(*args, **kwargs)

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with plain_errors():
            return fn(*args, **kwargs)

    return wrapper


# -- Hugging Face ZeroGPU ------------------------------------------------------------------------
#: GPU time a request reserves on ZeroGPU: a fixed share (moving the model, decoding tokens to
#: pixels, streaming) plus a cost per image and step, never below the floor nor above the cap.
GPU_BASE_S, GPU_STEP_S, GPU_FLOOR_S, GPU_CAP_S = 10.0, 0.05, 15, 120


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


def request_seconds(values: Mapping[str, Any], decodes: float = 1.0, extra_steps: float = 0.0) -> int:
    """:func:`gpu_seconds` of one request from its named inputs: ``steps`` (a list: all of them),
    ``n_images`` or ``batches`` (times ``repeats``), ``scale`` (area: its square) and ``times``
    (a panorama: about two windows per time); ``decodes`` decodes of ``steps`` + ``extra_steps``."""
    steps = _amount(values.get("steps"), 32.0) * decodes + extra_steps
    images = _amount(values.get("n_images", values.get("batches")), 1.0) * _amount(values.get("repeats"), 1.0)
    area = _amount(values.get("scale"), 1.0) ** 2
    if "times" in values:
        area *= 2 * _amount(values["times"], 1.0)
    return gpu_seconds(steps, images, area)


def gpu_duration(fn: Callable, cost: Callable[[Mapping[str, Any]], float]) -> Callable[..., int]:
    """A ZeroGPU ``duration`` function for ``fn``: it gets ``fn``'s arguments and returns
    ``cost(arguments by name)`` (the cap when they do not fit ``fn`` or ``cost`` fails)."""
    sig = inspect.signature(fn)

    def duration(*args: Any, **kwargs: Any) -> int:
        try:
            return int(cost(sig.bind_partial(*args, **kwargs).arguments))
        except Exception:  # a malformed request must not fail here: the callback reports it
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


def action(fn: Callable, cost: Callable[[Mapping[str, Any]], float] | None = request_seconds) -> Callable:
    """A callback as registered with gradio: errors in plain words, on the GPU when available
    for as long as ``cost`` (seconds from the inputs by name; None: ZeroGPU's default) says."""
    return on_gpu(guard(fn), None if cost is None else gpu_duration(fn, cost))
