"""Windowed against whole-canvas decoding in the canvas tasks (outpaint, panorama, resize) and the tabs'
"Decoding" choice, on the random tiny model (trained size 4x4 tokens of 4 px: 16x16 px images)."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from arpg import masks, tasks, windows
from arpg.images import prepare_image
from arpg.pipeline import Pipeline
from arpg.sampling import generate
from arpg.windows import DECODINGS

OPTS = {"steps": 3, "cfg_scale": 2.0}
MEASURED = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "windows.json"


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.random("ARPG-tiny", "VQ-tiny")


def image(h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def assert_decoded_once(res: tasks.TaskResult) -> None:
    """Every cell that was not context decoded exactly once, and only those."""
    free = ~res.known
    assert sorted(res.trace.order.flatten().tolist()) == free.flatten().nonzero().flatten().tolist()
    assert ((res.trace.step_of >= 0) == free).all() and sum(res.trace.counts) == int(free.sum())


@pytest.fixture()
def grids(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The grids every plain decode runs on (windowed or whole)."""
    seen: list[tuple[int, int]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(tuple(kwargs["grid"]))
        return generate(*args, **kwargs)

    monkeypatch.setattr(windows, "generate", spy)
    monkeypatch.setattr("arpg.pipeline.generate", spy)
    return seen


# -- the tasks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("decoding", DECODINGS)
def test_outpaint_decodes_every_new_cell_once_and_keeps_the_input(pipe: Pipeline, decoding: str, grids: list) -> None:
    img = image()
    codes = pipe.encode(prepare_image(img, 4, 4)[None])[0]
    res = tasks.outpaint(pipe, img, 1, right=5, top=1, seed=0, decoding=decoding, **OPTS)
    assert res.tokens.shape == (5, 9) and torch.equal(res.tokens[1:, :4], codes)
    assert_decoded_once(res)
    b = masks.SEAM_BAND  # the input is kept beyond the seam band where the new cells meet it (top, right)
    assert np.array_equal(res.image[4 + b :, : 16 - b], img[b:, : 16 - b])
    if decoding == "windowed":
        assert len(grids) > 1 and all(r <= 4 and c <= 4 for r, c in grids)
    else:
        assert grids == [(5, 9)]


@pytest.mark.parametrize("strategy", tasks.RESIZE_STRATEGIES)
@pytest.mark.parametrize("decoding", DECODINGS)
def test_resize_decodes_every_new_cell_once_and_keeps_the_context(
    pipe: Pipeline, decoding: str, strategy: str, grids: list
) -> None:
    img = image()
    codes = pipe.encode(prepare_image(img, 4, 4)[None])[0]
    res = tasks.resize(pipe, img, 2, scale=2.0, strategy=strategy, seed=1, decoding=decoding, **OPTS)
    assert res.tokens.shape == (8, 8)
    assert_decoded_once(res)
    if strategy == "lattice":
        assert torch.equal(res.tokens[::2, ::2], codes)
    assert all(r <= 4 and c <= 4 for r, c in grids) if decoding == "windowed" else grids == [(8, 8)]


@pytest.mark.parametrize("side", ["right", "left", "top", "bottom"])
@pytest.mark.parametrize("decoding", DECODINGS)
def test_panorama_rounds_decode_trained_grids_and_keep_the_input(
    pipe: Pipeline, decoding: str, side: str, grids: list
) -> None:
    img = image(seed=3)
    rounds: list[tasks.TaskResult] = []
    res = tasks.panorama(pipe, img, 1, times=3, side=side, seed=2, decoding=decoding, on_round=rounds.append, **OPTS)
    vertical = side in ("top", "bottom")
    assert res.image.shape == ((48, 16, 3) if vertical else (16, 48, 3)) and len(rounds) == 4
    b = masks.SEAM_BAND  # the input is kept beyond the seam band where the first round meets it
    away = {"right": np.s_[:, : 16 - b], "left": np.s_[:, b:], "bottom": np.s_[: 16 - b], "top": np.s_[b:]}[side]
    kept = {"right": res.image[:, :16], "left": res.image[:, -16:], "bottom": res.image[:16], "top": res.image[-16:]}
    assert np.array_equal(kept[side][away], img[away])
    for r in rounds:
        assert tuple(r.tokens.shape) == pipe.grid and int((~r.known).sum()) == 8
        assert_decoded_once(r)
    assert [r.image.shape[0 if vertical else 1] for r in rounds] == [24, 32, 40, 48]
    assert grids == [pipe.grid] * 4


def test_windowed_panorama_continues_the_canvas_tokens(pipe: Pipeline) -> None:
    """A windowed round's context is the canvas's own tokens (the last round's new cells included),
    where a whole round re-encodes the pixels decoded so far."""
    rounds: list[tasks.TaskResult] = []
    tasks.panorama(pipe, image(seed=4), 1, times=2, seed=5, decoding="windowed", on_round=rounds.append, **OPTS)
    first, second = rounds
    assert torch.equal(second.tokens[:, :2], first.tokens[:, 2:])


def test_the_default_is_the_measured_one(pipe: Pipeline) -> None:
    img = image(seed=6)
    for task, run in {
        "outpaint": lambda d: tasks.outpaint(pipe, img, 1, right=3, seed=7, decoding=d, **OPTS),
        "resize": lambda d: tasks.resize(pipe, img, 1, scale=2.0, seed=7, decoding=d, **OPTS),
        "panorama": lambda d: tasks.panorama(pipe, img, 1, times=2, seed=7, decoding=d, **OPTS),
    }.items():
        assert tasks.decoding_for(task) == tasks.DEFAULT_DECODING[task] in DECODINGS
        assert torch.equal(run(None).tokens, run(tasks.DEFAULT_DECODING[task]).tokens)


def test_the_defaults_are_the_measured_winners() -> None:
    """DEFAULT_DECODING is what scripts/bench_windows.py measured best on the shipped model, for every
    task (both resize strategies); the measurement ran on canvases bigger than its trained grid."""
    measured = json.loads(MEASURED.read_text())
    assert measured["trained_sizes"] == [[16, 16]] and measured["trials"] >= 50
    for name, row in measured["tasks"].items():
        assert row["winner"] == tasks.DEFAULT_DECODING[name.split()[0]], name


def test_a_canvas_that_fits_a_window_is_the_same_either_way(pipe: Pipeline) -> None:
    img = image(16, 8)  # 4x2 cells + 2 to the right: 4x4, the trained size
    a, b = (tasks.outpaint(pipe, img, 1, right=2, seed=8, decoding=d, **OPTS) for d in DECODINGS)
    assert torch.equal(a.tokens, b.tokens) and np.array_equal(a.image, b.image)


@pytest.mark.parametrize("bad", ["tiles", "", "Windowed", 1, ["whole"]])
def test_a_bad_decoding_is_refused(pipe: Pipeline, bad: Any) -> None:
    img = image()
    for call in (
        lambda: tasks.outpaint(pipe, img, 1, right=1, seed=0, decoding=bad, **OPTS),
        lambda: tasks.panorama(pipe, img, 1, times=2, seed=0, decoding=bad, **OPTS),
        lambda: tasks.resize(pipe, img, 1, scale=2.0, seed=0, decoding=bad, **OPTS),
    ):
        with pytest.raises(ValueError, match="decoding must be one of windowed, whole"):
            call()
    with pytest.raises(ValueError, match="task must be one of"):
        tasks.decoding_for("inpaint")


# -- the tabs ------------------------------------------------------------------------------------
@pytest.fixture()
def choice(pipe: Pipeline) -> Any:
    """A ModelChoice over the tiny model with the Outpaint and Resolution tabs built."""
    import gradio as gr

    from arpg.store import ModelStore
    from demo.parts.model_choice import ModelChoice
    from demo.tabs import outpaint, resolution

    with gr.Blocks():
        c = ModelChoice.build(ModelStore(pipe, device="cpu"))
        outpaint.build(c, gr.State(None))
        resolution.build(c, gr.State(None))
    return c


@pytest.fixture()
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """(task, decoding) of every task the tabs run."""
    seen: list[tuple[str, Any]] = []
    for name in ("outpaint", "panorama", "resize"):
        real = getattr(tasks, name)

        def spy(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            seen.append((_name, kwargs.get("decoding")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(tasks, name, spy)
    return seen


@pytest.mark.parametrize("decoding", DECODINGS)
def test_the_tabs_pass_the_decoding_before_the_model(choice: Any, pipe: Pipeline, asked: list, decoding: str) -> None:
    from demo.parts.widgets import SAMPLING_FIELDS
    from demo.tabs.outpaint import outpaint_callback, panorama_callback
    from demo.tabs.resolution import resize_callback

    sampling = [getattr(pipe.defaults.replace(steps=2), f) for f in SAMPLING_FIELDS]
    calls = [
        (outpaint_callback, [["right"], 2]),
        (panorama_callback, ["right", 2]),
        (resize_callback, [2.0, "lattice", 0.5]),
    ]
    for make, own in calls:
        callback = make(choice)
        names = list(inspect.signature(callback).parameters)
        assert names[-3:] == ["decoding", "model", "progress"] and names[-4 - len(SAMPLING_FIELDS)] == "randomize"
        outs = list(callback(image(), "class 1", *own, 3, False, *sampling, decoding, pipe.name, None))
        assert outs[-1][1] == 3
    assert asked == [("outpaint", decoding), ("panorama", decoding), ("resize", decoding)]


def test_the_handlers_check_the_cost_first(pipe: Pipeline, asked: list, monkeypatch: pytest.MonkeyPatch) -> None:
    import gradio as gr

    from arpg.cost import COST_ENV
    from demo.parts.errors import guard
    from demo.tabs.outpaint import run_outpaint, run_panorama
    from demo.tabs.resolution import run_resize

    monkeypatch.setenv(COST_ENV, "10")
    opts = pipe.defaults.replace(steps=2)
    for run, own in (
        (run_outpaint, [["right"], 2]),
        (run_panorama, ["right", 2]),
        (run_resize, [2.0, "lattice", 0.5]),
    ):
        with pytest.raises(gr.Error, match="too expensive"):
            list(guard(run)(pipe, image(), "class 1", *own, 3, False, "windowed", opts, progress=None))
    assert asked == []


def test_the_radio_offers_both_on_the_models_decoding(choice: Any, pipe: Pipeline) -> None:
    import gradio as gr

    from demo.parts.decoding import decoding_radio

    with gr.Blocks():
        radio = decoding_radio(choice, "resize")
    assert isinstance(radio, gr.Radio) and [c[0] for c in radio.choices] == list(DECODINGS)
    assert radio.value == tasks.DEFAULT_DECODING["resize"] == pipe.decodings["resize"] and radio.label == "Decoding"
    (follower,) = [f for f in choice.followers if radio in f.components]
    other = replace(pipe, decodings={**pipe.decodings, "resize": "whole"})  # a model whose JSON says whole
    assert follower.update(other)[0]["value"] == "whole" and follower.update(pipe)[0]["value"] == "windowed"
