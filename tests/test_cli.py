"""The command line, called in-process (``arpg.cli.main``): every command's happy path and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from arpg import cli, model_flags
from arpg.checkpoints import save_checkpoint
from arpg.config import ARPGConfig, VQConfig
from arpg.model import ARPG
from arpg.options import SAMPLER_ORDERS, SamplingOptions
from arpg.tokenizer import VQModel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    m = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2)
    torch.save({"state_dict": m.state_dict()}, d / "arpg.pt")
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")), d / "vq.safetensors")
    return d


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_convert_then_sample(files, tmp_path, capsys):
    assert cli.main(["convert", str(files / "arpg.pt"), str(tmp_path / "arpg.safetensors")]) == 0
    assert (tmp_path / "arpg.json").exists()
    out = tmp_path / "grid.png"
    assert (
        cli.main(
            [
                "sample",
                "--weights",
                str(tmp_path / "arpg.safetensors"),
                "--tokenizer",
                str(files / "vq.safetensors"),
                "--class",
                "3",
                "-n",
                "4",
                "--steps",
                "4",
                "--seed",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert Image.open(out).size == (4 * 16 + 5 * 2, 16 + 2 * 2)
    assert "4 steps, seed 1" in capsys.readouterr().out


def test_animate_gif(files, tmp_path):
    out = tmp_path / "order.gif"
    assert (
        cli.main(
            [
                "animate",
                "--weights",
                str(files / "arpg.pt"),
                "--tokenizer",
                str(files / "vq.safetensors"),
                "--steps",
                "4",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert Image.open(out).n_frames == 5


@pytest.mark.parametrize(
    "args,needle",
    [
        (["convert", "missing.pt", "x.safetensors"], "no such file"),
        (["sample", "--steps", "0"], "steps"),
        (["sample", "--steps", "x"], "--steps"),
        (["sample", "--temperature", "0"], "temperature"),
        (["sample", "--cfg-schedule", "cubic"], "cfg_schedule"),
        (["sample", "--class", "ninety"], "class"),
        (["sample", "-n", "0"], "-n"),
        (["animate", "--out", "x.txt"], ".gif"),
        (["animate", "--order", "zigzag"], "order"),
        (["nope"], "nope"),
        ([], "command"),
    ],
)
def test_bad_input_one_line_exit_2(files, capsys, args, needle):
    if args and args[0] in ("sample", "animate"):
        args = args + ["--weights", str(files / "arpg.pt"), "--tokenizer", str(files / "vq.safetensors")]
    assert cli.main(args) == 2
    assert needle in one_error_line(capsys)


def test_wrong_family_is_reported(files, capsys):
    assert (
        cli.main(["sample", "--weights", str(files / "vq.safetensors"), "--tokenizer", str(files / "vq.safetensors")])
        == 2
    )
    assert "VQ" in one_error_line(capsys)


def test_truncated_file(files, tmp_path, capsys):
    data = (files / "arpg.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert cli.main(["convert", str(tmp_path / "cut.pt"), str(tmp_path / "o.safetensors")]) == 2
    one_error_line(capsys)


def test_sampling_flags_left_out_keep_the_model_defaults():
    base = SamplingOptions(steps=12, cfg_scale=3.0, cfg_schedule="constant")
    a = cli.build_parser().parse_args(["sample", "--top-p", "0.5", "--order", "raster"])
    opts = model_flags.sampling_options(a, base)
    assert opts == base.replace(top_p=0.5, order="raster")


@pytest.mark.parametrize("command", ["sample", "animate", "bench"])
def test_order_help_names_every_order(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, also at hyphens
    assert all(name in text for name in SAMPLER_ORDERS)


# -- bench ------------------------------------------------------------------------------------------
@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_bench_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        cli.main(
            ["bench", "--preset", "ARPG-tiny", "--steps", "2,4", "--batch", "2", "--repeats", "1", "--json", str(out)]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert [(r["method"], r["steps"]) for r in res["rows"]] == [
        ("arpg", 2),
        ("arpg", 4),
        ("raster", 16),
        ("random1", 16),
    ]
    assert res["command"].startswith("python -m arpg bench --preset ARPG-tiny --batch 2 --steps 2,4")
    assert res["matmul_peak_gflops"]["float32"] > 0
    printed = capsys.readouterr().out
    assert "arpg" in printed and f"wrote {out}" in printed


@pytest.mark.parametrize(
    "args",
    [
        ["--steps", "0"],
        ["--steps", "2,x"],
        ["--batch", "x"],
        ["--model", "nope"],
        ["--model", "ARPG-tiny"],
        ["--preset", "nope"],
        ["--preset", "ARPG-tiny", "--model", "digits"],
        ["--repeats", "0"],
        ["--cfg", "abc"],
        ["--steps", "99"],
        ["--methods", "a,b"],
        ["--device", "tpu"],
        ["--orders", "random,zigzag"],
    ],
)
def test_bench_bad_flags_one_line(args, capsys):
    argv = (
        ["bench", *args]
        if {"--model", "--preset", "--orders"} & set(args)
        else ["bench", "--preset", "ARPG-tiny", *args]
    )
    assert cli.main(argv) == 2
    one_error_line(capsys)


def test_eval_bad_steps_one_line(capsys):
    assert cli.main(["eval", "--steps", "4,x"]) == 2
    assert "--steps" in one_error_line(capsys)


@pytest.mark.slow
def test_bad_flag_exit_code_in_a_process():
    p = subprocess.run(
        [sys.executable, "-m", "arpg", "bench", "--preset", "ARPG-tiny", "--batch", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["error: --batch must be >= 1, got '0'"]


# -- released names and hub files (issue 15) ----------------------------------------------------------
def _hub_cache_with_a_1000_class_model(root: Path) -> Path:
    """A hub cache holding a tiny 1000-class ARPG and a tiny VQ under the released file names."""
    from dataclasses import replace

    rev = "0" * 40
    model = ARPG(replace(ARPGConfig.from_name("ARPG-tiny"), num_classes=1000)).init_weights(0.2)
    for org, name, filename, sd in (
        ("hp-l33", "ARPG", "arpg_300m.pt", model.state_dict()),
        ("FoundationVision", "LlamaGen", "vq_ds16_c2i.pt", VQModel(VQConfig.from_name("VQ-tiny")).state_dict()),
    ):
        repo = root / f"models--{org}--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(rev)
        (repo / "snapshots" / rev).mkdir(parents=True)
        torch.save({"model": sd}, repo / "snapshots" / rev / filename)
    return root


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_released_name_and_class_name_from_the_hub_cache(tmp_path, monkeypatch, capsys):
    cache = _hub_cache_with_a_1000_class_model(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    out = tmp_path / "golden.png"
    code = cli.main(
        [
            "sample",
            "--weights",
            "ARPG-L",
            "--class",
            "golden retriever",
            "--steps",
            "2",
            "-n",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert out.exists()
    pipe = model_flags.load_pipeline(
        cli.build_parser().parse_args(["sample", "--weights", "hf://hp-l33/ARPG/arpg_300m.pt", "--device", "cpu"])
    )
    assert pipe.name == "ARPG-L" and pipe.class_names[207] == "golden retriever"
    assert pipe.label_of("Golden Retriever") == 207


def test_released_name_offline_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    assert cli.main(["sample", "--weights", "ARPG-L", "--device", "cpu", "--out", str(tmp_path / "x.png")]) == 2
    line = one_error_line(capsys)
    assert "arpg_300m.pt" in line and "HF_HUB_OFFLINE" in line
    assert cli.main(["sample", "--tokenizer", "vq.pt", "--out", str(tmp_path / "x.png")]) == 2
    assert "--tokenizer needs --weights" in one_error_line(capsys)
