"""Every tab follows the session's model: an example click keeps the class it chose through the model
switch that follows it (the Inpaint tab), built in-process with the shipped digits model (no server)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from arpg import tasks
from arpg.pipeline import Pipeline
from arpg.store import SHIPPED_NAME, ModelStore
from demo.ui import build_demo, model_choice

pytestmark = pytest.mark.slow  # each module builds the whole app


@pytest.fixture(scope="module")
def digits_page() -> gr.Blocks:
    """The app on the shipped digits model (its Inpaint tab shows the digit examples)."""
    return build_demo(ModelStore(Pipeline.shipped(device="cpu"), device="cpu"))


def example_values(demo: gr.Blocks, elem_id: str, row: int) -> dict[Any, Any]:
    """The values a click on example ``row`` of the dataset ``#elem_id`` sets, by component."""
    dataset = next(b for b in demo.blocks.values() if isinstance(b, gr.Dataset) and b.elem_id == elem_id)
    (load,) = [f for f in demo.fns.values() if (dataset._id, "click") in f.targets and f.name == "load_example"]
    updates = load.fn(dataset.preprocess(row))
    return {c: u["value"] for c, u in zip(dataset._components, updates, strict=True)}


def switch_after(demo: gr.Blocks, values: dict[Any, Any]) -> dict[Any, Any]:
    """The model switch that follows an example click: the new value of every follower, by component."""
    choice = model_choice(demo)
    name = values.get(choice.dropdown, choice.dropdown.value)
    _, *out = choice.switch(name, [values.get(c, c.value) for c in choice.kept_inputs], progress=lambda *a, **k: 0)
    return dict(zip([c for f in choice.followers for c in f.components], out, strict=True))


def by_id(updates: dict[Any, Any], elem_id: str) -> Any:
    return next(u for c, u in updates.items() if c.elem_id == elem_id)


def test_an_inpaint_example_keeps_its_class_through_the_model_switch(digits_page: gr.Blocks) -> None:
    """The "3" example showed "three", then the switch after the click set the class back to "zero"."""
    choice = model_choice(digits_page)
    assert choice.dropdown.value == SHIPPED_NAME
    dataset = next(b for b in digits_page.blocks.values() if getattr(b, "elem_id", None) == "inpaint-examples")
    row = next(i for i, r in enumerate(dataset.raw_samples) if r[1] == "three")
    values = example_values(digits_page, "inpaint-examples", row)
    assert "three" in values.values()
    assert by_id(switch_after(digits_page, values), "inpaint-class")["value"] == "three"


# -- API calls that leave a field out get the session model's default ---------------------------------
@pytest.fixture(scope="module")
def app_page() -> gr.Blocks:
    """The app as ``python app.py`` builds it: the shipped digits model first, the scenes model offered."""
    from demo.ui import model_store

    return build_demo(model_store(device="cpu"))


def test_an_api_call_that_leaves_fields_out_runs_the_session_models_defaults(app_page: gr.Blocks) -> None:
    """/resize on the scenes model with no decoding ran windowed (the digits model's widget value, which the
    API offered as the default) where the page runs the scenes model's own, whole; and said "in windows"."""
    from gradio_client.utils import construct_args

    from arpg.store import SmallModel
    from arpg.zoo import MODELS

    params = app_page.get_api_info()["named_endpoints"]["/resize"]["parameters"]
    defaults = {p["parameter_name"]: p["parameter_default"] for p in params}
    for name in ("class_name", "scale", "strategy", "regenerate", "decoding", "steps", "cfg_scale", "order"):
        assert defaults[name] is None, name  # the session model's, not the first model's widget value
    assert all(p["parameter_has_default"] for p in params if p["parameter_name"] != "image")
    scenes = model_choice(app_page).store.name_of("scenes")
    example = SmallModel.at(MODELS["scenes"].folder).card.examples_for("resize")[0]
    image = np.asarray(Image.open(example.image).convert("RGB"))
    # what gradio_client sends for a call naming only these (the image itself is handed over after preprocessing)
    args = construct_args(params, ("image.png",), {"model": scenes, "seed": 1, "randomize": False, "steps": 2})
    fn = next(f for f in app_page.fns.values() if f.api_name == "resize").fn
    (plain, result), seed, info = list(fn(image, *args[1:]))[-1]
    pipe = model_choice(app_page).pipe(scenes)
    settings = tasks.resize_settings(pipe)  # the one source of the resize defaults
    assert pipe.decodings["resize"] == "whole" and "decoded whole" in info and "in windows" not in info
    assert f"{settings.strategy} ×{settings.scale:g}" in info and result.shape == plain.shape == (128, 128, 3)
    assert "**mountains**" in info  # class left out: the scenes model's first class


def test_every_trade_offs_panel_follows_a_switch_to_the_scenes_model(app_page: gr.Blocks) -> None:
    """Trade-offs kept the digits model's saved results and orders chart while the scenes model was chosen."""
    choice = model_choice(app_page)
    updates = switch_after(app_page, {choice.dropdown: choice.store.name_of("scenes")})
    assert by_id(updates, "tradeoffs-plot") is None
    assert "No saved results for shipped scenes model" in by_id(updates, "tradeoffs-info")
    assert by_id(updates, "tradeoffs-saved")["choices"] == []
    scenes_orders = by_id(updates, "tradeoffs-orders-table")["value"]  # its own: docs/benchmarks/orders-scenes.json
    assert scenes_orders[0][:2] == ["random", 32] and scenes_orders[0][4] == 0.985
    assert by_id(updates, "measure-orders-table") == {"__type__": "update", "value": []}
    table = next(c for c in updates if c.elem_id == "tradeoffs-orders-table")
    assert updates[table.parent.parent] == {"__type__": "update", "visible": True}  # the saved orders section
    assert "landscape" in by_id(updates, "inpaint-intro") and "glyph" not in by_id(updates, "inpaint-intro")
    back = switch_after(app_page, {choice.dropdown: SHIPPED_NAME})
    assert "shipped.json" in by_id(back, "tradeoffs-info") and by_id(back, "tradeoffs-orders-table")["value"]
    assert "digit" in by_id(back, "inpaint-intro")


def test_no_event_shows_its_progress_on_the_image_editor(app_page: gr.Blocks) -> None:
    """A component that was any event's progress target is refreshed by the browser on every later status
    change; the image editor then uploads its layers and holds the refresh while it loads a new image."""
    editor = next(b for b in app_page.blocks.values() if isinstance(b, gr.ImageEditor))
    fills = [f for f in app_page.fns.values() if editor in f.outputs]
    assert len(fills) >= 2  # "Use last generated image" and the examples at least
    for fn in fills:
        targets = fn.get_config()["show_progress_on"]
        assert targets is not None and editor._id not in targets, fn.name
