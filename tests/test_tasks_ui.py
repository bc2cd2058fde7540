"""The Inpaint, Outpaint and Resolution tabs' tasks on a model (``run_*``), called directly on the random tiny model
(4x4 tokens of 4 px): what their summaries say, edits from a stroke, panorama streaming."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from arpg import masks, tasks
from arpg.images import prepare_image
from arpg.judge import Judge
from arpg.pipeline import Pipeline
from demo.parts.decoding import decoding_note
from demo.tabs.inpaint import image_class, run_inpaint
from demo.tabs.outpaint import run_panorama
from demo.tabs.resolution import run_resize

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.random("ARPG-tiny", "VQ-tiny")


@pytest.fixture(scope="module")
def options(pipe: Pipeline) -> Any:
    return pipe.defaults.replace(steps=2)


def last(outputs: list[tuple]) -> tuple:
    assert outputs, "the handler yielded nothing"
    return outputs[-1]


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# -- Resolution ----------------------------------------------------------------------------------
def test_resolution_summary_names_the_input_size(pipe: Pipeline, options: Any) -> None:
    """A 12x16 px input (3x4 cells) was summarised as the model's 16x16 px."""
    out = last(
        list(run_resize(pipe, image(16, 12), "class 1", 2.0, "lattice", 0.5, 3, False, None, options, progress=None))
    )
    assert "12×16 px → 24×32 px (6×8 tokens)" in out[2]


def test_resolution_notes_a_grid_beyond_the_trained_one(pipe: Pipeline, options: Any) -> None:
    out = last(
        list(run_resize(pipe, image(16, 16), "class 1", 1.5, "reencode", 0.5, 3, False, None, options, progress=None))
    )
    assert "6×6-token grid is bigger than the 4×4 the model was trained on" in out[2]
    assert "reencode ×1.5, 50% of the cells decoded again" in out[2]
    one, two = tasks.Used("random", 2, "windowed", (4, 4), 1), tasks.Used("random", 2, "windowed", (4, 3), 2)
    assert decoding_note(pipe, (4, 4), one) == "decoded whole: a grid size the model was trained on"
    assert decoding_note(pipe, (4, 5), two) == (
        "decoded in windows: the 5×4-token grid is bigger than the 4×4 the model was trained on (2 windows of 3×4)"
    )
    whole = tasks.Used("random", 2, "whole")
    assert decoding_note(pipe, (4, 5), whole).startswith("decoded whole: the 5×4-token grid is bigger")
    assert decoding_note(pipe, (4, 4), tasks.Used("random", 0, "windowed")) is None  # nothing was decoded


def test_the_resolution_result_is_bicubic_beside_the_model(pipe: Pipeline, options: Any) -> None:
    """The slider's two halves: plain bicubic of the input at the result's size, and the model's result."""
    from PIL import Image

    img = image(16, 16)
    (plain, result), _, info = last(
        list(run_resize(pipe, img, "class 1", 2.0, "lattice", 0.5, 3, False, None, options, progress=None))
    )
    assert plain.shape == result.shape == (32, 32, 3) and "left of the bar: plain bicubic" in info
    assert np.array_equal(plain, np.asarray(Image.fromarray(img).resize((32, 32), Image.BICUBIC)))


@pytest.mark.parametrize("model", ["digits", "scenes"])
def test_the_resize_defaults_are_the_best_measured(model: str) -> None:
    """Each shipped model's resolution change (its JSON's "resize" section over the library's default) is the
    measured setting that loses least to bicubic against the true render (scripts/bench_resize.py)."""
    from arpg.options import model_resize

    measured = json.loads((ROOT / "docs" / "benchmarks" / f"resize-{model}.json").read_text())
    rows = [r for r in measured["rows"] if r["strategy"] != "bicubic"]
    best = max(rows, key=lambda r: r["gap_db"])
    assert measured["best"] == {k: best[k] for k in ("strategy", "scale", "regenerate")}
    folder = ROOT / "assets" / "models" / ("scenes" if model == "scenes" else "")
    chosen = model_resize(folder / "arpg.safetensors")
    assert (chosen.strategy, chosen.scale, chosen.regenerate) == (best["strategy"], best["scale"], best["regenerate"])


# -- Panorama ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_panorama_streams_every_round(pipe: Pipeline, options: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each round's image is shown while the next one decodes (it came only at the end). Every decode
    is slowed to 0.5 s, longer than the page's 0.2 s between updates, as on a real model."""
    generate = pipe.generate

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)
        return generate(*args, **kwargs)

    monkeypatch.setattr(pipe, "generate", slow)
    outs = list(run_panorama(pipe, image(16, 16), "class 1", "right", 4, 2, False, None, options, progress=None))
    widths = [o[0][1].shape[1] for o in outs]  # the slider's "after"
    assert all(o[0][0].shape == o[0][1].shape for o in outs)  # its "before": the input on the canvas so far
    assert widths == sorted(widths) and len(set(widths)) == 6  # 6 rounds of 2 cells: 16 px + 8, 16, ..., 48
    assert [o[2] for o in outs[:2]] == ["round 1 done, round 2 decoding …", "round 2 done, round 3 decoding …"]
    final = outs[-1]
    assert "in 6 rounds" in final[2] and final[0][1].shape[1] == 4 * final[0][1].shape[0]
    before = final[0][0]
    assert np.array_equal(before[:, :16], prepare_image(image(16, 16), 4, 4))  # the input, then checkers


def test_panorama_of_one_time_is_the_input(pipe: Pipeline) -> None:
    """times=1 was accepted, then failed; now it is the input, with a note."""
    img = image(16, 16)
    rounds: list = []
    res = tasks.panorama(pipe, img, 1, times=1, seed=0, steps=2, on_round=rounds.append)
    assert np.array_equal(res.image, img) and "times is 1" in res.note and rounds == []
    res = tasks.panorama(pipe, img, 1, times=2, side="top", seed=0, steps=2, on_round=rounds.append)
    assert len(rounds) == 2 and rounds[-1].image.shape == res.image.shape == (32, 16, 3)


@pytest.mark.parametrize("side", ["right", "top"])
def test_panorama_rounds_decode_grids_of_the_trained_size(pipe: Pipeline, side: str) -> None:
    """Every round decodes a grid the model was trained on (4x4 here): the last 2 cells and 2 new ones.
    On the bigger grid it decoded before (the last 4 cells and 2 new), a trained model turns to noise."""
    rounds: list = []
    img = image(16, 16)
    res = tasks.panorama(pipe, img, 1, times=3, side=side, seed=0, steps=2, on_round=rounds.append)
    assert len(rounds) == 4 and all(tuple(r.tokens.shape) == pipe.grid for r in rounds)
    band = masks.SEAM_BAND  # the original is blended with its own decode only this close to the join
    kept, orig = (res.image[-16 + band :], img[band:]) if side == "top" else (res.image[:, : 16 - band], img[:, :-band])
    assert res.image.shape == ((48, 16, 3) if side == "top" else (16, 48, 3)) and np.array_equal(kept, orig)


# -- Inpaint -------------------------------------------------------------------------------------
def editor(img: np.ndarray, mask: np.ndarray) -> dict:
    layer = np.zeros(img.shape[:2] + (4,), np.uint8)
    layer[mask] = (255, 46, 136, 255)
    return {"background": img, "layers": [layer], "composite": None}


@pytest.fixture()
def judged(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    """The tiny model with a random judge (a model that knows its images' classes)."""
    monkeypatch.setattr(pipe, "judge", Judge().eval(), raising=False)
    return pipe


def glyph() -> np.ndarray:
    """A 16 px image: a dark bar on a light background."""
    img = np.full((16, 16, 3), 230, np.uint8)
    img[2:14, 6:10] = 20
    return img


def test_inpaint_with_the_image_class_keeps_the_painted_region(judged: Pipeline, options: Any) -> None:
    img, mask = glyph(), np.zeros((16, 16), bool)
    mask[7:9, 4:12] = True
    shown = image_class(judged, img)
    out = last(
        list(
            run_inpaint(judged, editor(img, mask), judged.class_names[shown], 0, True, 1, False, options, progress=None)
        )
    )
    assert "4 of 16 tokens regenerated" in out[2] and "edit" not in out[2]


def test_an_edit_from_a_stroke_regenerates_the_shape_under_it(judged: Pipeline, options: Any) -> None:
    """Another class than the image's: the stroke grows to the bar under it, and the page says so."""
    img, mask = glyph(), np.zeros((16, 16), bool)
    mask[7:9, 4:12] = True
    other = (image_class(judged, img) + 1) % judged.num_classes
    out = last(
        list(run_inpaint(judged, editor(img, mask), f"class {other}", 0, True, 1, False, options, progress=None))
    )
    assert "edit of the class" in out[2] and "the box around the shape under the stroke" in out[2]
    assert "16 of 16 tokens" in out[2]  # the bar's box + 4 px covers the whole 16 px image


def test_no_judge_no_edit_detection(pipe: Pipeline, options: Any) -> None:
    assert image_class(pipe, glyph()) is None
    mask = np.zeros((16, 16), bool)
    mask[7:9, 4:12] = True
    out = last(list(run_inpaint(pipe, editor(glyph(), mask), "class 3", 0, True, 1, False, options, progress=None)))
    assert "4 of 16 tokens regenerated" in out[2]
