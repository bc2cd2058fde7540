"""The cost of a request counts its VQ work and every round (:mod:`arpg.cost`): a windowed panorama
decodes each round's grid and its canvas once (not the whole canvas every round), a re-encoding resize
is priced on its whole bigger grid, and a panorama's canvas has the canvas tasks' cell limit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from arpg import cost, tasks
from arpg.model import ARPG
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline

OPTS = SamplingOptions(steps=3, cfg_scale=2.0)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.random("ARPG-tiny", "VQ-tiny")  # 4x4 grid, 4 px per token


@pytest.fixture(scope="module")
def wide(pipe: Pipeline) -> Pipeline:
    """The tiny model trained (say) on 4x4 and 4x8 grids, as the scenes model on 16x16 to 16x32: a
    panorama's round (half the native width) is then smaller than its window."""
    cfg = replace(pipe.model.cfg, trained_grids=((4, 4), (4, 8)))
    model = ARPG(cfg)
    model.load_state_dict(pipe.model.state_dict())
    return replace(pipe, model=model.eval())


def image(w: int = 16, h: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


class VQWork:
    """Counts of a pipeline's VQ calls and of the cells they turn into pixels or tokens."""

    def __init__(self) -> None:
        self.decodes = self.decoded = self.encodes = self.encoded = 0


@pytest.fixture()
def vq(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> VQWork:
    """Spies on the tokenizer's decode and encode (shared by ``pipe`` and ``wide``)."""
    work, decode, encode = VQWork(), pipe.vq.decode, pipe.vq.encode

    def spy_decode(tokens: torch.Tensor) -> Any:
        work.decodes += 1
        work.decoded += tokens[0].numel()
        return decode(tokens)

    def spy_encode(x: torch.Tensor) -> Any:
        out = encode(x)
        work.encodes += 1
        work.encoded += out[0].numel()
        return out

    monkeypatch.setattr(pipe.vq, "decode", spy_decode)
    monkeypatch.setattr(pipe.vq, "encode", spy_encode)
    return work


def _passes(run: Any) -> int:
    """Forward passes of a task: its step callback is called once per pass."""
    calls: list[int] = []
    run(lambda step, n, tokens: calls.append(step))
    return len(calls)


def test_the_formula_counts_vq_work() -> None:
    c = cost.estimate(256, 32, batch=2, queries=256, decoded=300, encoded=100)
    model = 2 * (32 * 256 + cost.QUERY_WEIGHT * 256)
    assert c.units == 2 * (model + cost.DECODE_WEIGHT * 300 + cost.ENCODE_WEIGHT * 100) + cost.PASS_WEIGHT * 32
    assert "256 queries, 300 cells decoded to pixels, 100 encoded)" in c.describe()


@pytest.mark.parametrize("side", ["right", "top"])
def test_a_windowed_panorama_decodes_each_round_and_its_canvas_once(pipe: Pipeline, vq: VQWork, side: str) -> None:
    """Every round decodes its own 4x4 grid; the canvas is decoded once, at the end: 6 rounds make 7 decodes
    (decoding the growing canvas after every round made 12, and the cost grew with the canvas)."""
    rounds: list[tasks.TaskResult] = []
    res = tasks.panorama(
        pipe, image(), 1, OPTS, times=4, side=side, seed=0, decoding="windowed", on_round=rounds.append
    )
    canvas = res.image.shape[0] * res.image.shape[1] // pipe.factor**2
    assert len(rounds) == 6 and canvas == 64
    assert vq.decodes == len(rounds) + 1 and vq.decoded == 6 * 16 + canvas
    assert vq.encodes == 1 and vq.encoded == 16
    c = cost.task_cost("panorama", OPTS, (4, 4), window=[(4, 4)], decoding="windowed", times=4, side=side)
    assert (c.decoded, c.encoded) == (vq.decoded, vq.encoded)
    assert rounds[-1].image is res.image  # the last round's image is the final one


@pytest.mark.parametrize("decoding", ["windowed", "whole"])
def test_the_estimate_counts_every_round_of_a_panorama(wide: Pipeline, vq: VQWork, decoding: str) -> None:
    """With trained grids wider than a round's step, rounds overlap more than windows of the canvas would:
    the estimate plays the rounds out, so it bounds the forward passes and counts the VQ work exactly."""
    window = list(wide.model.cfg.trained_sizes)
    for side in ("right", "left"):
        vq.decoded = vq.encoded = 0
        passes = _passes(
            lambda cb, s=side: tasks.panorama(
                wide, image(), 1, OPTS, times=3, side=s, seed=0, decoding=decoding, callback=cb
            )
        )
        c = cost.task_cost("panorama", OPTS, (4, 4), window=window, decoding=decoding, times=3, side=side)
        assert c.forward_passes >= passes == 4 * 3, side  # 4 rounds of 3 steps
        assert (c.decoded, c.encoded) == (vq.decoded, vq.encoded), side


@pytest.mark.parametrize(
    "task, params",
    [
        ("generate", {}),
        ("outpaint", {"right": 3, "top": 1}),
        ("resize", {"scale": 2.0, "strategy": "lattice"}),
        ("resize", {"scale": 1.5, "strategy": "reencode", "regenerate": 0.25}),
        ("panorama", {"times": 2}),
    ],
)
@pytest.mark.parametrize("decoding", ["windowed", "whole"])
def test_the_estimate_counts_the_vq_work_of_every_task(
    pipe: Pipeline, vq: VQWork, task: str, params: dict, decoding: str
) -> None:
    img, window = image(24, 16), list(pipe.model.cfg.trained_sizes)
    if task == "generate":
        pipe.generate([1], OPTS, seed=0)
        grid = pipe.grid
    else:
        getattr(tasks, task)(pipe, img, 1, OPTS, seed=0, decoding=decoding, **params)
        grid = (4, 6)
    c = cost.task_cost(task, OPTS, grid, window=window, decoding=decoding, **params)
    assert (c.decoded, c.encoded) == (vq.decoded, vq.encoded)


@pytest.mark.parametrize("decoding", ["windowed", "whole"])
def test_a_reencode_is_priced_on_its_whole_grid(pipe: Pipeline, vq: VQWork, decoding: str) -> None:
    """At scale 1 a re-encode has no new cells, yet re-decodes half the grid in every step: the estimate
    counted one forward pass over it."""
    img, window = image(32, 16), list(pipe.model.cfg.trained_sizes)  # 4 x 8 cells
    res = tasks.resize(pipe, img, 1, OPTS, scale=1.0, strategy="reencode", regenerate=0.5, seed=0, decoding=decoding)
    exact = cost.task_cost(
        "resize", OPTS, (4, 8), window=window, decoding=decoding, scale=1.0, strategy="reencode", regenerate=0.5
    )
    assert exact.forward_passes >= res.trace.forward_passes >= OPTS.steps and exact.queries >= res.trace.queries
    assert (exact.decoded, exact.encoded) == (vq.decoded, vq.encoded) == (32, 32)
    if decoding == "whole":
        assert (exact.cells, exact.forward_passes, exact.queries) == (32, res.trace.forward_passes, res.trace.queries)
    unsaid = cost.task_cost("resize", OPTS, (4, 8), window=window, decoding=decoding, scale=1.0)
    assert unsaid.units >= exact.units  # no strategy: priced as the dearer one


def test_a_reencode_request_at_scale_one_is_priced_like_a_decode_of_its_grid(pipe: Pipeline) -> None:
    """The request the load test found: an 8:1 image re-encoded at scale 1 (the grid of 16x128 cells
    decoded again in 32 steps) was priced at one forward pass."""
    opts = SamplingOptions(steps=32, cfg_scale=3.0)
    c = cost.task_cost("resize", opts, (16, 128), decoding="whole", scale=1.0, strategy="reencode", regenerate=0.5)
    assert (c.cells, c.forward_passes, c.queries) == (2048, 32, 1024)
    vq = (cost.DECODE_WEIGHT + cost.ENCODE_WEIGHT) * 2048
    assert c.units == 2 * (32 * 2048 + cost.QUERY_WEIGHT * 1024) + vq + cost.PASS_WEIGHT * 32


def test_a_panorama_canvas_over_the_limit_is_refused(pipe: Pipeline) -> None:
    """As an outpaint or a resize, by the tasks and by the cost check, before any decode."""
    message = "the panorama 16x1024 has 16384 cells; at most 4096"
    with pytest.raises(ValueError, match=message):
        cost.task_cost("panorama", OPTS, (16, 128), times=8, side="right")
    assert cost.task_cost("panorama", OPTS, (16, 128), times=2, side="right").decoded > 0  # 4096 cells: at the limit
    with pytest.raises(ValueError, match="the panorama 4x18 has 72 cells; at most 40"):
        tasks.panorama(pipe, image(24, 16), 1, OPTS, times=3, seed=0, max_cells=40)
    assert tasks.MAX_CELLS == 4096
