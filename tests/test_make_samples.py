"""scripts/make_samples.py: the model card's grid of generated samples, a row per class."""

from __future__ import annotations

import numpy as np
import pytest

from arpg.pipeline import Pipeline
from tests.conftest import load_script

pytestmark = pytest.mark.slow


def test_a_row_per_class_and_the_same_images_again() -> None:
    script = load_script("make_samples")
    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    grid = script.samples_grid(pipe, per_class=3, steps=2)
    classes, size = len(pipe.class_names), pipe.image_size
    assert grid.size == (3 * size + 4 * 2, classes * size + (classes + 1) * 2)  # 2 px padding around tiles
    assert np.array_equal(np.asarray(grid), np.asarray(script.samples_grid(pipe, per_class=3, steps=2)))
    row0 = np.asarray(grid)[2 : 2 + size, 2 : 2 + size]
    first = pipe.generate([0] * 3, pipe.defaults.replace(steps=2), seed=0).images[0]
    assert np.array_equal(row0, np.asarray(first))  # row c is class c with seed c


def test_a_missing_model_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    script = load_script("make_samples")
    monkeypatch.setattr("sys.argv", ["make_samples.py", "--model", str(tmp_path / "nope")])
    with pytest.raises(SystemExit, match="no such folder"):
        script.main()
