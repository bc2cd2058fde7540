"""One default resolution change, from the model: the ``"resize"`` section of its JSON over
:data:`arpg.options.DEFAULT_RESIZE`, written there by its recipe, read by the library, the CLI and the app."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arpg.checkpoints import save_checkpoint
from arpg.config import ARPGConfig, VQConfig
from arpg.model import ARPG
from arpg.options import DEFAULT_RESIZE, ResizeDefaults, check_resize, model_resize
from arpg.pipeline import Pipeline
from arpg.tokenizer import VQModel


def tiny_folder(folder: Path, resize: dict | None) -> Path:
    """A tiny random model in ``folder`` whose JSON has ``resize`` as its "resize" section (None: none)."""
    cfg = ARPGConfig.from_name("ARPG-tiny")
    meta = {**cfg.to_dict(), **({"resize": resize} if resize is not None else {})}
    save_checkpoint(ARPG(cfg).init_weights(0.2).eval(), folder / "arpg.safetensors", meta)
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")).eval(), folder / "vq.safetensors")
    return folder


@pytest.mark.slow  # loads a model
def test_a_models_json_sets_its_resize_over_the_library_default(tmp_path: Path) -> None:
    assert model_resize(None) == DEFAULT_RESIZE == ResizeDefaults()
    folder = tiny_folder(tmp_path, {"scale": 1.5})
    assert model_resize(folder / "arpg.safetensors") == replace(DEFAULT_RESIZE, scale=1.5)
    assert Pipeline.shipped(folder, device="cpu").resize_defaults.scale == 1.5
    (folder / "arpg.json").write_text(json.dumps({"resize": {"scale": 9}}))
    with pytest.raises(ValueError, match=r'arpg.json: "resize": scale must be'):
        model_resize(folder / "arpg.safetensors")
    with pytest.raises(ValueError, match="unknown resize option"):
        check_resize({"zoom": 2}, "x")


@pytest.mark.slow  # two CLI runs
def test_the_cli_resizes_with_the_models_setting(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The CLI's own default (lattice x2) disagreed with the app's and the library's."""
    from arpg.cli import main

    folder = tiny_folder(tmp_path / "m", {"strategy": "lattice", "scale": 1.5})
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "in.png")
    out = tmp_path / "out.png"
    args = ["resize", str(tmp_path / "in.png"), "--class", "1", "--model", str(folder), "--out", str(out)]
    assert main([*args, "--steps", "2", "--seed", "1"]) == 0
    assert Image.open(out).size == (24, 24)  # 16 px x 1.5, the model's scale
    assert main([*args, "--steps", "2", "--seed", "1", "--scale", "2"]) == 0
    assert Image.open(out).size == (32, 32)


def test_a_recipes_resize_goes_into_the_json_it_writes() -> None:
    from arpg.train.recipes import RECIPES

    cfg = ARPGConfig.from_name("ARPG-tiny")
    assert "resize" not in RECIPES["smoke"].arpg_meta(cfg)  # none named: the library's, no section
    r = replace(RECIPES["smoke"], resize={"scale": 1.5})
    assert r.arpg_meta(cfg)["resize"] == {"scale": 1.5}
    with pytest.raises(ValueError, match="recipe resize: strategy must be one of lattice, reencode"):
        replace(r, resize={"strategy": "nearest"})
    shipped = json.loads((Path(__file__).resolve().parents[1] / "assets" / "models" / "arpg.json").read_text())
    assert shipped.get("resize", {}) == RECIPES["digits"].resize  # the shipped JSON is what the recipe writes
