"""Visualize's *Race the models* (``/race_models``): models of the dropdown decoding on one clock, each at its
own settings (arpg.viz.compare.compare_models)."""

from __future__ import annotations

import gradio as gr
import pytest

from arpg.pipeline import Pipeline
from arpg.store import ModelStore, SmallModel
from arpg.zoo import MODELS
from demo.ui import build_demo

pytestmark = pytest.mark.slow  # builds the whole page and decodes with both shipped models

DIGITS, SCENES = "shipped digits model", "shipped scenes model"


@pytest.fixture(scope="module")
def race():
    store = ModelStore(Pipeline.shipped(device="cpu"), device="cpu", small=[SmallModel.at(MODELS["scenes"].folder)])
    demo = build_demo(store)
    return next(f for f in demo.fns.values() if f.api_name == "race_models").fn


def test_two_models_race_on_one_clock(race) -> None:
    gif, download, heat, seed, summary = list(race("three", [DIGITS, SCENES], 5, False, 8))[-1]
    assert seed == 5 and gif.endswith(".gif") and heat is not None
    assert f"decode times: {DIGITS}" in summary and f"forward passes: {DIGITS} / {SCENES} = 32 / 32" in summary


@pytest.mark.parametrize("models", [[DIGITS], [DIGITS, DIGITS], []])
def test_a_race_needs_two_to_four_different_models(race, models) -> None:
    with pytest.raises(gr.Error, match="Pick 2 to 4 different models"):
        list(race("three", models, 5, False, 8))
