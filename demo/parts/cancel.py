"""Work stops when its caller leaves.

Gradio stops a streaming (generator) callback when its client cancels or disconnects, but a
plain function runs to its end.  A callback that runs one as ``yield from run_cancellable(...)`` is a
generator that runs the work in a thread and yields "no change" every ``POLL_S`` seconds; when gradio
closes the generator, the work's stop flag is set, and the next decode step (the step
callbacks of :class:`demo.parts.runner.Run` call :func:`raise_if_cancelled`) ends the work.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

POLL_S = 0.5  # how often a waiting callback gives gradio the chance to stop it

_local = threading.local()


class Cancelled(Exception):
    """Raised in a cancelled request's work at its next decode step."""


def raise_if_cancelled() -> None:
    """Raise :class:`Cancelled` when the request this thread works for was cancelled."""
    stop = getattr(_local, "stop", None)
    if stop is not None and stop.is_set():
        raise Cancelled("the request was cancelled")


def _worker(fn: Callable[..., Any], args: tuple, kwargs: dict, events: queue.Queue, stop: threading.Event) -> None:
    _local.stop = stop
    try:
        events.put(("done", fn(*args, **kwargs)))
    except BaseException as exc:  # handed to the waiting generator (or dropped when nobody waits)
        events.put(("error", exc))
    finally:
        _local.stop = None


def run_cancellable(fn: Callable[..., Any], args: tuple, kwargs: dict, n_outputs: int) -> Iterator[Any]:
    """Run ``fn(*args, **kwargs)`` in a thread (with this context: gradio's progress bar keeps
    working); yield ``gr.skip()`` for every output while it runs, then its result.  Closing the
    generator stops the work at its next decode step."""
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    ctx = contextvars.copy_context()
    threading.Thread(
        target=ctx.run, args=(_worker, fn, args, kwargs, events, stop), daemon=True, name="request"
    ).start()
    idle = tuple(gr.skip() for _ in range(n_outputs)) if n_outputs > 1 else gr.skip()
    try:
        while True:
            try:
                kind, value = events.get(timeout=POLL_S)
            except queue.Empty:
                yield idle
                continue
            if kind == "error":
                raise value
            yield value
            return
    finally:
        stop.set()
