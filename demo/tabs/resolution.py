"""Resolution tab: a bigger image from a small one, on a bigger token grid."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from arpg import tasks
from arpg.cost import check_request
from arpg.images import prepare_image
from arpg.options import ResizeDefaults, SamplingOptions
from arpg.pipeline import Pipeline

from ..parts.decoding import decoding_note, decoding_radio
from ..parts.errors import plain_errors, refuse
from ..parts.examples import digit_box, example_box
from ..parts.gpu import action, request_seconds
from ..parts.model_choice import ModelChoice
from ..parts.pictures import before_after, bicubic, far_note, image_input, result_view, use_last
from ..parts.runner import Run, plural
from ..parts.widgets import (
    class_update,
    knob,
    model_default,
    sampling_controls,
    sampling_options,
    seed_controls,
    task_image_inputs,
)

STRATEGIES = {
    "lattice": "lattice: the original tokens spread over the bigger grid, the gaps generated",
    "reencode": "reencode: the image upsampled and re-encoded, a fraction of its tokens generated again",
}


def intro(pipe: Pipeline) -> str:
    """How the tab works and what ``pipe``'s model does by default (its resolution change and decoding)."""
    d = tasks.resize_settings(pipe)
    again = f", {percent(d.regenerate)} of the cells decoded again" if d.strategy == "reencode" else ""
    decoding = tasks.decoding_for("resize", None, pipe.decodings)
    how = "in windows of a trained size" if decoding == "windowed" else "whole, in one decode"
    return (
        "The model has no fixed positions: the same weights decode a bigger grid, with the tokens of the small "
        f"image as context. This model's defaults: **{d.strategy} ×{d.scale:g}**{again}, the setting that lost "
        "least to plain bicubic against the true render on the shipped models (`scripts/bench_resize.py`); the "
        "slider shows bicubic on the left, the model on the right. A grid bigger than the ones it was trained on "
        f"is decoded {how} (Canvas decoding)."
    )


def percent(fraction: float) -> str:
    """``0.125`` as ``"12.5%"``, ``0.5`` as ``"50%"``."""
    return f"{100 * fraction:g}%"


def used(settings: ResizeDefaults) -> str:
    """The resolution change a request ran, in words: ``reencode ×2, 12% of the cells decoded again``."""
    again = f", {percent(settings.regenerate)} of the cells decoded again" if settings.strategy == "reencode" else ""
    return f"{settings.strategy} ×{settings.scale:g}{again}"


def run_resize(
    pipe: Pipeline,
    image: Any,
    class_name: str | None,
    scale: float | None,
    strategy: str | None,
    regenerate: float | None,
    seed: int | None,
    randomize: bool,
    decoding: str | None,
    options: SamplingOptions,
    progress: Any = None,
) -> Iterator[tuple]:
    """/resize on ``pipe``: ((bicubic, result) for the slider, seed, summary) while :func:`arpg.tasks.resize`
    decodes; scale, strategy, regenerate and decoding left out (None) are the model's (the task resolves the
    decoding, and the summary says the one its result records)."""
    img = image_input(image)
    if strategy is not None and strategy not in STRATEGIES:
        raise refuse(f"Unknown strategy {strategy!r}: use lattice or reencode.")
    with plain_errors():  # left out (None): the model's
        settings = tasks.resize_settings(pipe, scale, strategy, regenerate)
    asked = dict(scale=settings.scale, strategy=settings.strategy, regenerate=settings.regenerate)
    check_request(pipe, "resize", options, img, decoding=decoding, **asked)
    run = Run.start(pipe, class_name, seed, randomize, progress)
    run.record("resize", options, decoding=decoding, **asked)
    small, f = prepare_image(img, pipe.factor, pipe.grid[0]), pipe.factor  # the image the task works on
    in_h, in_w = small.shape[:2]
    R, C = round(in_h // f * settings.scale), round(in_w // f * settings.scale)
    plain = bicubic(small, R * f, C * f)  # what the result is compared with

    def work(callback: Callable) -> tasks.TaskResult:
        return tasks.resize(
            pipe, img, run.label, options=options, seed=run.seed, decoding=decoding, callback=callback, **asked
        )

    def finish(res: tasks.TaskResult, took: float) -> tuple:
        h, w = res.image.shape[:2]
        decoded = f"{plural(int((~res.known).sum()), 'token')} generated in {plural(len(res.trace.counts), 'step')}"
        info = run.summary(
            f"{in_w}×{in_h} px → {w}×{h} px ({res.tokens.shape[1]}×{res.tokens.shape[0]} tokens)",
            used(settings),
            decoded,
            decoding_note(pipe, tuple(res.tokens.shape), res.used),
            res.note,
            far_note(pipe, img),
            "left of the bar: plain bicubic",
        )
        return before_after(plain, res.image), res.seed, info

    yield from run.stream(work, "Decoding the bigger grid", lambda images: before_after(plain, images[0]), finish)


def resize_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of the resolution button, ``/resize``, on the session's model (:func:`run_resize`)."""

    def resize(
        image: Any,
        class_name: str | None,
        scale: float | None,
        strategy: str | None,
        regenerate: float | None,
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
        decoding: str | None,
        model: str | None,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        pipe = choice.pipe(model)
        options = sampling_options(pipe, steps, schedule, cfg_scale, cfg_schedule, temperature, top_k, top_p, order)
        yield from run_resize(
            pipe, image, class_name, scale, strategy, regenerate, seed, randomize, decoding, options, progress
        )

    return resize


def resize_seconds(
    image: Any,
    class_name: Any,
    scale: Any,
    strategy: Any,
    regenerate: Any,
    seed: Any,
    randomize: Any,
    steps: Any,
    *rest: Any,
) -> int:
    """ZeroGPU seconds of a ``/resize`` request (the callback's arguments, in order): ``steps`` on a grid
    ``scale`` times the model's on each side."""
    return request_seconds(steps, scale=scale)


def _resize_inputs(pipe: Pipeline) -> tuple[gr.Slider, gr.Radio, gr.Slider]:
    """Scale, strategy and regenerate fraction, set to ``pipe``'s resolution change."""
    d = tasks.resize_settings(pipe)
    scale = knob(
        1.0,
        4.0,
        value=d.scale,
        step=0.25,
        label="Scale",
        info="the model's image size (see the model line) times this; cost grows with its square; "
        "above 1 the grid is bigger than the ones the model was trained on",
    )
    strategy = gr.Radio(list(STRATEGIES), value=d.strategy, label="Strategy", info=" · ".join(STRATEGIES.values()))
    regenerate = knob(
        0.05,
        1.0,
        value=d.regenerate,
        step=0.025,
        label="Regenerate fraction",
        info="reencode only: share of the tokens decoded again",
    )
    return model_default(scale), model_default(strategy), model_default(regenerate)


def _settings(pipe: Pipeline) -> list[Any]:
    """The values of scale, strategy and regenerate fraction after a switch to ``pipe``: its own."""
    d = tasks.resize_settings(pipe)
    return [d.scale, d.strategy, d.regenerate]


def build(choice: ModelChoice, last: gr.State) -> None:
    """The Resolution tab."""
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            image, use, cls = task_image_inputs(choice.first, "resolution", "the image's class")
            scale, strategy, regenerate = _resize_inputs(choice.first)
            seed, randomize = seed_controls()
            controls = sampling_controls(choice.first)
            with gr.Accordion("Canvas decoding", open=False):
                decoding = decoding_radio(choice, "resize")
            run = gr.Button("Change resolution", variant="primary", elem_id="resolution-btn")
        with gr.Column(scale=1, min_width=320):
            choice.text(intro, elem_id="resolution-intro")
            result, info = result_view("resolution", "", "Bicubic · model (drag the bar)", 520)
            if not example_box(choice, [image, cls], "resize", (), "resolution"):
                digit_box(choice, [image, cls], "Examples", "resolution-examples")
    choice.follow(
        [cls, scale, strategy, regenerate, *controls.inputs],
        lambda p, c: [class_update(p, c), *_settings(p), *controls.updates(p)],
        inputs=[cls],
    )
    use.click(use_last, [last], [image, cls], api_visibility="private")
    run.click(
        action(resize_callback(choice), resize_seconds),
        [image, cls, scale, strategy, regenerate, seed, randomize, *controls.inputs, decoding, choice.dropdown],
        [result, seed, info],
        api_name="resize",
        show_progress_on=info,
        api_description="Resolution change: the image on a `scale` times bigger token grid.",
    )
