"""Bad input is echoed at most 80 characters (:data:`arpg.validation.ECHO_CHARS`) in every error
message of the command line and the web app, and a model's JSON that is not an object is refused
by every reader of it (:func:`arpg.sidecar.read_sidecar`), with one line naming the file."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest
import torch

from arpg import cli
from arpg.card import read_card
from arpg.checkpoints import load_arpg, save_checkpoint
from arpg.config import ARPGConfig, VQConfig
from arpg.model import ARPG
from arpg.options import model_decodings, model_defaults
from arpg.pipeline import ASSETS, Pipeline
from arpg.tokenizer import VQModel
from arpg.validation import ECHO_CHARS, MESSAGE_CHARS, short_message, show
from demo.parts.errors import to_error
from demo.parts.runner import Run

DIGIT = str(ASSETS / "examples" / "digit_3.png")
HUGE = "x" * 5000


def error_line(capsys: pytest.CaptureFixture) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), [line[:200] for line in lines]
    return lines[0]


def echoes_at_most(text: str, limit: int = ECHO_CHARS) -> bool:
    """Whether ``text`` holds no run of the huge input longer than ``limit``."""
    return "x" * (limit + 1) not in text and "1" * (limit + 1) not in text


# -- the one helper ------------------------------------------------------------------------------
def test_short_message_cuts_quoted_values_and_keeps_the_rest() -> None:
    text = f"unknown order name '{HUGE}'; allowed: random, raster\nsecond line"
    short = short_message(text)
    assert short.startswith("unknown order name 'x") and short.endswith("; allowed: random, raster")
    assert echoes_at_most(short) and len(short) < 130
    assert short_message("the model's judge can't read 'abc'") == "the model's judge can't read 'abc'"
    assert len(short_message("y" * 5000)) == MESSAGE_CHARS


def test_show_names_a_number_too_long_to_print() -> None:
    assert show(10**400) == "a 401-digit number" and show(10**20) == "1e+20"


# -- the command line ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Model flags of a tiny random model (loads in a moment)."""
    d = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    save_checkpoint(ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2), d / "arpg.safetensors")
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")), d / "vq.safetensors")
    return ["--weights", str(d / "arpg.safetensors"), "--tokenizer", str(d / "vq.safetensors"), "--device", "cpu"]


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--class", HUGE],  # a class name: the library's message
        ["sample", "--class", "1" * 4000],  # a class number: no 4,000 digits back
        ["resize", DIGIT, "--class", "3", "--strategy", HUGE],  # argparse's own message
        ["sample", "--order", HUGE],  # a sampling option
        ["sample-many", "--classes", f"0,{HUGE}", "--per-class", "1"],
    ],
)
def test_cli_errors_echo_at_most_80_characters(argv: list[str], tiny: list[str], tmp_path: Path, capsys) -> None:
    assert cli.main([*argv, *tiny, "--out", str(tmp_path / "out")]) == 2
    line = error_line(capsys)
    assert echoes_at_most(line) and len(line) <= len("error: ") + MESSAGE_CHARS, line[:200]


# -- the web app ---------------------------------------------------------------------------------
def test_app_class_errors_echo_at_most_80_characters() -> None:
    """A 5,000-character class name sent to the API came back 145 characters long."""
    with pytest.raises(gr.Error) as err:
        Run.start(Pipeline.random(), HUGE, 0, False)
    assert err.value.message.startswith("Unknown class 'xxx")
    assert echoes_at_most(err.value.message)


@pytest.mark.parametrize(
    "exc",
    [ValueError(f"unknown order name {HUGE!r}"), KeyError(HUGE), RuntimeError(f"bad {HUGE!r} input")],
)
def test_app_errors_from_any_layer_echo_at_most_80_characters(exc: Exception) -> None:
    message = to_error(exc).message
    assert echoes_at_most(message) and len(message) <= MESSAGE_CHARS, message[:200]


# -- a model's JSON ------------------------------------------------------------------------------
@pytest.fixture()
def listed(tmp_path: Path) -> Path:
    """A tiny ARPG checkpoint whose JSON beside it is a list, not an object."""
    torch.manual_seed(0)
    weights = save_checkpoint(ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2), tmp_path / "arpg.safetensors")
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")), tmp_path / "vq.safetensors")
    (tmp_path / "arpg.json").write_text('[{"family": "arpg"}]\n')
    return weights


def test_a_json_list_beside_the_weights_is_refused_by_the_cli(listed: Path, tmp_path: Path, capsys) -> None:
    argv = ["sample", "--weights", str(listed), "--tokenizer", str(tmp_path / "vq.safetensors"), "--steps", "2"]
    assert cli.main([*argv, "--out", str(tmp_path / "x.png")]) == 2
    line = error_line(capsys)
    assert str(tmp_path / "arpg.json") in line and "must be an object" in line and "not an array" in line
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "read",
    [
        load_arpg,
        lambda w: model_defaults(ARPGConfig.from_name("ARPG-tiny"), w),
        model_decodings,
        lambda w: read_card(w, 10, ASSETS),
    ],
    ids=["load_arpg", "model_defaults", "model_decodings", "read_card"],
)
def test_every_reader_of_a_model_json_refuses_a_list(read, listed: Path) -> None:
    with pytest.raises(ValueError, match=r"arpg\.json: a model's JSON must be an object"):
        read(listed)
