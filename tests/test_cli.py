import subprocess
import sys

import pytest
import torch

from arpg.checkpoints import save_model
from arpg.config import ARPGConfig, VQConfig
from arpg.model import ARPG
from arpg.tokenizer import VQModel


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "arpg", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    m = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2)
    torch.save({"state_dict": m.state_dict()}, d / "arpg.pt")
    save_model(VQModel(VQConfig.from_name("VQ-tiny")), d / "vq.safetensors")
    return d


def test_convert_then_sample(files, tmp_path):
    r = run("convert", str(files / "arpg.pt"), str(tmp_path / "arpg.safetensors"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "arpg.json").exists()
    out = tmp_path / "grid.png"
    r = run("sample", "--weights", str(tmp_path / "arpg.safetensors"), "--tokenizer", str(files / "vq.safetensors"),
            "--class", "3", "-n", "4", "--steps", "4", "--seed", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    img = Image.open(out)
    assert img.size == (4 * 16 + 5 * 2, 16 + 2 * 2)


def test_animate_gif(files, tmp_path):
    out = tmp_path / "order.gif"
    r = run("animate", "--weights", str(files / "arpg.pt"), "--tokenizer", str(files / "vq.safetensors"),
            "--steps", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(out).n_frames == 5


@pytest.mark.parametrize("args,needle", [
    (["convert", "missing.pt", "x.safetensors"], "no such file"),
    (["sample", "--steps", "0"], "steps"),
    (["sample", "--temperature", "0"], "temperature"),
    (["sample", "--class", "ninety"], "class"),
    (["animate", "--out", "x.txt"], ".gif"),
])
def test_bad_input_one_line_exit_2(files, args, needle):
    if args[0] in ("sample", "animate"):
        args = args + ["--weights", str(files / "arpg.pt"), "--tokenizer", str(files / "vq.safetensors")]
    r = run(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_wrong_family_is_reported(files, tmp_path):
    r = run("sample", "--weights", str(files / "vq.safetensors"), "--tokenizer", str(files / "vq.safetensors"))
    assert r.returncode == 2 and "VQ" in r.stderr and "Traceback" not in r.stderr


def test_truncated_file(files, tmp_path):
    data = (files / "arpg.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    r = run("convert", str(tmp_path / "cut.pt"), str(tmp_path / "o.safetensors"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
