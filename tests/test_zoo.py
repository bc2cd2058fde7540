"""The model registry (arpg.zoo) and cards (arpg.card): a model trained here is one folder plus one entry.

A fake third model (tiny random weights in a temp folder, with the examples a model folder may carry) is
registered by one entry and then found by the CLI's ``--model``, the app's store, its Model dropdown and
its example boxes, with no other file changed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from arpg import cli, hub, zoo
from arpg.card import read_card, read_examples
from arpg.store import trained_models
from tests.test_app_scenes import write_scenes_folder

TOY = "shipped toy model"


@pytest.fixture(scope="module")
def toy_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scenes_folder(tmp_path_factory.mktemp("toy"), preview=False)


@pytest.fixture
def toy(toy_folder: Path, monkeypatch: pytest.MonkeyPatch) -> zoo.ModelEntry:
    """The third model trained here: its folder and one registry entry (undone after the test)."""
    entry = zoo.ModelEntry("toy", folder=toy_folder)
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    return entry


def test_the_registry_holds_every_model_once_and_tells_kinds_apart() -> None:
    assert [e.name for e in zoo.trained_here()] == ["digits", "scenes", "raster"]
    assert zoo.entry("raster").family == "llamagen"
    assert [e.name for e in zoo.released()] == [
        *("ARPG-L", "ARPG-XL", "ARPG-XXL", "LlamaGen-B", "LlamaGen-L", "RandAR-L", "RandAR-XL")
    ]
    assert {e.family for e in zoo.released()} == {"arpg", "llamagen", "randar"}
    assert zoo.entry("arpg-l").weights == hub.RELEASED["ARPG-L"] and hub.RELEASED["VQ-16"] == hub.RELEASED_TOKENIZER
    assert zoo.entry("ARPG-XL").tokenizer_spec() == hub.RELEASED_TOKENIZER
    with pytest.raises(ValueError, match="unknown model 'nope'; choose from digits, scenes, raster, ARPG-L"):
        zoo.entry("nope")
    with pytest.raises(ValueError, match="registered already"):
        zoo.register(zoo.ModelEntry("Digits", folder=Path("x")))
    with pytest.raises(ValueError, match="either a folder"):
        zoo.ModelEntry("both", folder=Path("x"), weights="hf://a/b/c")
    assert zoo.title("scenes") == "shipped scenes model"
    assert zoo.title("x", (5, 10)) == "x model (preview, step 5 of 10)"


@pytest.mark.slow  # samples an image
def test_a_third_model_is_found_by_the_cli(toy: zoo.ModelEntry, tmp_path: Path, capsys) -> None:
    out = tmp_path / "toy.png"
    argv = ["sample", "--model", "toy", "--class", "mountains", "--steps", "2", "--seed", "1", "--out", str(out)]
    assert cli.main(argv) == 0 and out.is_file()
    assert "toy" in cli.build_parser()._subparsers._group_actions[0].choices["sample"].format_help()


def test_a_third_model_is_offered_by_the_store(toy: zoo.ModelEntry) -> None:
    found = {m.key: m for m in trained_models()}
    assert list(found)[:2] == ["digits", "scenes"] and list(found)[-1] == "toy"  # raster too once it is trained
    m = found["toy"]
    assert (m.name, m.data, m.directory) == (TOY, "scenes", toy.folder)
    assert {task: len(rows) for task, rows in m.card.examples.items()} == {"outpaint": 3, "panorama": 3, "resize": 3}


@pytest.mark.slow  # builds the whole page
def test_a_third_model_is_in_the_dropdown_and_its_examples(toy: zoo.ModelEntry, tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    from demo.ui import build_demo, model_choice, model_store

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))  # no released model offered
    store = model_store(None, None, "cpu")
    assert store.names()[:2] == ["shipped digits model", "shipped scenes model"] and store.names()[-1] == TOY
    assert store.get(TOY).class_names[0] == "mountains"
    demo = build_demo(store)
    choice = model_choice(demo)
    assert (TOY, TOY) in choice.dropdown.choices
    boxes = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", "") and "-toy-" in b.elem_id}
    assert sorted(boxes) == ["outpaint-toy-examples", "panorama-toy-examples", "resolution-toy-examples"]
    assert all(row[-1] == TOY for box in boxes.values() for row in box.raw_samples)
    assert store.name_of("toy") == TOY


def test_a_card_reads_the_json_once_and_says_what_the_model_is(toy_folder: Path) -> None:
    card = read_card(toy_folder / "arpg.safetensors", None, zoo.ASSETS)
    assert card.data == "scenes" and len(card.class_names) == 10 and card.preview is None
    assert card.decodings["outpaint"] == "windowed" and card.examples_for("inpaint") == ()
    first = card.examples_for("panorama")[0]
    assert first.image.is_file() and first.row(("side", "times"))[1:] == ["sea", "right", 4]
    digits = read_card(zoo.MODELS["digits"].folder / "arpg.safetensors", None, zoo.ASSETS)
    assert digits.data == "digits" and digits.class_names[3] == "three" and digits.examples == {}


@pytest.mark.parametrize("text", ["[1, 2]", '{"outpaint": [{"class": "sea"}]}', "{", '{"resize": 3}'])
def test_malformed_examples_are_refused_with_one_line(text: str, tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "examples.json").write_text(text)
    with pytest.raises(ValueError, match=r"examples\.json: not a table of example rows by task") as err:
        read_examples(tmp_path)
    assert "\n" not in str(err.value)


def test_a_preview_of_a_registered_model_shows_its_examples(toy_folder: Path, tmp_path: Path) -> None:
    from arpg.store import SmallModel

    bare = Path(dataclasses.replace(zoo.MODELS["scenes"]).folder)  # the shipped scenes folder has examples
    preview = tmp_path / "preview"
    preview.mkdir()
    for f in ("arpg.safetensors", "vq.safetensors"):
        (preview / f).write_bytes((toy_folder / f).read_bytes())
    meta = json.loads((toy_folder / "arpg.json").read_text()) | {"preview": {"step": 1, "steps": 2}}
    (preview / "arpg.json").write_text(json.dumps(meta))
    (preview / "vq.json").write_text((toy_folder / "vq.json").read_text())
    m = SmallModel.at(preview, entry=zoo.MODELS["scenes"])
    assert m.name == "scenes model (preview, step 1 of 2)"
    assert m.card.examples == read_examples(bare)
