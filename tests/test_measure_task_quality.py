"""arpg.measure.task_quality and scripts/bench_tasks.py: the masks and scores the zero-shot tasks are measured
with, a short run of every part on the shipped digits model, and the results file it writes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from arpg import masks
from arpg.measure import task_quality as tq
from arpg.model_flags import model_pipeline
from arpg.pipeline import Pipeline
from tests.conftest import run_script


@pytest.fixture(scope="module")
def digits_pipe() -> Pipeline:
    return model_pipeline("digits", device="cpu")


@pytest.fixture(scope="module")
def held_out(digits_pipe: Pipeline) -> tuple[np.ndarray, np.ndarray, str | None]:
    return tq.heldout(digits_pipe, 6)


def test_held_out_images_are_the_generators_style(digits_pipe: Pipeline, held_out: tuple) -> None:
    imgs, labels, style = held_out
    assert style == "centred" and imgs.shape == (6, 64, 64, 3) and len(labels) == 6
    wide = tq.heldout(digits_pipe, 2, "wide")
    assert wide[2] == "wide" and not np.array_equal(wide[0], imgs[:2])
    with pytest.raises(ValueError, match="trained here"):
        tq.heldout(Pipeline.random(arpg="ARPG-tiny", vq="VQ-tiny"), 2)


def test_stroke_is_4_px_wide_and_crosses_the_subject(held_out: tuple) -> None:
    imgs, _, _ = held_out
    for i, img in enumerate(imgs):
        stroke = tq.stroke_mask(img, i)
        fg = masks.foreground(img)
        assert (stroke & fg).any() and stroke.sum() < 0.1 * stroke.size
        width = stroke.sum(0 if i % 3 == 0 else 1)
        if i % 3 != 2:  # horizontal: 4 rows per column; vertical: 4 columns per row
            assert np.median(width[width > 0]) == tq.STROKE_PX


def test_half_and_box_masks(held_out: tuple) -> None:
    assert tq.half_mask(0)[32:].all() and not tq.half_mask(0)[:32].any()
    assert tq.half_mask(1)[:, 32:].all() and not tq.half_mask(1)[:, :32].any()
    img = held_out[0][0]
    box = tq.subject_box_mask(img)
    assert (box >= masks.foreground(img)).all() and box.sum() < box.size
    flat = np.full((64, 64, 3), 90, np.uint8)
    assert tq.subject_box_mask(flat)[16:48, 16:48].all()  # no subject: the middle


def test_scores() -> None:
    img = np.full((64, 64, 3), (100, 120, 140), np.uint8)
    img[20:40, 20:40] = 250  # a glyph: not background, not scored
    cells = np.ones((16, 16), bool)
    assert tq.background_shift(img, img, cells, 4) == 0.0
    shifted = img + np.uint8(3)
    shifted[img[..., 0] < 250] += np.uint8(7)  # the background 10 brighter in each channel
    assert tq.background_shift(shifted, img, cells, 4) == pytest.approx(np.sqrt(3) * 10)
    assert tq.background_shift(shifted, img, np.zeros((16, 16), bool), 4) == 0.0
    assert all(tq.new_class(label, i) != label for label in range(10) for i in range(9))
    assert {tq.new_class(0, i, 4) for i in range(3)} == {1, 2, 3}
    assert tq.parse_region("dilate:12") == ("dilate", 12) and tq.parse_region("box") == ("box", masks.EDIT_MARGIN)
    for bad in ("grow", "dilate:x"):
        with pytest.raises(ValueError, match="regions"):
            tq.parse_region(bad)


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_a_short_run_of_every_part_keeps_the_parts_it_did_not_measure(digits_pipe: Pipeline) -> None:
    """Two digits through every part on the shipped model; a second run of one part keeps the others."""
    kw = dict(trials=2, resize_trials=1, scales=(1.5,), regions=("painted", "box"))
    res = tq.task_quality_report(
        digits_pipe, None, "cmd", options=digits_pipe.defaults.replace(steps=4), progress=False, **kw
    )
    assert set(tq.PARTS) <= set(res) and res["data"] == "digits" and res["data_style"] == "centred"
    assert res["stroke"]["painted"]["cells_regenerated"] < res["stroke"]["box 4 px"]["cells_regenerated"]
    assert {"lattice x1.5", "reencode x1.5"} <= set(res["resize"]) and res["resize"]["trials"] == 1
    assert res["resize"]["lattice x1.5"]["grid"] == "24x24" and res["resize"]["lattice x1.5"]["psnr_vs_bicubic_db"] > 0
    assert res["inpaint"]["band"] >= 0 and 0 <= res["edit"]["accuracy"] <= 1 and res["steps"] == 4
    old = json.loads(json.dumps(res))
    again = tq.task_quality_report(digits_pipe, old, "again", parts=("edit",), progress=False, **kw)
    assert again["stroke"] == old["stroke"] and again["edit"]["trials"] == 2 and again["command"] == "again"


def test_bad_arguments(digits_pipe: Pipeline) -> None:
    with pytest.raises(ValueError, match="part"):
        tq.measure_task_quality(digits_pipe, parts=("paint",), trials=2)
    with pytest.raises(ValueError, match="regions"):
        tq.measure_task_quality(digits_pipe, regions=("grow",), trials=2)
    with pytest.raises(ValueError, match="judge"):
        tq.measure_task_quality(replace(digits_pipe, judge=None), trials=2)


@pytest.mark.slow  # over 0.5 s: the fast tier stays under a minute
def test_the_script_refuses_bad_flags(tmp_path: Path) -> None:
    assert run_script("bench_tasks.py", "--help").returncode == 0
    bad = run_script("bench_tasks.py", "--parts", "paint", "--json", str(tmp_path / "t.json"))
    assert bad.returncode == 2 and "--parts" in bad.stderr and not (tmp_path / "t.json").exists()
