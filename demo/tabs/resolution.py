"""Resolution tab: a bigger image from a small one, on a bigger token grid."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from arpg import tasks
from arpg.cost import check_request
from arpg.images import prepare_image
from arpg.options import SamplingOptions

from .errors import action, refuse
from .examples import RESIZE, digit_box, scene_box
from .models import ModelChoice
from .outpaint import decoding_before_model, decoding_radio
from .pictures import far_note, first_native, image_input, native, result_view, use_last
from .runner import Run, plural
from .widgets import class_update, knob, sampling_controls, seed_controls, task_image_inputs

STRATEGIES = {
    "lattice": "lattice: the original tokens spread over the bigger grid, the gaps generated",
    "reencode": "reencode: the image upsampled and re-encoded, a fraction of its tokens generated again",
}
INTRO = (
    "The model has no fixed positions: the same weights decode a bigger grid, with the tokens of the small "
    "image as context. The defaults (reencode, ×1.25) measured best on the shipped model. A grid bigger than the "
    "ones the model was trained on is decoded in windows of a trained size (Canvas decoding: windowed): on the "
    "shipped model, ×2 reads as the right digit far more often than with one decode of the whole grid."
)
#: The defaults that measure best on the shipped model (scripts/bench_tasks.py, docs/benchmarks/tasks.json).
DEFAULT_STRATEGY, DEFAULT_SCALE = "reencode", 1.25


def beyond_training(pipe: Any, grid: tuple[int, int], decoding: str = "whole") -> str | None:
    """A note when a ``grid`` (rows, cols) of tokens is bigger than every grid ``pipe``'s model was
    trained on (its config's ``trained_sizes``: 16x16 for the shipped and released models): with
    ``decoding`` "whole" its positions beyond them were never seen; "windowed" decoded it in windows."""
    sizes = pipe.model.cfg.trained_sizes
    if any(grid[0] <= r and grid[1] <= c for r, c in sizes):
        return None
    trained = " or ".join(f"{c}×{r}" for r, c in sizes)
    how = (
        "decoded in windows of that size"
        if decoding == "windowed"
        else "positions beyond it were never seen in training"
    )
    return f"the {grid[1]}×{grid[0]}-token grid is bigger than the {trained} the model was trained on: {how}"


def resize_handler(pipe: Any) -> Callable[..., Iterator[tuple]]:
    """The callback of the resolution button: (image, seed, summary) while decoding."""

    def resize(
        image: Any,
        class_name: str,
        scale: float,
        strategy: str,
        regenerate: float,
        seed: int | None,
        randomize: bool,
        decoding: str | None,
        options: SamplingOptions,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        img = image_input(image)
        if strategy not in STRATEGIES:
            raise refuse(f"Unknown strategy {strategy!r}: use lattice or reencode.")
        check_request(pipe, "resize", options, img, scale=float(scale), decoding=decoding)
        run = Run.start(pipe, class_name, seed, randomize, progress)
        run.record("resize", options, scale=float(scale), strategy=strategy, regenerate=regenerate, decoding=decoding)
        in_h, in_w = prepare_image(img, pipe.factor, pipe.grid[0]).shape[:2]  # the size the task works on

        def work(callback: Callable) -> tasks.TaskResult:
            return tasks.resize(
                pipe,
                img,
                run.label,
                options=options,
                scale=float(scale),
                strategy=strategy,
                regenerate=float(regenerate),
                seed=run.seed,
                decoding=decoding,
                callback=callback,
            )

        def finish(res: tasks.TaskResult, took: float) -> tuple:
            R, C = res.tokens.shape
            h, w = res.image.shape[:2]
            decoded = f"{plural(int((~res.known).sum()), 'token')} generated in {plural(len(res.trace.counts), 'step')}"
            info = run.summary(
                f"{in_w}×{in_h} px → {w}×{h} px ({C}×{R} tokens)",
                decoded,
                res.note,
                beyond_training(pipe, (R, C), tasks.decoding_for("resize", decoding)),
                far_note(pipe, img),
            )
            return native(res.image), res.seed, info

        yield from run.stream(work, "Decoding the bigger grid", first_native, finish)

    return resize


def _resize_inputs() -> tuple[gr.Slider, gr.Radio, gr.Slider]:
    scale = knob(
        1.0,
        4.0,
        value=DEFAULT_SCALE,
        step=0.25,
        label="Scale",
        info="the model's image size (see the model line) times this; cost grows with its square; "
        "above 1 the grid is bigger than the ones the model was trained on",
    )
    strategy = gr.Radio(
        list(STRATEGIES), value=DEFAULT_STRATEGY, label="Strategy", info=" · ".join(STRATEGIES.values())
    )
    regenerate = knob(
        0.05,
        1.0,
        value=0.5,
        step=0.05,
        label="Regenerate fraction",
        info="reencode only: share of the tokens decoded again",
    )
    return scale, strategy, regenerate


def build(choice: ModelChoice, last: gr.State) -> None:
    """The Resolution tab."""
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            image, use, cls = task_image_inputs(choice.first, "resolution", "the image's class")
            scale, strategy, regenerate = _resize_inputs()
            seed, randomize = seed_controls()
            controls = sampling_controls(choice.first)
            with gr.Accordion("Canvas decoding", open=False):
                decoding = decoding_radio(choice, "resize")
            run = gr.Button("Change resolution", variant="primary", elem_id="resolution-btn")
        with gr.Column(scale=1, min_width=320):
            result, info = result_view("resolution", INTRO, "Bigger image", 520)
            examples = [image, cls, scale, strategy]
            if not scene_box(choice, examples, RESIZE, "Examples: scenes", "resolution-scene-examples"):
                digit_box(choice, [image, cls], "Examples", "resolution-examples")
    choice.follow([cls, *controls.inputs], lambda p, c: [class_update(p, c), *controls.updates(p)], inputs=[cls])
    use.click(use_last, [last], [image, cls], api_visibility="private")
    run.click(
        action(decoding_before_model(choice.callback(resize_handler))),
        [image, cls, scale, strategy, regenerate, seed, randomize, *controls.inputs, decoding, choice.dropdown],
        [result, seed, info],
        api_name="resize",
        show_progress_on=info,
        api_description="Resolution change: the image on a `scale` times bigger token grid.",
    )
