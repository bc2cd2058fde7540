"""A model's own decoding per canvas task: the "decoding" section of its JSON over DEFAULT_DECODING,
used by the tasks, the cost check and the CLI when no decoding is asked for (issue 17: the default is
what measures best per model)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from arpg import tasks
from arpg.checkpoints import save_checkpoint
from arpg.cli import main
from arpg.config import ARPGConfig, VQConfig
from arpg.cost import check_request
from arpg.model import ARPG
from arpg.options import DEFAULT_DECODING, model_decodings
from arpg.pipeline import Pipeline
from arpg.tokenizer import VQModel

OPTS = {"steps": 3, "cfg_scale": 2.0}
WHOLE_RESIZE = {"resize": "whole"}


def write_folder(folder: Path, decoding: object = None) -> Path:
    """A tiny random model (trained on 4x4 token grids) and tokenizer; ``decoding``: its JSON's section."""
    torch.manual_seed(0)
    cfg = replace(ARPGConfig.from_name("ARPG-tiny"), trained_grids=((4, 4),))
    meta = {**cfg.to_dict(), **({"decoding": decoding} if decoding is not None else {})}
    save_checkpoint(ARPG(cfg).init_weights(0.2).eval(), folder / "arpg.safetensors", meta)
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")).eval(), folder / "vq.safetensors")
    return folder


def test_without_a_section_the_model_takes_the_defaults(tmp_path: Path) -> None:
    pipe = Pipeline.shipped(write_folder(tmp_path), device="cpu")
    assert pipe.decodings == DEFAULT_DECODING == model_decodings() == Pipeline.random().decodings


def test_the_json_section_wins_task_by_task(tmp_path: Path) -> None:
    pipe = Pipeline.shipped(write_folder(tmp_path, WHOLE_RESIZE), device="cpu")
    assert pipe.decodings == {**DEFAULT_DECODING, "resize": "whole"} and DEFAULT_DECODING["resize"] == "windowed"
    assert tasks.decoding_for("resize", None, pipe.decodings) == "whole"
    assert tasks.decoding_for("resize", "windowed", pipe.decodings) == "windowed"  # asked for: it wins


def test_the_tasks_and_the_cost_check_use_the_models_decoding(tmp_path: Path) -> None:
    pipe = Pipeline.shipped(write_folder(tmp_path, WHOLE_RESIZE), device="cpu")
    img = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    runs = {d: tasks.resize(pipe, img, 1, scale=2.0, seed=3, decoding=d, **OPTS) for d in (None, "whole", "windowed")}
    assert torch.equal(runs[None].tokens, runs["whole"].tokens)
    assert runs[None].trace.forward_passes < runs["windowed"].trace.forward_passes  # 8x8 cells: 4x4 windows
    opts = pipe.defaults.replace(**OPTS)
    costs = {d: check_request(pipe, "resize", opts, img, scale=2.0, decoding=d) for d in (None, "whole", "windowed")}
    assert costs[None] == costs["whole"] != costs["windowed"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"inpaint": "whole"}, '"decoding" task must be one of outpaint, panorama, resize'),
        ({"resize": "tiles"}, '"decoding" of resize must be one of windowed, whole'),
        (["whole"], '"decoding" must be an object'),
    ],
)
def test_a_bad_section_names_the_file(tmp_path: Path, section: object, message: str) -> None:
    folder = write_folder(tmp_path, section)
    with pytest.raises(ValueError, match=message) as err:
        Pipeline.shipped(folder, device="cpu")
    assert str(folder / "arpg.json") in str(err.value)


def test_the_cli_says_which_decoding_ran(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_folder(tmp_path / "m", WHOLE_RESIZE)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    args = ["resize", str(tmp_path / "in.png"), "--class", "1", "--model", str(folder), "--out", str(out)]
    assert main([*args, "--steps", "3", "--seed", "1"]) == 0
    assert "whole decoding" in capsys.readouterr().out
    assert json.loads((folder / "arpg.json").read_text())["decoding"] == WHOLE_RESIZE


def test_a_recipes_decoding_goes_into_the_json_it_writes() -> None:
    from arpg.train.recipes import RECIPES

    cfg = ARPGConfig.from_name("ARPG-tiny")
    r = replace(RECIPES["scenes-smoke"], decoding=WHOLE_RESIZE)
    assert r.arpg_meta(cfg)["decoding"] == WHOLE_RESIZE and r.arpg_meta(cfg)["data"] == "scenes"
    assert "decoding" not in RECIPES["smoke"].arpg_meta(cfg)  # none named: the defaults, no section
    with pytest.raises(ValueError, match="recipe decoding of resize must be one of windowed, whole"):
        replace(r, decoding={"resize": "tiles"})
    with pytest.raises(ValueError, match="recipe decoding task must be one of"):
        replace(r, decoding={"inpaint": "whole"})


def test_the_shipped_scenes_model_decodes_as_it_measured_best() -> None:
    """The scenes model's JSON names the winners of scripts/bench_windows.py (docs/benchmarks/
    scenes_tasks.json), task by task and for both resize strategies, and so does its recipe."""
    from arpg.zoo import MODELS

    SCENES_DIR = MODELS["scenes"].folder
    from arpg.train.recipes import RECIPES

    measured = json.loads((Path(__file__).resolve().parents[1] / "docs/benchmarks/scenes_tasks.json").read_text())
    assert measured["model"] == "shipped scenes model" and measured["settings"]["trials"]["resize"] >= 40
    decodings = model_decodings(SCENES_DIR / "arpg.safetensors")
    for name, rows in measured["tasks"].items():
        assert rows["winner"] == decodings[name.split()[0]], name
    assert {**DEFAULT_DECODING, **RECIPES["scenes"].decoding} == decodings
