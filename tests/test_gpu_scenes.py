"""scripts/gpu_scenes.py (run in its own process): the scenes recipe trained in one call, packed in parts and
unpacked here (on the CPU with the tiny scenes-smoke recipe)."""

import json
from pathlib import Path

import pytest

from arpg.pipeline import Pipeline
from arpg.train.recipes import RECIPES
from tests.conftest import run_script

INFO = "scenes_info.json"  # what the pack holds besides the weights' parts


@pytest.mark.slow
def test_pack_on_the_device_then_unpack_here(tmp_path):
    r = RECIPES["scenes-smoke"]
    here = {"cwd": tmp_path, "env": {"TMPDIR": str(tmp_path)}}  # its run folders and the recipe's land in tmp_path
    pack = tmp_path / "pack"
    run = run_script(
        "gpu_scenes.py", "--recipe", "scenes-smoke", "--device", "cpu", "--workers", "1", "--pack", str(pack), **here
    )
    assert run.returncode == 0, run.stderr[-2000:]
    meta = json.loads((pack / INFO).read_text())
    assert meta["finished"] and meta["steps_done"] == r.arpg_steps == len(meta["losses"])
    assert all(p.stat().st_size < 16 * 2**20 for p in pack.iterdir())
    back = run_script("gpu_scenes.py", "--recipe", "scenes-smoke", "--unpack", str(pack), **here)
    assert back.returncode == 0, back.stderr[-2000:]
    out = tmp_path / r.out  # the smoke recipe's models folder (its tokenizer and judge are there)
    pipe = Pipeline.shipped(out)
    assert pipe.name == "shipped scenes model" and pipe.data == "scenes"
    assert meta["trained_here"]  # the smoke recipe has no committed tokenizer: it was trained there and came back
    assert pipe.model.cfg.trained_sizes == tuple(c.grid(4) for c in r.canvases)
    assert json.loads((tmp_path / "runs" / "scenes-smoke-gpu" / "arpg_losses.json").read_text()) == meta["losses"]


@pytest.mark.slow  # the script in its own process
def test_unfinished_weights_never_land_in_the_shipped_folder(tmp_path):
    src, shipped = tmp_path / "pack", tmp_path / RECIPES["scenes-smoke"].out
    src.mkdir()
    shipped.mkdir(parents=True)
    (shipped / "vq.safetensors").write_bytes(b"x")
    (src / INFO).write_text(json.dumps({"finished": False, "config": {}, "steps_done": 3, "recipe": {}}))
    run = run_script("gpu_scenes.py", "--recipe", "scenes-smoke", "--unpack", str(src), cwd=tmp_path)
    assert run.returncode == 1 and "unfinished weights" in run.stderr
    assert not (shipped / "arpg.safetensors").exists()
    assert Path(shipped / "vq.safetensors").read_bytes() == b"x"
