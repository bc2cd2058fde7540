"""The one way a tab runs a decode: pick the seed, stream the partial images while the model
decodes (at most a few per second), then the result with its one-line summary.

A tab's callback starts a :class:`Run` (class and seed checked), gives it the work as
``work(callback)`` and says how to show partial images and the result; errors become plain
words through :func:`demo.parts.gpu.action`, with which every callback is registered.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline
from arpg.validation import check_seed
from arpg.viz.frames import mask_unknown

from ..links import Recipe, reproduce_markdown
from .cancel import raise_if_cancelled
from .errors import refuse

PARTIAL_EVERY_S = 0.2  # at most this often a partial image is sent while decoding
PARTIAL_SHARE = 0.2  # and at most this share of a request's time goes to making partial images


def pick_seed(seed: Any, randomize: bool) -> int:
    """A fresh random seed when ``randomize`` (or no seed given), else ``seed`` (checked)."""
    return check_seed(None if randomize or seed is None or seed == "" else seed)


def summary(*parts: str | None) -> str:
    """Join the non-empty parts of a one-line result summary."""
    return " · ".join(p for p in parts if p)


def plural(n: int, word: str) -> str:
    """``"1 step"``, ``"2 steps"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def partial_images(pipe: Pipeline, tokens: Any) -> list[np.ndarray]:
    """Decoded images of partial tokens (B, rows, cols) with the unknown cells checkered."""
    imgs = pipe.decode(tokens)
    known = (tokens >= 0).cpu().numpy()
    return [mask_unknown(im, k) for im, k in zip(imgs, known)]


# -- streaming ----------------------------------------------------------------------------------
class _Stopped(Exception):
    """Raised inside the decode loop when the page no longer waits for it."""


@dataclass
class StepEvent:
    """A partial decode (``result`` None) or the final result."""

    step: int = 0
    n_steps: int = 0
    tokens: Any = None
    result: Any = None


def _start(work: Callable[[Callable], Any], events: queue.Queue, stop: threading.Event) -> None:
    """Run ``work(callback)`` in a thread that puts its steps, then its result or error, on ``events``."""

    def callback(step: int, n_steps: int, tokens: Any) -> None:
        if stop.is_set():
            raise _Stopped()
        events.put(("step", StepEvent(step, n_steps, tokens.clone())))

    def run() -> None:
        try:
            events.put(("done", work(callback)))
        except BaseException as exc:  # handed to the consumer
            events.put(("error", exc))

    threading.Thread(target=run, daemon=True, name="decode").start()


class _Running:
    """How many streams are decoding now in this process."""

    def __init__(self) -> None:
        self.running, self._lock = 0, threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.running += n


_STREAMS = _Running()


def stream_steps(
    work: Callable[[Callable], Any], progress: Any = None, desc: str = "Decoding", every_s: float = PARTIAL_EVERY_S
) -> Iterator[StepEvent]:
    """Run ``work(callback)`` in a thread and yield its partial decodes, then its result.

    ``callback(step, n_steps, tokens)`` is the pipeline's step callback.  Partial decodes
    come at most every ``every_s`` seconds times the number of streams running at once (the newest
    one; older ones are dropped; previews share one budget of partial decodes, so concurrent batched
    requests do not spend the CPU on previews), and after one that took the consumer ``d`` seconds
    (decoding it to pixels, sending it) not before ``d * (1 / PARTIAL_SHARE - 1)`` more: a large
    canvas's previews cost at most :data:`PARTIAL_SHARE` of the request, which the cost estimate
    (:mod:`arpg.cost`) does not count. They drive ``progress``.  Errors of ``work`` are raised
    here; closing the iterator stops it.
    """
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    last_sent, pause = 0.0, 0.0
    _STREAMS.add(1)
    try:
        _start(work, events, stop)
        while True:
            kind, value = events.get()
            latest = None
            while kind == "step":  # keep only the newest partial decode
                latest = value
                try:
                    wait = max(every_s * _STREAMS.running, pause) - (time.monotonic() - last_sent)
                    kind, value = events.get(timeout=max(0.0, wait))
                except queue.Empty:
                    break
            if latest is not None:
                if progress is not None:
                    progress((latest.step + 1, latest.n_steps), desc=desc)
                shown = time.monotonic()
                yield latest
                last_sent = time.monotonic()  # the consumer made and sent the preview meanwhile
                pause = (last_sent - shown) * (1 / PARTIAL_SHARE - 1)
            if kind == "error":
                raise value
            if kind == "done":
                yield StepEvent(result=value)
                return
    finally:
        stop.set()
        _STREAMS.add(-1)


# -- one request --------------------------------------------------------------------------------
@dataclass
class Run:
    """One request of a tab: the model, the class asked for, the seed picked, the progress bar, and
    what it runs (:meth:`record`: the summary then says how to make the same result again)."""

    pipe: Pipeline
    label: int
    seed: int
    progress: Any = None
    recipe: Recipe | None = None

    @classmethod
    def start(cls, pipe: Pipeline, class_name: Any, seed: Any, randomize: bool, progress: Any = None) -> Run:
        """Check the class (a name or a number of ``pipe``'s classes; None, left out of an API call: its first,
        as on the page) and pick the seed (a fresh one when ``randomize``)."""
        class_name = pipe.class_names[0] if class_name is None else class_name
        try:
            label = pipe.label_of(class_name)
        except ValueError as exc:
            text, n = str(exc)[:160], pipe.num_classes  # (a name sent through the API may be long)
            raise refuse(
                f"{text[:1].upper()}{text[1:]}: {pipe.name} has {n} classes; pick one of their names "
                f"or a number from 0 to {n - 1}."
            ) from None
        return cls(pipe, label, pick_seed(seed, randomize), progress)

    @property
    def class_name(self) -> str:
        """The readable name of the class."""
        return self.pipe.class_names[self.label]

    def record(self, task: str, options: SamplingOptions, **settings: Any) -> None:
        """Remember what this request runs: ``task`` (the endpoint's API name) with ``options`` and the
        task's own inputs ``settings`` by their API parameter names (see :mod:`demo.links`)."""
        self.recipe = Recipe.of(self.pipe, self.label, self.seed, task, options, settings)

    def summary(self, *parts: str | None) -> str:
        """The result's one-line summary: class, seed, then the non-empty ``parts``; after :meth:`record`,
        the command line and the page link that make the same result."""
        line = summary(f"**{self.class_name}**", f"seed {self.seed}", *parts)
        return line + reproduce_markdown(self.recipe) if self.recipe is not None else line

    def on_step(self, desc: str | Callable[[int], str]) -> Callable[[int, int, Any], None]:
        """A pipeline step callback that moves the progress bar (``desc`` may depend on the step)."""

        def callback(step: int, n_steps: int, tokens: Any) -> None:
            raise_if_cancelled()
            text = desc(step) if callable(desc) else desc
            if self.progress is not None:
                self.progress((step + 1, n_steps), desc=text)

        return callback

    def count_steps(self, total: int, desc: str) -> Callable[[int, int, Any], None]:
        """A step callback for several decodes in a row: the bar counts the steps of all of them."""
        done = [0]

        def callback(step: int, n_steps: int, tokens: Any) -> None:
            raise_if_cancelled()
            done[0] += 1
            if self.progress is not None:
                self.progress((done[0], total), desc=desc)

        return callback

    def stream(
        self,
        work: Callable[[Callable], Any],
        desc: str,
        show: Callable[[list[np.ndarray]], Any],
        finish: Callable[[Any, float], tuple],
        keep: int = 0,
    ) -> Iterator[tuple]:
        """Yield ``(show(partial images), seed, "step i of n …", *keep unchanged outputs)`` while
        ``work(callback)`` decodes, then ``finish(result, seconds)``."""
        t0 = time.perf_counter()
        for ev in stream_steps(work, self.progress, desc):
            if ev.result is not None:
                yield finish(ev.result, time.perf_counter() - t0)
                return
            yield (
                show(partial_images(self.pipe, ev.tokens)),
                self.seed,
                f"step {ev.step + 1} of {ev.n_steps} …",
                *[gr.skip()] * keep,
            )
