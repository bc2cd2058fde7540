"""The app's side of request batching: Generate goes through arpg.serve, and the step previews of
concurrent requests share one budget."""

from __future__ import annotations

import threading

import torch

from demo.tabs import runner


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
