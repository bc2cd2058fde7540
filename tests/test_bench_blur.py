"""scripts/bench_blur.py: what the judge does not see, measured on a tiny scenes model (random weights, the
shipped scenes judge), and its command-line refusals."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from arpg.pipeline import Pipeline
from tests.test_scenes_tasks import tiny_scenes_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_blur", ROOT / "scripts" / "bench_blur.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow  # loads a model and inpaints
def test_inpaint_part_scores_the_seam_and_the_new_half(bench: ModuleType, tmp_path: Path) -> None:
    pipe = Pipeline.shipped(tiny_scenes_folder(tmp_path), device="cpu")
    row = bench.inpaint(pipe, 2)
    assert row["trials"] == 2 and 0 < row["seam"] <= row["seam_peak"] and row["sharpness"] > 0


def test_names_are_checked(bench: ModuleType) -> None:
    assert bench._names("--parts", "tokenizer, inpaint", bench.PARTS) == ["tokenizer", "inpaint"]
    with pytest.raises(SystemExit, match="error: --models"):
        bench._names("--models", "mnist", bench.MODELS)
