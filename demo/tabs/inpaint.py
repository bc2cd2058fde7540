"""Inpaint tab: brush a region of an image and regenerate it (same class: inpainting;
another class: class-conditional editing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import numpy as np

from arpg import masks, tasks
from arpg.cost import check_request
from arpg.data.sets import dataset
from arpg.images import prepare_image
from arpg.judge import image_class
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline

from ..parts.errors import refuse
from ..parts.examples import digit_box
from ..parts.gpu import action, request_seconds
from ..parts.model_choice import ModelChoice
from ..parts.pictures import before_after, editor_parts, far_note, in_editor, result_view, use_last
from ..parts.runner import Run, plural
from ..parts.widgets import class_dropdown, class_update, knob, sampling_controls, sampling_options, seed_controls


def intro(pipe: Pipeline) -> str:
    """How the tab works, in the words of what ``pipe``'s model draws (a digit, a landscape, an object)."""
    text = (
        "Upload an image (or take the last generated one), paint over the part to regenerate, choose the class "
        "and press **Inpaint**. Only the painted token cells are decoded; the others are given to the model as "
        "context. "
    )
    if getattr(pipe, "judge", None) is None:  # nothing reads the image's class: no edit is detected
        return text + "Another class than the image's regenerates the painted part as that class."
    data = getattr(pipe, "data", None)
    what = dataset(data).SUBJECT if data else "object"  # a released model draws objects
    return text + (
        f"To change the class, a stroke across the {what} is enough: with another class than the one the "
        f"image shows (read by the model's judge), the shape under the stroke is regenerated."
    )


#: What an edit regenerates, per :data:`arpg.masks.EDIT_REGIONS`, as the summary says it.
GROWN = {
    "box": "the box around the shape under the stroke",
    "shape": "the shape under the stroke",
    "dilate": "the stroke widened",
    "painted": "the stroke as painted",
}


def regenerated(res: tasks.TaskResult, region: str, shown: str | None) -> str:
    """What an inpainting or edit regenerated, in words: the region (for an edit: grown from the
    stroke over ``shown``, the class the image showed) and the count of tokens and steps."""
    n_new, steps = int((~res.known).sum()), plural(len(res.trace.counts), "step")
    counted = f"{n_new} of {res.known.numel()} tokens"
    if region == "painted":
        return f"{counted} regenerated in {steps}"
    return f"edit of the {shown}: {GROWN[region]} regenerated, {counted} in {steps}"


def run_inpaint(
    pipe: Pipeline,
    editor: dict | None,
    class_name: str | None,
    dilate: int,
    blend: bool,
    seed: int | None,
    randomize: bool,
    options: SamplingOptions,
    progress: Any = None,
) -> Iterator[tuple]:
    """/inpaint on ``pipe``: ((image, result) for the before/after slider, seed, summary) while
    :func:`arpg.tasks.inpaint` decodes (an edit, its region grown, when the class is not the image's)."""
    image, mask = editor_parts(editor)
    if not mask.any():
        raise refuse("The mask is empty: paint over the part of the image to regenerate.")
    run = Run.start(pipe, class_name, seed, randomize, progress)
    run.record("inpaint", options, dilate=int(dilate), blend=bool(blend))
    check_request(pipe, "inpaint", options, image)
    shown = image_class(pipe, image)
    region = masks.EDIT_REGION if masks.is_edit(shown, run.label) else "painted"

    def work(callback: Callable) -> tasks.TaskResult:
        return tasks.inpaint(
            pipe,
            image,
            mask,
            run.label,
            options=options,
            dilate=int(dilate),
            blend=bool(blend),
            region=region,
            seed=run.seed,
            callback=callback,
        )

    before = prepare_image(image, pipe.factor, pipe.grid[0])  # the image as the task sees it

    def finish(res: tasks.TaskResult, took: float) -> tuple:
        name = None if shown is None else pipe.class_names[shown]
        return (
            before_after(before, res.image),
            res.seed,
            run.summary(regenerated(res, region, name), res.note, far_note(pipe, image)),
        )

    yield from run.stream(work, "Inpainting", lambda images: before_after(before, images[0]), finish)


def inpaint_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of the Inpaint button, ``/inpaint``, on the session's model (:func:`run_inpaint`)."""

    def inpaint(
        editor: dict | None,
        class_name: str | None,
        dilate: int,
        blend: bool,
        seed: int | None,
        randomize: bool,
        steps: int | None,
        schedule: str | None,
        cfg_scale: float | None,
        cfg_schedule: str | None,
        temperature: float | None,
        top_k: int | None,
        top_p: float | None,
        order: str | None,
        model: str | None,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        pipe = choice.pipe(model)
        options = sampling_options(pipe, steps, schedule, cfg_scale, cfg_schedule, temperature, top_k, top_p, order)
        yield from run_inpaint(pipe, editor, class_name, dilate, blend, seed, randomize, options, progress)

    return inpaint


def inpaint_seconds(
    editor: Any, class_name: Any, dilate: Any, blend: Any, seed: Any, randomize: Any, steps: Any, *rest: Any
) -> int:
    """ZeroGPU seconds of an ``/inpaint`` request (the callback's arguments, in order): one decode of ``steps``."""
    return request_seconds(steps)


def use_last_here(last: dict | None) -> tuple[Any, Any]:
    """:func:`demo.parts.pictures.use_last` for the image editor: the image with no stroke on it yet."""
    image, label = use_last(last)
    return (in_editor(image) if isinstance(image, np.ndarray) else image), label


def _editor() -> gr.ImageEditor:
    return gr.ImageEditor(
        label="Image: paint the region to regenerate",
        type="numpy",
        image_mode="RGBA",
        sources=("upload", "clipboard"),
        transforms=(),
        layers=False,
        format="png",
        brush=gr.Brush(default_size=28, colors=["#ff2e88"], color_mode="fixed"),
        eraser=gr.Eraser(default_size=28),
        height=440,
        elem_id="inpaint-editor",
    )


def build(choice: ModelChoice, last: gr.State) -> gr.ImageEditor:
    """The Inpaint tab; returns its image editor (no event may show its progress on it:
    :func:`demo.parts.pictures.no_progress_on`)."""
    pipe = choice.first
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            editor = _editor()
            use = gr.Button("Use last generated image", size="sm", elem_id="inpaint-use-last")
            cls = class_dropdown(
                pipe, info="the image's class to fill it in; another class edits it", elem_id="inpaint-class"
            )
            with gr.Row():
                dilate = knob(
                    0,
                    3,
                    value=0,
                    step=1,
                    precision=0,
                    label="Grow mask (cells)",
                    info="regenerate this many extra token cells around the brush",
                )
                blend = gr.Checkbox(value=True, label="Blend edges", info="soft seam between old and new pixels")
            seed, randomize = seed_controls()
            controls = sampling_controls(pipe)
            run = gr.Button("Inpaint", variant="primary", elem_id="inpaint-btn")
        with gr.Column(scale=1, min_width=320):
            choice.text(intro, elem_id="inpaint-intro")
            result, info = result_view("inpaint", "")
            digit_box(choice, [editor, cls], "Examples: pick one, then paint on it", "inpaint-examples")
    # the class an example chose is kept through the switch that follows its click (when the model has it)
    choice.follow([cls, *controls.inputs], lambda p, c: [class_update(p, c), *controls.updates(p)], inputs=[cls])
    use.click(use_last_here, [last], [editor, cls], api_visibility="private", show_progress_on=[cls])
    run.click(
        action(inpaint_callback(choice), inpaint_seconds),
        [editor, cls, dilate, blend, seed, randomize, *controls.inputs, choice.dropdown],
        [result, seed, info],
        api_name="inpaint",
        show_progress_on=info,
        api_description="Regenerate the painted part of an image (the editor's background is the "
        "image, its layers the mask) with the chosen `model`.",
    )
    return editor
