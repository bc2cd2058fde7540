"""The whole page (built, not served): a link in a summary opens the page as the result was made, and a
second click on an example row is answered from memory without decoding again."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from arpg import tasks
from arpg.pipeline import Pipeline
from arpg.store import ModelStore, SmallModel
from demo.instant import EXAMPLE_SEED, ExampleRunner
from demo.tabs.generate import run_generate
from demo.ui import build_demo, model_choice
from tests.test_app_scenes import write_scenes_folder
from tests.test_links import command_of

pytestmark = pytest.mark.slow  # builds the whole page

SCENES = "shipped scenes model"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> gr.Blocks:
    """The page for a tiny random model first and a tiny scenes model (as if shipped) second."""
    folder = write_scenes_folder(tmp_path_factory.mktemp("scenes"), preview=False)
    store = ModelStore(
        Pipeline.random("ARPG-tiny", "VQ-tiny"),
        device="cpu",
        cache_dir=tmp_path_factory.mktemp("no-hub"),
        small=[SmallModel.at(folder)],
    )
    return build_demo(store)


def by_elem_id(demo: gr.Blocks, elem_id: str) -> Any:
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def opened(demo: gr.Blocks, query: str) -> tuple[dict[int, Any], list[str]]:
    """What the page's load event sets for a page address with ``query`` (by component id), and what it left out."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(query).query).items()}
    return demo._arpg_link_reader.read(params, progress=lambda *a, **k: None)


def value(new: dict[int, Any], component: Any) -> Any:
    got = new[id(component)]
    return got["value"] if isinstance(got, dict) else got


def test_a_generate_link_opens_its_tab_model_class_seed_and_settings(demo: gr.Blocks) -> None:
    choice = model_choice(demo)
    pipe = choice.pipe(SCENES)
    opts = pipe.defaults.replace(steps=6, cfg_scale=2.5, order="spiral-in")
    *_, info, _ = list(run_generate(pipe, "city at night", 3, 42, False, opts))[-1]
    query = info.split("[link to these settings](")[1].rstrip(")")
    new, left = opened(demo, query)
    assert left == []
    widgets = demo._arpg_link_reader.widgets["generate"]
    assert new[id(demo._arpg_link_reader.tabs)]["selected"] == "generate"
    assert value(new, choice.dropdown) == SCENES and "**Model:** shipped scenes model" in value(
        new, demo._arpg_link_reader.line
    )
    assert value(new, by_elem_id(demo, "generate-class")) == "city at night"
    assert new[id(by_elem_id(demo, "generate-class"))]["choices"][0] == "mountains"  # the scenes model's names
    got = {name: value(new, widgets[name]) for name in ("seed", "randomize", "steps", "n_images", "cfg_scale", "order")}
    assert got == {"seed": 42, "randomize": False, "steps": 6, "n_images": 3, "cfg_scale": 2.5, "order": "spiral-in"}
    # the command line of the same summary names the same things
    words = command_of(info)
    assert words[:3] == ["sample", "-n", "3"] and "--model" in words and words[words.index("--model") + 1] == "scenes"


def test_an_outpaint_link_sets_its_directions_amount_and_decoding(demo: gr.Blocks) -> None:
    new, left = opened(demo, "?tab=outpaint&model=scenes&class=sea&seed=3&directions=left,top&amount=5&decoding=whole")
    widgets = demo._arpg_link_reader.widgets["outpaint"]
    assert left == []
    assert value(new, widgets["directions"]) == ["left", "top"] and value(new, widgets["amount"]) == 5
    assert value(new, widgets["decoding"]) == "whole" and value(new, widgets["class_name"]) == "sea"


def test_a_link_leaves_out_what_does_not_fit_and_says_so(demo: gr.Blocks) -> None:
    new, left = opened(demo, "?tab=generate&class=class+2&steps=9999&order=sideways&model=nope&bogus=1&seed=-4")
    widgets = demo._arpg_link_reader.widgets["generate"]
    assert value(new, widgets["class_name"]) == "class 2"  # the first model's class (no switch happened)
    assert id(widgets["steps"]) not in new and id(widgets["order"]) not in new and id(widgets["seed"]) not in new
    assert [item.split(" ")[0].split("=")[0] for item in left] == ["model", "steps", "order", "bogus", "seed"]
    assert opened(demo, "?tab=nowhere&seed=1") == ({}, ["tab=nowhere"])
    assert opened(demo, "?utm_source=x") == ({}, [])  # a page address without a tab is no link


def scene_runner(demo: gr.Blocks, elem_id: str) -> ExampleRunner:
    return next(r for r in demo._arpg_example_runners if r.examples.dataset.elem_id == elem_id)


def click(demo: gr.Blocks, runner: ExampleRunner, index: int) -> list[tuple]:
    """What the two events registered after a click on row ``index`` yield: the lookup (outside the queue),
    then the decode (in the queue); the row's values as the click loaded them."""
    row = runner.examples.examples[index]
    image = np.asarray(Image.open(row[0]).convert("RGB"))
    values = [image, *row[1:]]  # image, class, settings, model: the example's inputs (the dropdown among them)
    selected = runner.examples.dataset.preprocess(index)
    events = {f.name: f for f in demo.fns.values() if f.inputs and f.inputs[0] is runner.examples.dataset}
    assert not events["show_example"].queue and events["run_example"].queue is not False
    assert events["run_example"].types_generator  # gradio streams its partial images
    model = model_choice(demo).dropdown.value  # the session's model (a scene row names its own)
    return [events["show_example"].fn(selected, model), *events["run_example"].fn(selected, None, *values)]


def shown(outputs: list[tuple]) -> tuple:
    """What the page shows after the events: the last outputs that are not all unchanged."""
    return [o for o in outputs if not all(isinstance(v, dict) and v == {"__type__": "update"} for v in o)][-1]


def test_every_example_box_of_a_task_runs_its_endpoint(demo: gr.Blocks) -> None:
    boxes = {r.examples.dataset.elem_id: r.ep.api_name for r in demo._arpg_example_runners}
    assert boxes == {
        "outpaint-scenes-examples": "outpaint",
        "panorama-scenes-examples": "panorama",
        "resolution-scenes-examples": "resize",
    }  # Inpaint's rows only load an image to paint on


def test_the_second_click_on_an_example_is_answered_without_decoding(
    demo: gr.Blocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    outpaint = tasks.outpaint
    monkeypatch.setattr(tasks, "outpaint", lambda *a, **k: calls.append(1) or outpaint(*a, **k))
    runner = scene_runner(demo, "outpaint-scenes-examples")
    first = click(demo, runner, 1)
    assert first[0] == runner.unchanged() and len(calls) == 1  # not in memory: decoded in the queue
    hits = runner.cache.hits
    second = click(demo, runner, 1)
    assert len(calls) == 1 and runner.cache.hits == hits + 1  # no decode: answered from memory
    assert second[1] == runner.unchanged()  # the queued event has nothing left to do
    image, seed, info = second[0]
    assert np.array_equal(image, shown(first)[0]) and (seed, info) == shown(first)[1:]
    after = image[-1] if isinstance(image, tuple) else image  # the result (of a before/after pair)
    assert seed == EXAMPLE_SEED and np.asarray(after).shape == (64, 64 + 4 * 8, 3)
    words = command_of(info)
    path = Path(runner.examples.examples[1][0]).name
    assert words[0] == "outpaint" and words[1].endswith(f"examples/{path}") and "--right" in words
    assert words[words.index("--model") + 1] == "scenes" and words[words.index("--seed") + 1] == str(EXAMPLE_SEED)
    assert shown(click(demo, runner, 2))[2] != info  # another row: another result
