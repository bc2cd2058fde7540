"""Every tab follows the session's model: an example click keeps the class it chose through the model
switch that follows it (the Inpaint tab), built in-process with the shipped digits model (no server)."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pytest

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
