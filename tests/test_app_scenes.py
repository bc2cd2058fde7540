"""The scenes model in the app: the store offers a scenes folder (the shipped one once its weights exist,
else ``--scenes`` / ``$ARPG_SCENES``), the Outpaint, Panorama and Resolution examples are the held-out
scene renders its card lists, whose click switches the session to it, and without it nothing changes.

A fake scenes folder of tiny random weights stands in for the real model: 16x16 tokens of 4 px like
it (64 px images), its JSON saying ``data: scenes`` and the canvases it was trained on. Built in-process
(no server): the example's load function, the switch behind it and the task handlers are called directly.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

import app
from arpg import masks
from arpg.checkpoints import save_checkpoint
from arpg.config import ARPGConfig, VQConfig
from arpg.data import scenes
from arpg.judge import Judge
from arpg.model import ARPG
from arpg.pipeline import SHIPPED_DIR, Pipeline
from arpg.store import SHIPPED_NAME, ModelStore, SmallModel, trained_model
from arpg.tokenizer import VQModel
from arpg.zoo import MODELS
from demo import server
from demo.parts.examples import render, rendered_examples, write_examples
from demo.parts.model_choice import ModelChoice
from demo.tabs.outpaint import run_outpaint, run_panorama
from demo.tabs.resolution import run_resize
from demo.ui import build_demo, model_choice, model_store

PREVIEW = "scenes model (preview, step 5 of 10)"
SCENES = MODELS["scenes"]
ENV_SCENES = SCENES.env
CARD = SmallModel.at(SCENES.folder).card  # the shipped scenes model's card: what its examples are
TRAINED = ((16, 16), (16, 24), (16, 32), (24, 24))


def write_scenes_folder(folder: Path, preview: bool = True) -> Path:
    """Tiny random arpg/vq/judge weights in ``folder``, the JSONs and examples as a scenes preview (or the final
    model) has."""
    torch.manual_seed(0)
    cfg = replace(ARPGConfig.from_name("ARPG-tiny"), grid_size=16, trained_grids=TRAINED)
    meta: dict[str, Any] = {**cfg.to_dict(), "data": "scenes", "sampling": {"steps": 4, "cfg_scale": 3.0}}
    if preview:
        meta["preview"] = {"phase": "arpg", "step": 5, "steps": 10}
    save_checkpoint(ARPG(cfg).init_weights(0.2).eval(), folder / "arpg.safetensors", meta)
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")).eval(), folder / "vq.safetensors")
    save_checkpoint(Judge(), folder / "judge.safetensors", {"family": "judge", "num_classes": 10, "data": "scenes"})
    shutil.copytree(MODELS["scenes"].folder / "examples", folder / "examples")  # the card's examples
    return folder


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scenes_folder(tmp_path_factory.mktemp("scenes"))


@pytest.fixture(autouse=True)
def no_scenes_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_SCENES, raising=False)


def store_with(small: list[SmallModel], cache: Path) -> ModelStore:
    """A random tiny model first, the shipped digits model, ``small``; no released model (empty hub cache)."""
    return ModelStore(
        Pipeline.random("ARPG-tiny", "VQ-tiny"),
        device="cpu",
        cache_dir=cache,
        shipped=lambda: Pipeline.shipped(device="cpu"),
        small=small,
    )


@dataclass
class Page:
    demo: gr.Blocks
    choice: ModelChoice

    def datasets(self) -> dict[str, gr.Dataset]:
        return {b.elem_id: b for b in self.demo.blocks.values() if isinstance(b, gr.Dataset)}

    def click(self, elem_id: str, row: int) -> dict[Any, Any]:
        """The values the example's load function sets, by component (what a click on ``row`` does first)."""
        dataset = self.datasets()[elem_id]
        clicks = [f for f in self.demo.fns.values() if (dataset._id, "click") in f.targets]
        (load,) = [f for f in clicks if f.name != "show_example"]  # (a remembered result shows beside it)
        then = [f for f in self.demo.fns.values() if f.trigger_after == load._id]
        assert [f.name for f in then] == ["switch_model", "run_example"], "a click: the model switch, the result"
        updates = load.fn(dataset.preprocess(row))
        return {c: u["value"] for c, u in zip(dataset._components, updates, strict=True)}

    def switch_after(self, values: dict[Any, Any]) -> tuple[str, dict[Any, Any]]:
        """The switch that follows the click (inputs: the dropdown, then the kept inputs): (model line, updates)."""
        choice = self.choice
        name = values.get(choice.dropdown, choice.dropdown.value)
        line, *out = choice.switch(
            name, [values.get(c, c.value) for c in choice.kept_inputs], progress=lambda *a, **k: 0
        )
        components = [c for f in choice.followers for c in f.components]
        return line, dict(zip(components, out, strict=True))


@pytest.fixture(scope="module")
def page(scenes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    store = store_with([SmallModel.at(scenes_dir, entry=SCENES)], tmp_path_factory.mktemp("no-hub"))
    demo = build_demo(store)
    yield Page(demo, model_choice(demo))


# -- the store ---------------------------------------------------------------------------------------
@pytest.mark.slow  # over 0.5 s: the fast tier stays under a minute
def test_the_store_offers_a_scenes_folder_loads_it_once_and_keeps_it(scenes_dir: Path, tmp_path: Path) -> None:
    m = SmallModel.at(scenes_dir, entry=SCENES)
    assert (m.name, m.data, m.directory) == (PREVIEW, "scenes", scenes_dir)
    store = store_with([m], tmp_path / "no-hub")
    assert store.names() == ["random ARPG-tiny", SHIPPED_NAME, PREVIEW]
    assert store.named_for("scenes") == PREVIEW and store.named_for("digits") == SHIPPED_NAME
    assert store.resident() == ["random ARPG-tiny"]  # loaded on first use
    pipe = store.get(PREVIEW)
    assert (pipe.name, pipe.data, pipe.image_size, pipe.grid) == (PREVIEW, "scenes", 64, (16, 16))
    assert pipe.class_names == list(scenes.CLASS_NAMES) and pipe.judge is not None
    assert pipe.model.cfg.trained_sizes == TRAINED and pipe.defaults.steps == 4
    assert store.get(PREVIEW) is pipe and PREVIEW in store.resident()
    assert store_with([], tmp_path / "no-hub").named_for("scenes") is None


def test_the_folder_comes_from_the_flag_the_variable_or_the_shipped_one(
    scenes_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = write_scenes_folder(tmp_path / "final", preview=False)
    not_yet = replace(SCENES, folder=tmp_path / "not-trained-yet")
    assert trained_model(not_yet) is None  # a registered model not trained yet: no choice
    shipped = replace(SCENES, folder=final)
    assert trained_model(shipped).name == "shipped scenes model"  # once the training has shipped its weights
    monkeypatch.setenv(ENV_SCENES, f" {scenes_dir} ")
    assert trained_model(shipped).name == PREVIEW  # the variable names another folder
    assert trained_model(shipped, final).directory == final  # a flag wins
    assert app.parse_args(["--scenes", "runs/scenes/preview"]).scenes == "runs/scenes/preview"
    assert app.parse_args([]).scenes is None


@pytest.mark.parametrize("case", ["missing", "empty", "digits"])
def test_a_named_folder_that_cannot_serve_stops_the_app_with_one_line(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    folder = {"missing": tmp_path / "nope", "empty": tmp_path, "digits": SHIPPED_DIR}[case]
    want = {
        "missing": "no such folder",
        "empty": "has no arpg.safetensors or vq.safetensors",
        "digits": "holds a digits model",
    }
    with pytest.raises(ValueError, match=want[case]):
        trained_model(SCENES, folder)
    monkeypatch.setattr(server, "prepare_process", lambda: None)  # no process-wide temp folder or signal handlers
    with pytest.raises(SystemExit) as stop:
        app.main(["--scenes", str(folder)])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.startswith("app.py: error: --scenes: ") and want[case] in err
    assert len(err.splitlines()) == 1
    monkeypatch.setenv(ENV_SCENES, str(folder))
    with pytest.raises(SystemExit):
        app.main([])
    assert capsys.readouterr().err.startswith(f"app.py: error: ${ENV_SCENES}: ")


def test_the_app_offers_the_folder_of_the_variable(scenes_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SCENES, str(scenes_dir))
    store = model_store(None, None, "cpu")
    assert store.names()[:2] == [SHIPPED_NAME, PREVIEW] and store.named_for("scenes") == PREVIEW


# -- the page ----------------------------------------------------------------------------------------
@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_without_a_scenes_model_the_tabs_keep_the_digit_examples(tmp_path: Path) -> None:
    demo = build_demo(store_with([], tmp_path / "no-hub"))
    sets = Page(demo, model_choice(demo)).datasets()
    assert sorted(sets) == ["inpaint-examples", "outpaint-examples", "resolution-examples"]
    for dataset in sets.values():
        assert [type(c).__name__ for c in dataset._components][1:] == ["Dropdown"]  # image, class: no model
        assert all(Path(row[0]).name.startswith("digit_") for row in dataset.raw_samples)


def test_with_a_scenes_model_outpaint_panorama_and_resolution_show_scene_examples(page: Page) -> None:
    sets = page.datasets()
    assert sorted(sets) == [
        "inpaint-examples",  # Inpaint keeps the digits
        "outpaint-scenes-examples",
        "panorama-scenes-examples",
        "resolution-scenes-examples",
    ]
    assert page.choice.dropdown.choices == [(n, n) for n in ["random ARPG-tiny", SHIPPED_NAME, PREVIEW]]
    for elem_id, task in [("outpaint", "outpaint"), ("panorama", "panorama"), ("resolution", "resize")]:
        dataset = sets[f"{elem_id}-scenes-examples"]
        specs = CARD.examples_for(task)
        assert dataset._components[-1] is page.choice.dropdown  # the model is one of the example's inputs
        assert [row[-1] for row in dataset.raw_samples] == [PREVIEW] * len(specs) and specs
        assert [row[1] for row in dataset.raw_samples] == [ex.cls for ex in specs]
        shown = dict(dataset.component_props[1]["choices"])  # the table names a class only if it is a choice
        assert all(row[1] in shown for row in dataset.raw_samples)


def example_image(values: dict[Any, Any]) -> np.ndarray:
    image = next(v for c, v in values.items() if isinstance(c, gr.Image))
    return np.asarray(Image.open(image["path"]).convert("RGB"))


def test_an_outpaint_example_switches_to_the_scenes_model_and_extends_its_scene(page: Page) -> None:
    values = page.click("outpaint-scenes-examples", 0)
    scene = CARD.examples_for("outpaint")[0]
    directions, amount = scene.settings["directions"], scene.settings["amount"]
    assert values[page.choice.dropdown] == PREVIEW
    line, updates = page.switch_after(values)
    assert f"**Model:** {PREVIEW}" in line and "10 classes" in line and "64×64 px images from 16×16 tokens" in line
    assert "trained on canvases of 16×16, 24×16, 32×16, 24×24 tokens" in line
    pickers = [u for c, u in updates.items() if isinstance(c, gr.Dropdown) and c.label == "Class"]
    assert all(u["choices"] == list(scenes.CLASS_NAMES) for u in pickers)
    outpaint_class = next(u for c, u in updates.items() if c.elem_id == "outpaint-class")
    assert outpaint_class["value"] == scene.cls  # the example's class, kept by the switch
    assert [u["value"] for u in pickers if u is not outpaint_class and u["value"] != "mountains"] == []
    slider = next(u for c, u in updates.items() if isinstance(c, gr.Slider) and c.label == "Amount (token cells)")
    assert (slider["value"], slider["maximum"]) == (amount, 16)
    steps = [u for c, u in updates.items() if isinstance(c, gr.Slider) and c.label == "Steps"]
    assert all(u["maximum"] == 256 for u in steps) and [u["value"] for u in steps[:4]] == [4] * 4  # its default
    pipe = page.choice.pipe(values[page.choice.dropdown])
    img = example_image(values)
    assert img.shape == (64, 64, 3) and np.array_equal(img, render(CARD, scene))
    outs = list(run_outpaint(pipe, img, scene.cls, directions, amount, 1, False, None, pipe.defaults))
    (before, result), seed, info = outs[-1]  # the before/after slider
    band = masks.SEAM_BAND  # the input is mixed with its own decode only this close to the join
    assert result.shape == before.shape == (64, 64 + 4 * amount, 3) and np.array_equal(
        result[:, : 64 - band], img[:, :-band]
    )
    assert np.array_equal(before[:, :64], img)  # the input in its place, the new cells checkered
    assert f"**{scene.cls}**" in info and "128 new tokens" in info  # 16 rows of 8 new cells


def test_a_panorama_example_makes_a_scene_four_times_as_wide(page: Page) -> None:
    values = page.click("panorama-scenes-examples", 0)
    scene = CARD.examples_for("panorama")[0]
    side, times = scene.settings["side"], scene.settings["times"]
    line, _ = page.switch_after(values)
    assert PREVIEW in line
    pipe = page.choice.pipe(values[page.choice.dropdown])
    outs = list(run_panorama(pipe, example_image(values), scene.cls, side, times, 1, False, None, pipe.defaults))
    assert outs[-1][0][1].shape == (64, 64 * times, 3) and f"{times}× towards the {side}" in outs[-1][2]


def test_a_resolution_example_doubles_a_scene(page: Page) -> None:
    values = page.click("resolution-scenes-examples", 0)
    scene = CARD.examples_for("resize")[0]
    _, updates = page.switch_after(values)
    assert next(u for c, u in updates.items() if c.elem_id == "resolution-class")["value"] == scene.cls
    pipe = page.choice.pipe(values[page.choice.dropdown])
    d = pipe.resize_defaults  # the example leaves scale and strategy to the model: x2, reencode
    settings = [v for c, v in updates.items() if getattr(c, "label", None) in ("Scale", "Strategy")]
    assert settings == [d.scale, d.strategy] and d.scale == 2
    run = run_resize(pipe, example_image(values), scene.cls, None, None, None, 1, False, None, pipe.defaults)
    (plain, result), _, info = list(run)[-1]
    assert result.shape == plain.shape == (128, 128, 3) and "64×64 px → 128×128 px (32×32 tokens)" in info


def test_a_switch_keeps_a_class_only_when_the_new_model_has_it(page: Page) -> None:
    values = {c: "zero" for c in page.choice.kept_inputs if isinstance(c, gr.Dropdown)}
    _, updates = page.switch_after({page.choice.dropdown: PREVIEW, **values})
    assert {u["value"] for c, u in updates.items() if isinstance(c, gr.Dropdown) and c.label == "Class"} == {
        "mountains"
    }
    _, updates = page.switch_after({page.choice.dropdown: SHIPPED_NAME, **values})
    assert next(u for c, u in updates.items() if c.elem_id == "outpaint-class")["value"] == "zero"


# -- the example images --------------------------------------------------------------------------------
def test_the_scene_examples_are_the_held_out_renders(tmp_path: Path) -> None:
    """The committed PNGs are exactly image ``index`` of the held-out split, rendered as their class."""
    scenes_shown = rendered_examples(CARD)
    assert len(scenes_shown) == sum(len(rows) for rows in CARD.examples.values()) == 9
    for scene in scenes_shown:
        assert scene.image.is_file(), f"{scene.image} is missing: python -m demo.parts.examples writes it"
        committed = np.asarray(Image.open(scene.image).convert("RGB"))
        assert committed.shape == (64, 64, 3) and np.array_equal(committed, render(CARD, scene)), scene.image.name
    written = write_examples(CARD, tmp_path)
    assert [p.name for p in written] == [s.image.name for s in scenes_shown]
    assert len({s.cls for s in scenes_shown}) == len(scenes_shown)  # one class each: the page shows them all


def test_a_scenes_json_without_data_is_not_a_scenes_model(scenes_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(scenes_dir, tmp_path / "copy"))
    meta = json.loads((copy / "arpg.json").read_text())
    del meta["data"]
    (copy / "arpg.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="holds a digits model"):
        trained_model(SCENES, copy)
