"""Input widgets shared by the tabs: checked sliders, the seed, the class picker and the
sampling controls, whose values become one :class:`~arpg.options.SamplingOptions` (:func:`sampling_options`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from arpg.options import SAMPLER_ORDERS, SCHEDULES, SamplingOptions
from arpg.pipeline import Pipeline
from arpg.schedules import CFG_SCHEDULES
from arpg.validation import check_number

from .errors import plain_errors

MAX_IMAGES = 8
#: Above this many parameters a model counts as large: 16 default steps on a CPU instead of its own default.
LARGE_MODEL_PARAMS = 50_000_000
#: The API names of the sampling controls, in the order of their inputs (:attr:`SamplingControls.inputs`): every
#: callback that takes them lists them in this order, after its own inputs, and passes them to
#: :func:`sampling_options`.
SAMPLING_FIELDS = ("steps", "schedule", "cfg_scale", "cfg_schedule", "temperature", "top_k", "top_p", "order")
#: The attribute that marks an input whose default is the session model's (:func:`model_default`).
MODEL_DEFAULT = "arpg_model_default"


def model_default(component: Any) -> Any:
    """Mark ``component`` as an input whose default is the session model's: an API or MCP call that leaves
    it out sends None (not the first model's value the widget starts with: :func:`demo.parts.model_choice.api_defaults`)
    and the callback takes the model's own; a knob then passes None through its check."""
    setattr(component, MODEL_DEFAULT, True)
    return component


def is_model_default(component: Any) -> bool:
    """Whether :func:`model_default` marked ``component``."""
    return bool(getattr(component, MODEL_DEFAULT, False))


def knob(minimum: float, maximum: float, value: float | None = None, **kwargs: Any) -> gr.Slider:
    """A slider that refuses out-of-range, NaN and non-numeric values (sent through the API)
    with a message naming the setting, instead of a bare error."""
    slider = gr.Slider(minimum, maximum, value=value, **kwargs)

    def preprocess(payload: Any) -> float | int | None:
        if payload is None and is_model_default(slider):
            return None  # left out: the model's default
        with plain_errors():
            return check_number(
                slider.label or "value", payload, slider.minimum, slider.maximum, integer=slider.precision == 0
            )

    slider.preprocess = preprocess  # type: ignore[method-assign]  # (a subclass would write a .pyi)
    return slider


def seed_controls(value: int = 0) -> tuple[gr.Number, gr.Checkbox]:
    """Seed field and "randomize" checkbox (the seed actually used is written back).

    The field has no bounds or rounding of its own (gradio would reject NaN with a bare error
    and re-creates output components without instance overrides): :func:`demo.parts.runner.pick_seed` checks it.
    """
    with gr.Row(equal_height=True, elem_classes=["seed-row"]):  # one above the other on a phone (demo.ui.CSS)
        seed = gr.Number(
            value=value,
            label="Seed",
            scale=2,
            min_width=160,
            info="the seed used is written back, so a result can be reproduced",
        )
        randomize = gr.Checkbox(value=True, label="Randomize seed", scale=1, min_width=150)
    return seed, randomize


def class_dropdown(pipe: Pipeline, info: str | None = None, elem_id: str | None = None) -> gr.Dropdown:
    """A searchable class picker with the readable class names of ``pipe``.

    It accepts any text: the session's model decides what a class is (an API caller may
    name another model's class), and ``pipe.label_of`` refuses unknown names in words. So its
    API and MCP type is any string, not this model's names (an MCP client checks the type).
    """
    dropdown = gr.Dropdown(
        choices=list(pipe.class_names),
        value=pipe.class_names[0],
        label="Class",
        info=info,
        filterable=True,
        allow_custom_value=True,
        elem_id=elem_id,
    )
    dropdown.api_info = lambda: {"type": "string"}  # type: ignore[method-assign]
    return model_default(dropdown)  # left out: the model's first class


def task_image_inputs(pipe: Pipeline, tab: str, class_info: str) -> tuple[gr.Image, gr.Button, gr.Dropdown]:
    """A task tab's input image (``<tab>-input``), its "Use last generated image" button
    (``<tab>-use-last``) and its class picker (``<tab>-class``)."""
    image = gr.Image(
        label="Image",
        type="numpy",
        image_mode="RGB",
        sources=("upload", "clipboard"),
        height=300,
        elem_id=f"{tab}-input",
        elem_classes=["pixelated"],
    )
    use = gr.Button("Use last generated image", size="sm", elem_id=f"{tab}-use-last")
    return image, use, class_dropdown(pipe, info=class_info, elem_id=f"{tab}-class")


def class_update(pipe: Pipeline, current: Any = None) -> dict[str, Any]:
    """A class picker's update for a switch to ``pipe``: its class names, ``current`` kept when it is
    one of them (an example chose it with the model), else the first one chosen."""
    names = list(pipe.class_names)
    return gr.update(choices=names, value=current if current in names else names[0])


def default_steps(pipe: Pipeline, cells: int | None = None) -> int:
    """The model's default steps (``pipe.defaults``), 16 for a large model on a CPU; never more
    than the number of cells."""
    cells = cells or pipe.grid[0] * pipe.grid[1]
    steps = pipe.defaults.steps
    if pipe.num_params > LARGE_MODEL_PARAMS and pipe.device.type == "cpu":
        steps = min(steps, 16)
    return min(cells, steps)


def steps_info(cells: int) -> str:
    """The help text of a steps slider for a grid of ``cells`` cells."""
    return f"forward passes, each decoding several tokens at once (an image has {cells})"


@dataclass
class SamplingControls:
    """The decoding settings of one tab (steps visible, the rest in a closed accordion)."""

    steps: gr.Slider
    schedule: gr.Dropdown
    cfg_scale: gr.Slider
    cfg_schedule: gr.Dropdown
    temperature: gr.Slider
    top_k: gr.Slider
    top_p: gr.Slider
    order: gr.Dropdown

    @property
    def inputs(self) -> list[gr.components.Component]:
        """The controls in the order of :data:`SAMPLING_FIELDS`: a callback takes their values in this order and
        makes them one :class:`SamplingOptions` with :func:`sampling_options`."""
        return [
            self.steps,
            self.schedule,
            self.cfg_scale,
            self.cfg_schedule,
            self.temperature,
            self.top_k,
            self.top_p,
            self.order,
        ]

    def updates(self, pipe: Pipeline) -> list[Any]:
        """The controls' values after a switch to ``pipe`` (in the order of :attr:`inputs`): its
        defaults, and the steps slider's range for its grid.

        Only the steps slider gets a component update (which gradio answers with a fresh
        slider for the session); the others get plain values and keep their own input checks.
        """
        d: SamplingOptions = pipe.defaults
        cells = pipe.grid[0] * pipe.grid[1]
        steps = gr.update(maximum=cells, value=default_steps(pipe, cells), info=steps_info(cells))
        return [steps, d.schedule, d.cfg_scale, d.cfg_schedule, d.temperature, d.top_k, d.top_p, _order_name(d)]


def sampling_options(
    pipe: Pipeline,
    steps: Any,
    schedule: Any,
    cfg_scale: Any,
    cfg_schedule: Any,
    temperature: Any,
    top_k: Any,
    top_p: Any,
    order: Any,
) -> SamplingOptions:
    """The sampling controls' values (:attr:`SamplingControls.inputs`, an API call's arguments) as options on
    ``pipe``: a value left out (None) is the model's default, the steps the page's default for it
    (:func:`default_steps`); a bad value is a plain gr.Error."""
    steps = default_steps(pipe) if steps is None else steps
    with plain_errors():
        return pipe.defaults.replace(
            steps=steps,
            schedule=schedule,
            cfg_scale=cfg_scale,
            cfg_schedule=cfg_schedule,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            order=order,
        )


def _order_name(d: SamplingOptions) -> str:
    return d.order if isinstance(d.order, str) else "random"


def _dropdown(choices: Sequence[str], value: str, **kwargs: Any) -> gr.Dropdown:
    """A dropdown whose choices include its value (a model default may be outside the usual list)."""
    return gr.Dropdown(list(dict.fromkeys([*choices, value])), value=value, **kwargs)


def sampling_controls(pipe: Pipeline) -> SamplingControls:
    """Build the steps slider and the "Advanced" accordion, starting from ``pipe.defaults``."""
    d: SamplingOptions = pipe.defaults
    cells = pipe.grid[0] * pipe.grid[1]
    steps = knob(1, cells, value=default_steps(pipe, cells), step=1, precision=0, label="Steps", info=steps_info(cells))
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            schedule = _dropdown(SCHEDULES, d.schedule, label="Step schedule", info="how many tokens each step decodes")
            order = _dropdown(SAMPLER_ORDERS, _order_name(d), label="Order", info="random is what ARPG is trained for")
        with gr.Row():
            cfg = knob(
                1.0,
                10.0,
                value=d.cfg_scale,
                step=0.25,
                label="Guidance scale",
                info="classifier-free guidance; 1 = none",
            )
            cfg_schedule = _dropdown(
                CFG_SCHEDULES,
                d.cfg_schedule,
                label="Guidance schedule",
                info="linear: guidance grows over the steps; constant: full from the start",
            )
        with gr.Row():
            temperature = knob(0.05, 3.0, value=d.temperature, step=0.05, label="Temperature")
            top_k = knob(0, 4096, value=d.top_k, step=1, precision=0, label="Top-k", info="0 = off")
            top_p = knob(0.05, 1.0, value=d.top_p, step=0.01, label="Top-p", info="1 = off")
    controls = SamplingControls(steps, schedule, cfg, cfg_schedule, temperature, top_k, top_p, order)
    for control in controls.inputs:
        model_default(control)
    return controls
