"""arpg.measure.blur and scripts/bench_blur.py: what the judge does not see, measured on a tiny scenes model
(random weights, the shipped scenes judge), and the script's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from arpg.measure.blur import blur_text, measure_blur
from arpg.pipeline import Pipeline
from tests.conftest import run_script, tiny_folder


@pytest.mark.slow  # loads a model and inpaints
def test_inpaint_part_scores_the_seam_and_the_new_half(tmp_path: Path) -> None:
    pipe = Pipeline.shipped(tiny_folder(tmp_path, "scenes"), device="cpu")
    res = measure_blur(pipe, parts=("inpaint",), inpaint=2)
    row = res["inpaint"]
    assert set(res) == {"model", "inpaint"} and row["trials"] == 2
    assert 0 < row["seam"] <= row["seam_peak"] and row["sharpness"] > 0
    assert "inpaint the right half" in blur_text({"scenes": res})


@pytest.mark.slow  # over 0.5 s: the fast tier stays under a minute
def test_the_script_checks_its_names(tmp_path: Path) -> None:
    run = run_script("bench_blur.py", "--models", "mnist", "--json", str(tmp_path / "b.json"))
    assert run.returncode == 2 and "--models" in run.stderr and not (tmp_path / "b.json").exists()
    assert run_script("bench_blur.py", "--parts", "tokenizer,paint", "--json", str(tmp_path / "b.json")).returncode == 2
