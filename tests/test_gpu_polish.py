"""scripts/gpu_polish.py (run in its own process): the weights it packs on the GPU machine come back whole."""

import json

import pytest
import torch
from safetensors.torch import load_file

from arpg.train.parts import split_save
from tests.conftest import run_script


@pytest.mark.slow  # the script in its own process
def test_parts_stay_small_and_join_back_exactly(tmp_path):
    torch.manual_seed(0)
    states = {stem: {f"w{i}": torch.randn(16, 16) for i in range(10)} for stem in ("arpg_polish", "arpg_polish_ema")}
    pack = tmp_path / "pack"
    pack.mkdir()
    parts = {stem: split_save(st, pack / stem, part_bytes=4096) for stem, st in states.items()}
    assert all(len(names) > 1 for names in parts.values())
    assert all(p.stat().st_size <= 4096 + 1024 for p in pack.glob("*.safetensors"))  # + header
    (pack / "polish_info.json").write_text(
        json.dumps(
            {
                "config": {"dim": 16},
                "losses": [1.0, 0.5],
                "parts": parts,
                "step_s": 0.01,
                "train_s": 60,
                "recipe": {"polish_steps": 2, "polish_batch": 4},
            }
        )
    )
    run = run_script("gpu_polish.py", "--unpack", str(pack), "--run-dir", str(tmp_path / "run"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "polish_steps=2 polish_batch=4" in run.stdout
    for stem, st in states.items():
        back = load_file(str(tmp_path / "run" / f"{stem}.safetensors"))
        assert back.keys() == st.keys() and all(torch.equal(back[k], st[k]) for k in st)
        assert json.loads((tmp_path / "run" / f"{stem}.json").read_text()) == {"dim": 16}
    assert json.loads((tmp_path / "run" / "arpg_polish_losses.json").read_text()) == [1.0, 0.5]
