"""Generate tab: class-conditional images, streamed step by step while they decode; returned at
their native pixels (the gallery shows them enlarged and crisp)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import numpy as np

from arpg import serve
from arpg.cost import check_request
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline

from ..parts.gpu import action, request_seconds
from ..parts.model_choice import ModelChoice
from ..parts.pictures import native, page_style
from ..parts.runner import Run, plural
from ..parts.widgets import (
    MAX_IMAGES,
    class_dropdown,
    class_update,
    knob,
    sampling_controls,
    sampling_options,
    seed_controls,
)

INTRO = (
    "Pick a class and press **Generate**: the images appear token by token, several tokens per step, in a random order."
)


def gallery(images: list[np.ndarray]) -> list[np.ndarray]:
    """The images at their native pixels (the gallery enlarges them)."""
    return [native(im) for im in images]


def run_generate(
    pipe: Pipeline,
    class_name: str | None,
    n_images: int,
    seed: int | None,
    randomize: bool,
    options: SamplingOptions,
    progress: Any = None,
) -> Iterator[tuple]:
    """/generate on ``pipe``: (gallery, seed, summary, last image) while :func:`arpg.serve.generate` decodes."""
    run = Run.start(pipe, class_name, seed, randomize, progress)
    labels = [run.label] * int(n_images)
    check_request(pipe, "generate", options, batch=len(labels))
    run.record("generate", options, n_images=len(labels))

    def finish(out: Any, took: float) -> tuple:
        info = run.summary(
            plural(len(out.trace.counts), "step"),
            f"{out.trace.forward_passes} forward passes",
            f"{took:.2f} s ({len(out.images) / took:.2f} images/s)",
        )
        return gallery(out.images), out.seed, info, {"image": out.images[0], "label": run.class_name}

    def work(callback: Callable) -> Any:
        return serve.generate(pipe, labels, options, seed=run.seed, callback=callback)  # batched when on

    yield from run.stream(work, "Decoding", gallery, finish, keep=1)


def generate_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of the Generate button, ``/generate``, on the session's model (:func:`run_generate`)."""

    def generate(
        class_name: str | None,
        n_images: int,
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
        yield from run_generate(pipe, class_name, n_images, seed, randomize, options, progress)

    return generate


def generate_seconds(class_name: Any, n_images: Any, seed: Any, randomize: Any, steps: Any, *rest: Any) -> int:
    """ZeroGPU seconds of a ``/generate`` request (the callback's arguments, in order): ``n_images`` images in
    ``steps`` steps."""
    return request_seconds(steps, images=n_images)


def build(choice: ModelChoice, last: gr.State) -> None:
    """The Generate tab; ``last`` receives the first generated image for the other tabs."""
    pipe = choice.first
    page_style()
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            cls = class_dropdown(pipe, info="what to draw", elem_id="generate-class")
            n_images = knob(
                1,
                MAX_IMAGES,
                value=4,
                step=1,
                precision=0,
                label="Number of images",
                info="decoded together in one batch",
            )
            seed, randomize = seed_controls()
            controls = sampling_controls(pipe)
            run = gr.Button("Generate", variant="primary", elem_id="generate-btn")
        with gr.Column(scale=3, min_width=320):
            images = gr.Gallery(
                label="Images",
                columns=4,
                height=420,
                object_fit="contain",
                elem_id="generate-gallery",
                elem_classes=["pixelated"],
                format="png",
                buttons=["download", "fullscreen"],
            )
            info = gr.Markdown(INTRO, label="summary", elem_id="generate-info")
    choice.follow([cls, *controls.inputs], lambda p: [class_update(p), *controls.updates(p)])
    run.click(
        action(generate_callback(choice), generate_seconds),
        [cls, n_images, seed, randomize, *controls.inputs, choice.dropdown],
        [images, seed, info, last],
        api_name="generate",
        concurrency_limit=serve.concurrent_requests() or "default",  # batched requests wait together
        show_progress_on=info,
        api_description="Class-conditional images of the chosen `model`; returns the images, the seed used "
        "and a one-line summary.",
    )
