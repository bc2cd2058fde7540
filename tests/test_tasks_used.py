"""What a task's result records it used (order, steps, decoding, windows; issue 24): the one canvas decode
(:func:`arpg.windows.generate_canvas`) reports it, every task of :mod:`arpg.tasks` keeps it on its result, and the
summaries (the tabs', the command line's) say what it says. On the random tiny model (trained on 4x4 tokens of
4 px) and, for the resolution change left to the model's decoding, the shipped scenes model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import arpg
from arpg import tasks, windows
from arpg.checkpoints import save_checkpoint
from arpg.cli import main
from arpg.commands import decoding_words
from arpg.config import ARPGConfig, VQConfig
from arpg.model import ARPG
from arpg.pipeline import Pipeline
from arpg.sampling import generate
from arpg.tokenizer import VQModel
from arpg.windows import DECODINGS, Used, canvas_window, generate_canvas
from demo.tabs.outpaint import run_outpaint, run_panorama
from demo.tabs.resolution import run_resize

OPTS = {"steps": 3, "cfg_scale": 2.0}
SCENES = Path(arpg.__file__).resolve().parent / "assets" / "models" / "scenes"


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.random("ARPG-tiny", "VQ-tiny")


@pytest.fixture()
def windows_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The grid of every window a windowed decode runs (a decode of the whole grid runs none)."""
    seen: list[tuple[int, int]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(tuple(kwargs["grid"]))
        return generate(*args, **kwargs)

    monkeypatch.setattr(windows, "generate", spy)
    return seen


def image(h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def whole(pipe: Pipeline, steps: int = 3) -> Used:
    return Used(pipe.defaults.order, steps, "whole")


# -- the bug: the scenes model's resolution change left to the model ---------------------------------------
@pytest.mark.skipif(not (SCENES / "arpg.safetensors").exists(), reason="scenes model not trained")
@pytest.mark.slow  # over 0.5 s: the fast tier stays under a minute
def test_the_scenes_resolution_change_left_to_the_model_is_decoded_whole_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scenes model's JSON says resize "whole"; the Resolution tab (and /resize) called with no decoding
    resolved it itself, the task once more, and the summary re-derived it from the handler's copy: now the
    task resolves it once and the summary says what the result records."""
    pipe = Pipeline.shipped(SCENES, device="cpu")
    assert pipe.decodings["resize"] == "whole" and pipe.resize_defaults.scale == 2
    results: list[tasks.TaskResult] = []
    real = tasks.resize

    def resize(*args: Any, **kwargs: Any) -> tasks.TaskResult:
        results.append(real(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(tasks, "resize", resize)
    options = pipe.defaults.replace(steps=2)
    run = run_resize(pipe, image(64, 64), "mountains", None, None, None, 1, False, None, options, progress=None)
    (_, result), _, info = list(run)[-1]
    (res,) = results
    assert res.used == Used("random", 2, "whole", None, None) and res.trace.forward_passes == 2  # one decode
    assert result.shape == (128, 128, 3) and "decoded whole: the 32×32-token grid is bigger" in info
    assert "in windows" not in info and "--decoding windowed" not in info


# -- the one canvas decode ---------------------------------------------------------------------------------
def test_the_one_rule_of_windowed_against_whole(pipe: Pipeline) -> None:
    cfg = pipe.model.cfg  # trained on 4x4
    assert canvas_window("whole", (9, 9), None, cfg) is None
    assert canvas_window("windowed", (4, 3), None, cfg) is None  # fits: one decode either way
    assert canvas_window("windowed", (5, 9), None, cfg) == (4, 4)
    assert canvas_window("windowed", (5, 9), (2, 3)) == (2, 3)
    with pytest.raises(ValueError, match="decoding must be one of windowed, whole"):
        canvas_window("tiles", (5, 9), None, cfg)


def test_generate_canvas_takes_resolved_options_and_records_the_decode(pipe: Pipeline, windows_seen: list) -> None:
    opts = pipe.defaults.replace(**OPTS)
    with pytest.raises(TypeError, match="options must be a SamplingOptions"):
        generate_canvas(pipe, [1], None, seed=4)
    assert generate_canvas(pipe, [1], opts, seed=4, decoding="whole", grid=(4, 10)).used == whole(pipe)
    assert generate_canvas(pipe, [1], opts, seed=4).used == Used(opts.order, 3, "windowed", (4, 4), 1)
    assert windows_seen == []  # a grid that fits: one decode of it, windowed or not
    wide = generate_canvas(pipe, [1], opts.replace(order="raster"), seed=4, grid=(4, 10))
    assert wide.used == Used("raster", 3, "windowed", (4, 4), len(windows_seen)) and len(windows_seen) > 1
    perm = generate_canvas(pipe, [1], opts.replace(order=torch.arange(16)), seed=4, decoding="whole")
    assert perm.used.order == "permutation"


# -- every task records it ---------------------------------------------------------------------------------
@pytest.mark.parametrize("decoding", DECODINGS)
def test_outpaint_records_what_it_used(pipe: Pipeline, decoding: str, windows_seen: list) -> None:
    res = tasks.outpaint(pipe, image(), 1, right=5, top=1, seed=0, decoding=decoding, **OPTS)  # a 5x9 canvas
    if decoding == "whole":
        assert res.used == whole(pipe) and windows_seen == []
    else:
        assert res.used == Used(pipe.defaults.order, 3, "windowed", (4, 4), len(windows_seen))
        assert len(windows_seen) > 1 and set(windows_seen) == {(4, 4)}


def test_outpaint_records_the_models_decoding_and_a_canvas_in_one_window(pipe: Pipeline, windows_seen: list) -> None:
    res = tasks.outpaint(pipe, image(16, 8), 1, right=2, seed=0, **OPTS)  # 4x2 cells to 4x4: a trained size
    assert pipe.decodings["outpaint"] == "windowed" and windows_seen == []
    assert res.used == Used(pipe.defaults.order, 3, "windowed", (4, 4), 1)
    assert tasks.outpaint(pipe, image(), 1, seed=0, **OPTS).used == Used(pipe.defaults.order, 0, "windowed")


@pytest.mark.parametrize("decoding", DECODINGS)
@pytest.mark.parametrize("strategy", ["lattice", "reencode"])
def test_resize_records_what_it_used(pipe: Pipeline, decoding: str, strategy: str, windows_seen: list) -> None:
    res = tasks.resize(
        pipe, image(), 1, scale=2.0, strategy=strategy, seed=1, decoding=decoding, order="raster", **OPTS
    )
    if decoding == "whole":
        assert res.used == Used("raster", 3, "whole") and windows_seen == []
    else:
        assert res.used == Used("raster", 3, "windowed", (4, 4), len(windows_seen)) and len(windows_seen) > 1


def test_resize_records_the_steps_it_used_and_none_when_nothing_grows(pipe: Pipeline) -> None:
    few = tasks.resize(pipe, image(), 1, scale=1.25, strategy="reencode", regenerate=0.08, seed=1, **OPTS)
    assert int((~few.known).sum()) == 2 and few.used.steps == 2 and "only 2 tokens" in few.note
    same = tasks.resize(pipe, image(), 1, scale=1.0, strategy="lattice", seed=1, decoding="whole", **OPTS)
    assert same.used == Used(pipe.defaults.order, 0, "whole") and same.trace.counts == []


@pytest.mark.parametrize("decoding", DECODINGS)
def test_panorama_records_every_rounds_windows(pipe: Pipeline, decoding: str) -> None:
    rounds: list[tasks.TaskResult] = []
    res = tasks.panorama(pipe, image(), 1, times=3, seed=2, decoding=decoding, on_round=rounds.append, **OPTS)
    assert len(rounds) == 4 and rounds[-1].used == res.used  # 2 new cells a round, 4 to 12 columns
    if decoding == "whole":
        assert all(r.used == whole(pipe) for r in rounds)
    else:  # each round one 4x4 window of the canvas's tokens
        assert [r.used.windows for r in rounds] == [1, 2, 3, 4] and res.used.window == (4, 4)
    assert tasks.panorama(pipe, image(), 1, times=1, seed=2, **OPTS).used.steps == 0


def test_inpaint_and_edit_record_a_decode_of_the_whole_grid(pipe: Pipeline) -> None:
    mask = np.zeros((16, 16), bool)
    mask[:8, :8] = True
    assert tasks.inpaint(pipe, image(), mask, 1, seed=3, **OPTS).used == whole(pipe)
    assert tasks.inpaint(pipe, image(), mask, 1, seed=3, steps=40).used.steps == 4  # one step per cell: 2x2
    assert tasks.edit(pipe, image(), mask, 2, seed=3, **OPTS).used.decoding == "whole"
    assert replace(tasks.inpaint(pipe, image(), mask, 1, seed=3, **OPTS), note="x").used == whole(pipe)


# -- the summaries say what it records ---------------------------------------------------------------------
@pytest.mark.parametrize("decoding", [None, "whole"])
def test_the_outpaint_and_panorama_summaries_say_the_record(pipe: Pipeline, decoding: str | None) -> None:
    options = pipe.defaults.replace(steps=2)
    out = run_outpaint(pipe, image(), "class 1", ["right"], 5, 3, False, decoding, options, progress=None)
    info = list(out)[-1][2]
    pano = run_panorama(pipe, image(), "class 1", "right", 2, 3, False, decoding, options, progress=None)
    pano_info = list(pano)[-1][2]
    if decoding is None:  # the model's: windowed
        assert "decoded in windows: the 9×4-token grid is bigger than the 4×4" in info and "windows of 4×4)" in info
        assert "decoded in 2 windows of 4×4 tokens" in pano_info
    else:
        assert "decoded whole: the 9×4-token grid is bigger" in info and "each round decoded whole" in pano_info


def test_the_command_line_says_the_record() -> None:
    assert decoding_words(Used("random", 3, "whole")) == "whole decoding"
    assert decoding_words(Used("random", 3, "windowed", (4, 4), 1)) == "windowed decoding"
    assert decoding_words(Used("random", 3, "windowed", (4, 6), 5)) == "windowed decoding (5 windows of 6x4 tokens)"


def test_the_command_line_prints_the_windows_it_decoded_in(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    cfg = replace(ARPGConfig.from_name("ARPG-tiny"), trained_grids=((4, 4),))
    save_checkpoint(ARPG(cfg).init_weights(0.2).eval(), tmp_path / "arpg.safetensors", cfg.to_dict())
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")).eval(), tmp_path / "vq.safetensors")
    Image.fromarray(image()).save(tmp_path / "in.png")
    args = ["resize", str(tmp_path / "in.png"), "--class", "1", "--model", str(tmp_path), "--scale", "2"]
    assert main([*args, "--out", str(tmp_path / "out.png"), "--steps", "2", "--seed", "1"]) == 0
    printed = capsys.readouterr().out  # 8x8 cells in 4x4 windows
    assert ", windowed decoding (" in printed and " windows of 4x4 tokens), seed 1)" in printed
