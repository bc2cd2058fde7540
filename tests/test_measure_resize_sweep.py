"""arpg.measure.resize_sweep: every resize setting against the true render of a larger canvas, beside bicubic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arpg.measure import resize_sweep as rs
from arpg.pipeline import Pipeline
from tests.conftest import tiny_folder


def test_true_pairs_are_the_same_images_at_two_sizes() -> None:
    for data in ("digits", "scenes"):
        small, big, labels = rs.truth_pairs(data, 3, 1.5)
        assert small.shape == (3, 64, 64, 3) and big.shape == (3, 96, 96, 3) and len(labels) == 3
        shrunk = np.stack([np.asarray(x, dtype=float).reshape(32, 3, 32, 3, 3).mean((1, 3)) for x in big])
        coarse = small.astype(float).reshape(3, 32, 2, 32, 2, 3).mean((2, 4))
        assert np.abs(shrunk - coarse).mean() < 40  # the same picture, finer
    q = rs.quality(big, big)
    assert q["psnr_db"] > 90 and q["sharpness"] == 1.0


@pytest.mark.slow  # twelve tiny resizes
def test_a_sweep_names_the_best_setting(tmp_path: Path) -> None:
    pipe = Pipeline.shipped(tiny_folder(tmp_path, "digits"), device="cpu")
    seen = []
    res = rs.resize_sweep(pipe, 1, seen.append)
    rows = res["rows"]
    assert len(rows) == len(rs.SETTINGS) + 3 and seen == rows  # and bicubic at each of 3 scales
    assert [r["strategy"] for r in rows if r["scale"] == 1.5] == [
        "bicubic",
        "lattice",
        "reencode",
        "reencode",
        "reencode",
    ]
    best = max((r for r in rows if r["strategy"] != "bicubic"), key=lambda r: r["gap_db"])
    assert res["best"] == {k: best[k] for k in ("strategy", "scale", "regenerate")} and res["data"] == "digits"
    with pytest.raises(ValueError, match="trained here"):
        rs.resize_sweep(Pipeline.random(arpg="ARPG-tiny", vq="VQ-tiny"), 1)
