"""scripts/bench_tasks.py: the masks and scores it measures the zero-shot tasks with, and its JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from arpg import masks
from arpg.data import digits

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_tasks.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_tasks", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def held_out() -> tuple[np.ndarray, np.ndarray]:
    return digits.sample(range(6), seed=digits.HELDOUT_SEED + 21, style=digits.GENERATOR_STYLE)


def test_stroke_is_4_px_wide_and_crosses_the_glyph(bench: ModuleType, held_out: tuple) -> None:
    imgs, _ = held_out
    for i, img in enumerate(imgs):
        stroke = bench.stroke_mask(img, i)
        fg = masks.foreground(img)
        assert (stroke & fg).any() and stroke.sum() < 0.1 * stroke.size
        width = stroke.sum(0 if i % 3 == 0 else 1)
        if i % 3 != 2:  # horizontal: 4 rows per column; vertical: 4 columns per row
            assert np.median(width[width > 0]) == bench.STROKE_PX


def test_half_and_box_masks(bench: ModuleType, held_out: tuple) -> None:
    assert bench.half_mask(0)[32:].all() and not bench.half_mask(0)[:32].any()
    assert bench.half_mask(1)[:, 32:].all() and not bench.half_mask(1)[:, :32].any()
    img = held_out[0][0]
    box = bench.digit_box_mask(img)
    assert (box >= masks.foreground(img)).all() and box.sum() < box.size


def test_scores(bench: ModuleType) -> None:
    img = np.full((64, 64, 3), (100, 120, 140), np.uint8)
    img[20:40, 20:40] = 250  # a glyph: not background, not scored
    cells = np.ones((16, 16), bool)
    assert bench.background_shift(img, img, cells, 4) == 0.0
    shifted = img + np.uint8(3)
    shifted[img[..., 0] < 250] += np.uint8(7)  # the background 10 brighter in each channel
    assert bench.background_shift(shifted, img, cells, 4) == pytest.approx(np.sqrt(3) * 10)
    assert bench.background_shift(shifted, img, np.zeros((16, 16), bool), 4) == 0.0
    assert bench.psnr(img, img) > 90 and bench.psnr(img // 2, img // 2 + 10) == pytest.approx(28.13, abs=0.01)
    assert all(bench.new_class(label, i) != label for label in range(10) for i in range(9))
    assert bench.parse_region("dilate:12") == ("dilate", 12) and bench.parse_region("box") == ("box", masks.EDIT_MARGIN)
    with pytest.raises(SystemExit):
        bench.parse_region("grow")


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_a_short_run_writes_every_part(bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two digits through every part on the shipped model; a second run of one part keeps the others."""
    out = tmp_path / "tasks.json"
    argv = [
        "bench_tasks.py",
        "--trials",
        "2",
        "--resize-trials",
        "1",
        "--scales",
        "1.5",
        "--steps",
        "4",
        "--regions",
        "painted,box",
        "--json",
        str(out),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    bench.main()
    res = json.loads(out.read_text())
    assert set(bench.PARTS) <= set(res)
    assert res["stroke"]["painted"]["cells_regenerated"] < res["stroke"]["box 4 px"]["cells_regenerated"]
    assert {"lattice x1.5", "reencode x1.5"} <= set(res["resize"])
    assert res["inpaint"]["band"] >= 0 and 0 <= res["edit"]["accuracy"] <= 1
    monkeypatch.setattr(sys, "argv", argv + ["--parts", "edit"])
    bench.main()
    again = json.loads(out.read_text())
    assert again["stroke"] == res["stroke"] and again["edit"]["trials"] == 2
