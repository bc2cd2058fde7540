"""The session's model in the web app (demo/parts/model_choice.py): the Model dropdown, callbacks that
take the model last, and what a switch updates; built in-process (no server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture()
def choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A ModelChoice over a random tiny model (first), the shipped model and a fake ARPG-L with
    1000 classes in a hub cache, with the Generate, Inpaint and Visualize tabs following it."""
    import gradio as gr

    from arpg.pipeline import Pipeline
    from arpg.store import ModelStore
    from demo.parts.model_choice import ModelChoice
    from demo.tabs import generate, inpaint, visualize
    from tests.test_hub import fake_hub_cache

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_hub_cache(tmp_path / "hub", num_classes=1000)
    store = ModelStore(
        Pipeline.random("ARPG-tiny", "VQ-tiny"),
        device="cpu",
        cache_dir=cache,
        shipped=lambda: Pipeline.shipped(device="cpu"),
    )
    with gr.Blocks():
        c = ModelChoice.build(store)
        generate.build(c, gr.State(None))
        inpaint.build(c, gr.State(None))
        visualize.build(c)
    return c


def switched(choice: Any, name: str) -> tuple[str, list[tuple[Any, Any]], list[tuple]]:
    """Switch to ``name``: (model line, [(component, new value)], progress calls)."""
    calls: list[tuple] = []
    line, *values = choice.switch(name, progress=lambda *a, **kw: calls.append((a, kw)))
    components = [c for f in choice.followers for c in f.components]
    assert len(values) == len(components)
    return line, list(zip(components, values)), calls


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_switching_the_model_updates_classes_defaults_ranges_and_examples(choice: Any) -> None:
    import gradio as gr

    from arpg.store import SHIPPED_NAME

    assert choice.dropdown.choices == [(n, n) for n in ["random ARPG-tiny", SHIPPED_NAME, "ARPG-L"]]
    assert choice.dropdown.value == "random ARPG-tiny" and choice.dropdown.elem_id == "model-choice"
    line, updates, calls = switched(choice, "ARPG-L")
    assert "**Model:** ARPG-L" in line and "1000 classes" in line and "16×16 px images from 4×4 tokens" in line
    assert calls and "Loading ARPG-L" in calls[0][1]["desc"]  # a visible message while it loads
    pickers = [v for c, v in updates if isinstance(c, gr.Dropdown) and c.label == "Class"]
    assert len(pickers) == 3 and all(v["choices"][207] == "golden retriever" and v["value"] == "tench" for v in pickers)
    boxes = [v for c, v in updates if isinstance(c, gr.Column)]
    assert boxes == [{"__type__": "update", "visible": False}]  # the digit examples do not fit ImageNet classes
    steps = [v for c, v in updates if isinstance(c, gr.Slider) and c.label == "Steps"]
    assert [v["maximum"] for v in steps] == [16, 16, 16]
    guidance = [v for c, v in updates if isinstance(c, gr.Slider) and c.label == "Guidance scale"]
    assert guidance == [4.0, 4.0, 4.0]  # the fake ARPG-L's defaults (it matches no preset: SamplingOptions')
    _, _, calls = switched(choice, "ARPG-L")
    assert not calls  # already in memory: no loading message
    line, updates, _ = switched(choice, "random ARPG-tiny")
    assert "random ARPG-tiny" in line
    assert [v for c, v in updates if isinstance(c, gr.Column)] == [{"__type__": "update", "visible": True}]
    line, updates, _ = switched(choice, SHIPPED_NAME)
    assert "256 tokens" not in line and "16×16 tokens" in line
    assert [v["maximum"] for c, v in updates if isinstance(c, gr.Slider) and c.label == "Steps"] == [256] * 3
    # its own sampling defaults (assets/models/arpg.json): guidance 3, constant
    assert [v for c, v in updates if isinstance(c, gr.Slider) and c.label == "Guidance scale"] == [3.0] * 3
    assert [v for c, v in updates if isinstance(c, gr.Dropdown) and c.label == "Guidance schedule"] == ["constant"] * 2
    with pytest.raises(gr.Error, match="Unknown model 'ARPG-XL'; choose one of random ARPG-tiny"):
        choice.switch("ARPG-XL")


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_callbacks_take_the_model_last_and_use_its_pipeline_and_defaults(
    choice: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspect

    import gradio as gr

    from demo.parts.widgets import SAMPLING_FIELDS
    from demo.tabs import generate

    def run_generate(pipe: Any, class_name: Any, n: int, seed: Any, randomize: bool, options: Any, progress: Any):
        yield pipe.name, class_name, options, progress

    monkeypatch.setattr(generate, "run_generate", run_generate)
    callback = generate.generate_callback(choice)
    own = ["class_name", "n_images", "seed", "randomize"]
    assert list(inspect.signature(callback).parameters) == [*own, *SAMPLING_FIELDS, "model", "progress"]
    values = [3, "arccos", None, "linear", 1.0, 0, 1.0, "random"]  # cfg_scale None: the model's default
    ((name, cls, options, progress),) = callback("golden retriever", 1, 0, False, *values, "ARPG-L", "bar")
    assert (name, cls, options.steps, options.cfg_scale, progress) == ("ARPG-L", "golden retriever", 3, 4.0, "bar")
    ((name, _, options, progress),) = callback("class 2", 1, 0, False, *[None] * 8, None)  # no model: the first
    assert (name, options.steps) == ("random ARPG-tiny", 16) and isinstance(progress, gr.Progress)
    with pytest.raises(gr.Error, match="Unknown model 'no such model'"):
        list(callback("class 2", 1, 0, False, *values, "no such model"))
