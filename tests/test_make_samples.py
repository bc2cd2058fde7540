"""scripts/make_samples.py (run in its own process): the model card's grid of generated samples, a row per class."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from arpg.pipeline import Pipeline
from tests.conftest import run_script, tiny_folder

pytestmark = pytest.mark.slow


def test_a_row_per_class_and_the_same_images_again(tmp_path) -> None:
    folder = tiny_folder(tmp_path, "digits")
    grids = []
    for name in ("a.png", "b.png"):
        run = run_script(
            "make_samples.py", "--model", str(folder), "--per-class", "3", "--steps", "2", "--out", str(tmp_path / name)
        )
        assert run.returncode == 0, run.stderr[-2000:]
        grids.append(np.asarray(Image.open(tmp_path / name)))
    pipe = Pipeline.shipped(folder, device="cpu")
    classes, size = len(pipe.class_names), pipe.image_size
    assert grids[0].shape == (classes * size + (classes + 1) * 2, 3 * size + 4 * 2, 3)  # 2 px padding around tiles
    assert np.array_equal(grids[0], grids[1])
    first = pipe.generate([0] * 3, pipe.defaults.replace(steps=2), seed=0).images[0]
    assert np.array_equal(grids[0][2 : 2 + size, 2 : 2 + size], np.asarray(first))  # row c is class c with seed c


def test_a_missing_model_is_one_line(tmp_path) -> None:
    run = run_script("make_samples.py", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "s.png"))
    assert run.returncode == 1 and "no such folder" in run.stderr and len(run.stderr.strip().splitlines()) == 1
