"""scripts/gpu_scenes.py: the scenes recipe trained in one call, packed in parts and unpacked here
(run on the CPU with the tiny scenes-smoke recipe)."""

import json
from pathlib import Path

import pytest

from arpg.pipeline import Pipeline
from arpg.train.recipes import RECIPES
from tests.conftest import load_script


@pytest.mark.slow
def test_pack_on_the_device_then_unpack_here(tmp_path, monkeypatch):
    gs = load_script("gpu_scenes")
    r = RECIPES["scenes-smoke"]
    monkeypatch.setattr(gs.tempfile, "tempdir", str(tmp_path))  # its run folders land in tmp_path
    monkeypatch.chdir(tmp_path)  # the smoke recipe's own folders (runs/scenes-smoke/...) too
    pack = tmp_path / "pack"
    assert gs.main(["--recipe", "scenes-smoke", "--device", "cpu", "--workers", "1", "--pack", str(pack)]) == 0
    meta = json.loads((pack / gs.INFO).read_text())
    assert meta["finished"] and meta["steps_done"] == r.arpg_steps == len(meta["losses"])
    assert all(p.stat().st_size < 16 * 2**20 for p in pack.iterdir())
    assert gs.main(["--recipe", "scenes-smoke", "--unpack", str(pack)]) == 0
    out = Path(r.out)  # relative to tmp_path: the smoke recipe's models folder (its tokenizer and judge are there)
    pipe = Pipeline.shipped(out)
    assert pipe.name == "shipped scenes model" and pipe.data == "scenes"
    assert meta["trained_here"]  # the smoke recipe has no committed tokenizer: it was trained there and came back
    assert pipe.model.cfg.trained_sizes == tuple(c.grid(4) for c in r.canvases)
    assert json.loads((tmp_path / "runs" / "scenes-smoke-gpu" / "arpg_losses.json").read_text()) == meta["losses"]


def test_unfinished_weights_never_land_in_the_shipped_folder(tmp_path):
    gs = load_script("gpu_scenes")
    src, shipped = tmp_path / "pack", tmp_path / "shipped"
    src.mkdir()
    shipped.mkdir()
    (shipped / "vq.safetensors").write_bytes(b"x")
    (src / gs.INFO).write_text(json.dumps({"finished": False, "config": {}, "steps_done": 3, "recipe": {}}))
    with pytest.raises(SystemExit, match="unfinished weights"):
        gs.unpack(src, shipped, tmp_path / "run", shipped)
