"""The model flags every sampling command shares (``--model digits|scenes|DIR`` or ``--weights`` /
``--tokenizer``, ``--device``, ``--dtype``), and what the commands write into the repository's
committed folders: nothing unless asked (``eval --json PATH``), or said first (``train``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from arpg import cli, commands
from arpg.pipeline import ASSETS
from arpg.zoo import MODELS

SCENES_DIR = MODELS["scenes"].folder

DIGIT = str(ASSETS / "examples" / "digit_3.png")
#: Every command that samples, with the arguments it needs besides the model flags.
SAMPLING_COMMANDS: dict[str, list[str]] = {
    "sample": [],
    "animate": [],
    "outpaint": [DIGIT, "--class", "3", "--right", "1"],
    "panorama": [DIGIT, "--class", "3"],
    "resize": [DIGIT, "--class", "3"],
    "inpaint": [DIGIT, "--class", "3", "--mask", DIGIT],
    "eval": [],
    "sample-many": [],
}
MODEL_FLAGS = ("--model", "--weights", "--tokenizer", "--device", "--dtype")
needs_scenes = pytest.mark.skipif(not (SCENES_DIR / "arpg.safetensors").exists(), reason="scenes model not trained")


def subparser(command: str) -> argparse.ArgumentParser:
    action = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def model_flags(command: str) -> list[tuple[Any, ...]]:
    """Each model flag of ``command``: its names, default, choices and help."""
    actions = [a for a in subparser(command)._actions if set(a.option_strings) & set(MODEL_FLAGS)]
    return [(tuple(a.option_strings), a.default, a.choices, a.help) for a in actions]


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


# -- one set of model flags ----------------------------------------------------------------------
@pytest.mark.parametrize("command", SAMPLING_COMMANDS)
def test_every_sampling_command_takes_the_same_model_flags(command: str) -> None:
    assert [f[0][0] for f in model_flags(command)] == list(MODEL_FLAGS)
    assert model_flags(command) == model_flags("sample")


@pytest.mark.parametrize("command", SAMPLING_COMMANDS)
def test_model_and_weights_are_alternatives_everywhere(command: str, capsys) -> None:
    argv = [command, *SAMPLING_COMMANDS[command], "--model", "scenes", "--weights", "ARPG-L"]
    assert cli.main(argv) == 2
    assert "--model and --weights/--tokenizer are alternatives" in one_error_line(capsys)


@pytest.mark.slow
@needs_scenes
def test_sample_and_animate_take_the_scenes_model_by_name(tmp_path: Path, capsys) -> None:
    out = tmp_path / "scene.png"
    assert cli.main(["sample", "--model", "scenes", "--class", "0", "--steps", "2", "--out", str(out)]) == 0
    assert "class 0 'mountains'" in capsys.readouterr().out and Image.open(out).size == (64, 64)
    gif = tmp_path / "scene.gif"
    argv = ["animate", "--model", str(SCENES_DIR), "--class", "mountains", "--steps", "2", "--out", str(gif)]
    assert cli.main(argv) == 0
    assert Image.open(gif).n_frames == 3


@pytest.mark.slow
@needs_scenes
def test_sample_many_takes_the_scenes_model_by_name(tmp_path: Path) -> None:
    out = tmp_path / "many"
    argv = ["sample-many", "--model", "scenes", "--classes", "mountains", "--per-class", "1", "--steps", "2"]
    assert cli.main([*argv, "--no-progress", "--out", str(out)]) == 0
    assert json.loads((out / "sample-many.json").read_text())["model"] == "shipped scenes model"


def test_a_missing_model_folder_is_one_line_for_sample(tmp_path: Path, capsys) -> None:
    assert cli.main(["sample", "--model", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.png")]) == 2
    assert "no such folder" in one_error_line(capsys)


# -- committed files: written only when asked ----------------------------------------------------
def test_eval_writes_no_json_unless_asked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    """``eval`` used to overwrite docs/benchmarks/quality.json by default; now only ``--json PATH`` writes."""
    written: list[Any] = []
    monkeypatch.setattr(commands, "evaluate", lambda pipe, out=None, **kw: written.append(out) or {})
    monkeypatch.setattr(commands.report, "format_quality_table", lambda res: "the table")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["eval", "--per-class", "5"]) == 0
    assert written == [None] and "no JSON written" in capsys.readouterr().out
    assert cli.main(["eval", "--per-class", "5", "--json", "docs/benchmarks/quality.json"]) == 0
    assert written[-1] == "docs/benchmarks/quality.json"
    assert "wrote docs/benchmarks/quality.json" in capsys.readouterr().out


def test_train_says_first_where_it_writes(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The recipe's folders are committed ones (weights in assets/models, curves in docs/training): said
    on stderr before any training; with --out and --plots nothing is said about them."""
    calls: list[dict] = []
    monkeypatch.setattr(commands, "run_recipe", lambda name, **kw: calls.append(kw) or {"recipe": name})
    assert cli.main(["train", "--recipe", "scenes"]) == 0
    err = capsys.readouterr().err
    assert "weights into assets/models/scenes/, loss curves into docs/training/scenes/" in err
    assert "committed" in err and calls[0]["plots"] is None and calls[0]["out"] is None
    assert cli.main(["train", "--recipe", "scenes", "--out", "w", "--plots", "p"]) == 0
    assert "committed" not in capsys.readouterr().err


def test_the_decoder_stage_says_it_leaves_the_shipped_tokenizer_alone(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """``--stage vq-decoder`` reads the recipe's tokenizer and writes only into the run folder (it said
    "weights into assets/models/scenes/")."""
    monkeypatch.setattr(commands, "run_recipe", lambda name, **kw: {"recipe": name})
    assert cli.main(["train", "--recipe", "scenes", "--stage", "vq-decoder", "--run-dir", "runs/sharp"]) == 0
    err = capsys.readouterr().err
    assert "writes the new decoder into runs/sharp/vq_decoder/" in err
    assert "reads the tokenizer in assets/models/scenes/" in err and "weights into" not in err


def test_no_command_defaults_to_a_file_under_docs() -> None:
    for command in ("sample", "animate", "eval", "bench", "sample-many", "outpaint", "resize"):
        for action in subparser(command)._actions:
            assert "docs/" not in str(action.default), (command, action.option_strings)
