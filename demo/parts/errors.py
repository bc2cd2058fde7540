"""How callbacks fail: every exception of a callback (or of an input check) becomes one short
``gr.Error`` in plain words on the page, never a traceback (a callback is registered through
:func:`demo.parts.gpu.action`, which adds ZeroGPU's time)."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
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
