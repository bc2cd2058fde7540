"""The app's side of request batching: Generate goes through arpg.serve, and the step previews of
concurrent requests share one budget."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from demo.parts import runner


def test_running_streams_are_counted_while_they_decode():
    seen: list[int] = []
    both = threading.Barrier(2, action=lambda: seen.append(runner._STREAMS.running), timeout=60)

    def work(callback):
        both.wait()  # the two decodes run at the same time: the count is read then
        callback(0, 1, torch.zeros(1, 2, 2, dtype=torch.long))
        return "done"

    results: list = []
    other = threading.Thread(target=lambda: results.append(list(runner.stream_steps(work))[-1].result))
    other.start()
    mine = list(runner.stream_steps(work))[-1].result
    other.join(60)
    assert seen == [2]  # a preview of each comes at most every 2 x PARTIAL_EVERY_S
    assert mine == results[0] == "done" and runner._STREAMS.running == 0


@pytest.mark.slow  # three seconds of steps
def test_previews_take_at_most_their_share_of_a_request():
    """A consumer that needs 0.3 s for each preview (a large canvas decoded to pixels) is sent one at
    most every 0.3 / PARTIAL_SHARE s, not every PARTIAL_EVERY_S: previews, which the cost estimate
    does not count, cannot double a request's cost."""

    def work(callback):
        for step in range(150):
            time.sleep(0.02)
            callback(step, 150, torch.zeros(1, 2, 2, dtype=torch.long))
        return "done"

    t0, previews = time.monotonic(), 0
    for ev in runner.stream_steps(work):
        if ev.result is None:
            previews += 1
            time.sleep(0.3)
    took = time.monotonic() - t0
    period = 0.3 / runner.PARTIAL_SHARE
    assert previews <= took / period + 2, f"{previews} previews in {took:.1f} s"  # the first and last come early
