"""Cancelled work stops: a plain callback made cancellable stops at its next decode step once
gradio closes its generator (the client cancelled or left)."""

from __future__ import annotations

import threading
import time

import gradio as gr
import pytest

from demo.parts import cancel
from demo.parts.runner import Run


def _slow_work(steps: list[int], stopped: threading.Event) -> str:
    run = Run(pipe=None, label=0, seed=0)
    callback = run.on_step("decoding")
    try:
        for s in range(1000):
            time.sleep(0.02)
            callback(s, 1000, None)  # a decode step: raises once the request is cancelled
            steps.append(s)
    except cancel.Cancelled:
        stopped.set()
        raise
    return "finished"


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_closing_the_generator_stops_the_work_at_its_next_step() -> None:
    steps: list[int] = []
    stopped = threading.Event()
    gen = cancel.run_cancellable(_slow_work, (steps, stopped), {}, n_outputs=3)
    first = next(gen)  # nothing yet: "no change" for every output
    assert isinstance(first, tuple) and len(first) == 3 and all(isinstance(v, type(gr.skip())) for v in first)
    t0 = time.monotonic()
    gen.close()  # what gradio does when the client cancels or disconnects
    assert stopped.wait(2.0), "the work kept running after the request was closed"
    assert time.monotonic() - t0 < 2.0
    n = len(steps)
    time.sleep(0.2)
    assert len(steps) == n and n < 1000


def test_uncancelled_work_returns_its_result_and_errors_pass_through() -> None:
    out = list(cancel.run_cancellable(lambda x: x * 2, (21,), {}, n_outputs=1))
    assert out[-1] == 42

    def boom() -> None:
        raise ValueError("bad input")

    try:
        list(cancel.run_cancellable(boom, (), {}, n_outputs=2))
    except ValueError as exc:
        assert "bad input" in str(exc)
    else:
        raise AssertionError("the error was swallowed")


def test_the_work_gets_its_arguments_by_position_and_by_name() -> None:
    def work(class_name: str, steps: int, seed: int | None = None) -> tuple:
        return (class_name, steps, seed)

    assert list(cancel.run_cancellable(work, ("a", 2), {"seed": 5}, n_outputs=3))[-1] == ("a", 2, 5)
