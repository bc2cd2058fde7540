"""The zero-shot tasks on the command line (``arpg outpaint | panorama | resize | inpaint``), on the
shipped digits model, called in-process: the files they write and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arpg import cli
from arpg.commands import inpaint_region
from arpg.judge import image_class
from arpg.masks import EDIT_REGION
from arpg.pipeline import ASSETS, Pipeline

DIGIT = str(ASSETS / "examples" / "digit_3.png")


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, size, said",
    [
        (["outpaint", "--right", "4", "--top", "2"], (80, 72), "104 new tokens in 12 steps, windowed decoding"),
        (["outpaint", "--left", "4", "--decoding", "whole"], (80, 64), "whole decoding"),
        (["panorama", "--times", "2", "--side", "bottom"], (64, 128), "windowed decoding"),
        (["resize", "--scale", "1.5", "--strategy", "reencode", "--decoding", "whole"], (96, 96), "in 4 steps"),
    ],
)
def test_canvas_tasks_write_the_grown_image(tmp_path: Path, capsys, args, size, said) -> None:
    out = tmp_path / "r.png"
    assert cli.main([*args, DIGIT, "--class", "three", "--steps", "4", "--out", str(out), "--upscale", "2"]) == 0
    printed = capsys.readouterr().out
    assert Image.open(out).size == (2 * size[0], 2 * size[1])
    assert f"({size[0]}x{size[1]} px, class 3 'three'" in printed and said in printed and "seed 0" in printed


@pytest.mark.slow
def test_inpaint_keeps_what_the_mask_leaves(tmp_path: Path, capsys) -> None:
    mask = np.zeros((64, 64), np.uint8)
    mask[32:, :] = 255  # the bottom half is regenerated
    Image.fromarray(mask).save(tmp_path / "mask.png")
    image = tmp_path / "three.png"
    Image.open(DIGIT).convert("RGB").resize((64, 64), Image.LANCZOS).save(image)  # the model's own size
    out = tmp_path / "i.png"
    args = [
        "inpaint",
        str(image),
        "--mask",
        str(tmp_path / "mask.png"),
        "--class",
        "3",
        "--no-blend",
        "--out",
        str(out),
    ]
    assert cli.main([*args, "--steps", "4"]) == 0
    assert "128 new tokens in 4 steps, seed 0" in capsys.readouterr().out
    before = np.asarray(Image.open(image), dtype=float)
    after = np.asarray(Image.open(out).convert("RGB"), dtype=float)
    kept, redone = np.abs(after - before)[:28].mean(), np.abs(after - before)[36:].mean()
    assert kept < redone  # the top (context, away from the seam) changes less than the regenerated bottom


def stroke_mask(path: Path, size: int = 256) -> Path:
    """A horizontal stroke across the middle of the image (the way one crosses out a glyph)."""
    mask = np.zeros((size, size), np.uint8)
    mask[size // 2 - size // 16 : size // 2 + size // 16, size // 4 : 3 * size // 4] = 255
    Image.fromarray(mask).save(path)
    return path


@pytest.mark.slow
def test_inpaint_with_another_class_edits_as_the_app_does(tmp_path: Path, capsys) -> None:
    """A stroke across the 3 with --class 8: the judge reads a 3, so the mask grows (an edit) and an 8 comes out."""
    pipe = Pipeline.shipped()
    assert image_class(pipe, DIGIT) == 3
    out = tmp_path / "eight.png"
    argv = ["inpaint", DIGIT, "--mask", str(stroke_mask(tmp_path / "m.png")), "--class", "8", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "note: an edit of 'three'" in printed and f"--region {EDIT_REGION}" in printed
    assert image_class(pipe, out) == 8


@pytest.mark.slow
def test_inpaint_kept_as_painted_says_why_the_class_may_not_change(tmp_path: Path, capsys) -> None:
    argv = ["inpaint", DIGIT, "--mask", str(stroke_mask(tmp_path / "m.png")), "--class", "8", "--region", "painted"]
    assert cli.main([*argv, "--steps", "4", "--out", str(tmp_path / "o.png")]) == 0
    assert "note: the judge reads 'three' in the image" in capsys.readouterr().out


def test_inpaint_without_a_judge_keeps_the_mask_as_painted_and_says_so() -> None:
    region, why = inpaint_region(Pipeline.random(), np.zeros((16, 16, 3), np.uint8), 3, None)
    assert region == "painted" and why is not None and "no judge" in why and f"--region {EDIT_REGION}" in why


@pytest.mark.parametrize(
    "args, needle",
    [
        (["outpaint", "/no/such.png", "--class", "3", "--right", "2"], "no such image file"),
        (["outpaint", DIGIT, "--class", "3"], "at least one of --left, --right, --top, --bottom"),
        (["outpaint", DIGIT, "--class", "3", "--right", "-1"], "--right"),
        (["panorama", DIGIT, "--class", "3", "--times", "9"], "times must be a whole number from 1 to 8"),
        (["resize", DIGIT, "--class", "3", "--decoding", "bogus"], "invalid choice: 'bogus'"),
        (["resize", DIGIT, "--class", "3", "--scale", "9"], "scale"),
        (["inpaint", DIGIT, "--class", "3", "--mask", "/no/mask.png"], "no such mask file"),
        (["outpaint", DIGIT, "--class", "nine hundred", "--right", "2"], "nine hundred"),
        (["outpaint", DIGIT, "--class", "3", "--right", "2", "--model", "/no/folder"], "no such folder"),
        (["outpaint", DIGIT, "--right", "2"], "--class"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, needle) -> None:
    assert cli.main(args) == 2
    assert needle in one_error_line(capsys)
