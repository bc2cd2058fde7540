"""arpg.measure.tokenizers: tokenizers of one model side by side on held-out images, and the grid picture."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from PIL import Image

from arpg.measure import tokenizers as tk
from arpg.pipeline import Pipeline
from tests.conftest import tiny_folder


def test_the_canvases_beyond_64_px_are_the_recipes() -> None:
    assert tk.other_canvases("digits") == [] and tk.other_canvases("nothing") == []
    assert [c.tag for c in tk.other_canvases("scenes")] == ["96x96@1.5", "128x128@2"]


@pytest.mark.slow  # encodes and decodes a few hundred images
def test_two_tokenizers_side_by_side(tmp_path: Path) -> None:
    pipe = Pipeline.shipped(tiny_folder(tmp_path, "scenes"), device="cpu")
    vqs = {"own": pipe.vq, "copy": copy.deepcopy(pipe.vq)}
    seen = []
    res = tk.compare_tokenizers(pipe, vqs, 4, lambda name, row: seen.append(name))
    assert seen == ["own", "copy"] and res["own"] == res["copy"]  # the same weights: the same numbers
    assert set(res["own"]) == {"64px", "96x96@1.5", "128x128@2"} and res["own"]["96x96@1.5"]["psnr_db"] > 0
    tk.tokenizer_grid(pipe, list(vqs.values()), tmp_path / "grid.png")
    assert Image.open(tmp_path / "grid.png").size[0] > 3 * 3 * 64
