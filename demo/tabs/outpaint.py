"""Outpaint tab: extend an image by whole token cells on any side, or into a panorama."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import numpy as np

from arpg import tasks
from arpg.cost import check_request
from arpg.images import prepare_image
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline

from ..parts.decoding import decoding_note, decoding_radio
from ..parts.errors import refuse
from ..parts.examples import digit_box, example_box
from ..parts.gpu import action, request_seconds
from ..parts.model_choice import ModelChoice
from ..parts.pictures import before_after, far_note, image_input, on_canvas, result_view, use_last
from ..parts.runner import Run, plural, stream_steps
from ..parts.widgets import (
    class_update,
    knob,
    model_default,
    sampling_controls,
    sampling_options,
    seed_controls,
    task_image_inputs,
)

SIDES = ("left", "right", "top", "bottom")
INTRO = "The original tokens stay as they are and become context on a bigger grid; only the new cells are decoded."


def checked_directions(directions: list[str] | None) -> list[str]:
    """The chosen sides (at least one, each of :data:`SIDES`)."""
    directions = [d for d in (directions or []) if d]
    bad = [d for d in directions if d not in SIDES]
    if bad:
        raise refuse(f"Unknown direction {bad[0]!r}: use left, right, top or bottom.")
    if not directions:
        raise refuse("Pick at least one direction to extend.")
    return directions


def rounds_note(used: tasks.Used) -> str | None:
    """How a panorama's rounds were decoded, as its result's record ``used`` says; None when there were none."""
    if not used.steps:
        return None
    if used.windows is None:
        return "each round decoded whole from the image so far, re-encoded"
    return f"decoded in {plural(used.windows, 'window')} of {used.window[1]}×{used.window[0]} tokens"


def run_outpaint(
    pipe: Pipeline,
    image: Any,
    class_name: str | None,
    directions: list[str],
    amount: int | None,
    seed: int | None,
    randomize: bool,
    decoding: str | None,
    options: SamplingOptions,
    progress: Any = None,
) -> Iterator[tuple]:
    """/outpaint on ``pipe``: ((input on the new canvas, result) for the before/after slider, seed, summary)
    while :func:`arpg.tasks.outpaint` decodes; ``amount`` left out (None): the model's."""
    img = image_input(image)
    directions = checked_directions(directions)
    amount = _amount_range(pipe)["value"] if amount is None else amount
    ext = {d: int(amount) for d in directions}
    check_request(pipe, "outpaint", options, img, decoding=decoding, **ext)
    run = Run.start(pipe, class_name, seed, randomize, progress)
    run.record("outpaint", options, directions=directions, amount=int(amount), decoding=decoding)
    before = _extended_input(pipe, img, ext)

    def work(callback: Callable) -> tasks.TaskResult:
        return tasks.outpaint(
            pipe, img, run.label, options=options, seed=run.seed, decoding=decoding, callback=callback, **ext
        )

    def finish(res: tasks.TaskResult, took: float) -> tuple:
        h, w = res.image.shape[:2]
        decoded = f"{plural(int((~res.known).sum()), 'new token')} in {plural(len(res.trace.counts), 'step')}"
        info = run.summary(
            f"{'+'.join(directions)} by {int(amount)} cells: {w}×{h} px",
            decoded,
            decoding_note(pipe, tuple(res.tokens.shape), res.used),
            res.note,
            far_note(pipe, img),
        )
        return before_after(before, res.image), res.seed, info

    yield from run.stream(work, "Outpainting", lambda images: before_after(before, images[0]), finish)


def outpaint_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of the Outpaint button, ``/outpaint``, on the session's model (:func:`run_outpaint`)."""

    def outpaint(
        image: Any,
        class_name: str | None,
        directions: list[str],
        amount: int | None,
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
        yield from run_outpaint(
            pipe, image, class_name, directions, amount, seed, randomize, decoding, options, progress
        )

    return outpaint


def outpaint_seconds(
    image: Any, class_name: Any, directions: Any, amount: Any, seed: Any, randomize: Any, steps: Any, *rest: Any
) -> int:
    """ZeroGPU seconds of an ``/outpaint`` request (the callback's arguments, in order): one decode of ``steps``."""
    return request_seconds(steps)


def run_panorama(
    pipe: Pipeline,
    image: Any,
    class_name: str | None,
    side: str,
    times: int,
    seed: int | None,
    randomize: bool,
    decoding: str | None,
    options: SamplingOptions,
    progress: Any = None,
) -> Iterator[tuple]:
    """/panorama on ``pipe``: ((input on the canvas so far, image so far), seed, summary) after every round of
    :func:`arpg.tasks.panorama`, then the result."""
    img = image_input(image)
    check_request(pipe, "panorama", options, img, times=int(times), side=side, decoding=decoding)
    run = Run.start(pipe, class_name, seed, randomize, progress)
    run.record("panorama", options, side=side, times=int(times), decoding=decoding)
    rounds: list[tasks.TaskResult] = []  # filled by the decoding thread, one per finished round
    whole = _extended_input(pipe, img, {side: _cells(pipe, img, side) * (int(times) - 1)})

    def work(callback: Callable) -> tasks.TaskResult:
        return tasks.panorama(
            pipe,
            img,
            run.label,
            options=options,
            times=int(times),
            side=side,
            seed=run.seed,
            decoding=decoding,
            callback=callback,
            on_round=rounds.append,
        )

    def finish(res: tasks.TaskResult) -> tuple:
        h, w = res.image.shape[:2]
        info = run.summary(
            f"{int(times)}× towards the {side} in {plural(len(rounds), 'round')}: {w}×{h} px",
            rounds_note(res.used),
            res.note,
            far_note(pipe, img),
        )
        return _grown(whole, res.image, side), res.seed, info

    yield from _rounds(run, work, rounds, lambda image: _grown(whole, image, side), finish)


def _rounds(
    run: Run,
    work: Callable[[Callable], tasks.TaskResult],
    rounds: list[tasks.TaskResult],
    show: Callable[[np.ndarray], tuple],
    finish: Callable[[tasks.TaskResult], tuple],
) -> Iterator[tuple]:
    """A panorama's outputs while ``work`` decodes: (``show(image so far)``, seed, "round i done ...") whenever a
    round is added to ``rounds``, the progress bar at every step, then ``finish(result)``."""
    shown = 0
    for ev in stream_steps(work):
        done = len(rounds)
        if ev.result is not None:
            yield finish(ev.result)
            return
        if run.progress is not None:
            run.progress((ev.step + 1, ev.n_steps), desc=f"Panorama, round {done + 1}")
        if done > shown:  # a round finished: show the image so far
            shown = done
            yield show(rounds[done - 1].image), run.seed, f"round {done} done, round {done + 1} decoding …"


def panorama_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of the panorama button, ``/panorama``, on the session's model (:func:`run_panorama`)."""

    def panorama(
        image: Any,
        class_name: str | None,
        side: str,
        times: int,
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
        yield from run_panorama(pipe, image, class_name, side, times, seed, randomize, decoding, options, progress)

    return panorama


def panorama_seconds(
    image: Any, class_name: Any, side: Any, times: Any, seed: Any, randomize: Any, steps: Any, *rest: Any
) -> int:
    """ZeroGPU seconds of a ``/panorama`` request (the callback's arguments, in order): ``steps`` over a canvas
    that grows to ``times`` the image (about two windows per time)."""
    return request_seconds(steps, times=times)


def _cells(pipe: Pipeline, img: Any, side: str) -> int:
    """The token cells of ``img`` (as the tasks prepare it for ``pipe``) along the axis ``side`` grows."""
    h, w = prepare_image(img, pipe.factor, pipe.grid[0]).shape[:2]
    return (h if side in ("top", "bottom") else w) // pipe.factor


def _extended_input(pipe: Pipeline, img: Any, ext: dict[str, int]) -> np.ndarray:
    """The slider's "before" of an outpainting by ``ext`` ({side: cells}): the input as the task prepares it,
    in its place on the bigger canvas, the new cells checkered."""
    small, f = prepare_image(img, pipe.factor, pipe.grid[0]), pipe.factor
    top, left = ext.get("top", 0) * f, ext.get("left", 0) * f
    height = small.shape[0] + top + ext.get("bottom", 0) * f
    width = small.shape[1] + left + ext.get("right", 0) * f
    return on_canvas(small, height, width, top, left, f)


def _grown(whole: np.ndarray, image: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """A panorama so far beside its "before": the part of the finished canvas ``whole`` it covers."""
    h, w = image.shape[:2]
    part = whole[:h, :w] if side in ("right", "bottom") else whole[whole.shape[0] - h :, whole.shape[1] - w :]
    return before_after(part, image)


def _amount_range(pipe: Pipeline, current: Any = None) -> dict[str, Any]:
    """The "Amount" slider's range, value and help for ``pipe``'s grid (``current`` kept when it fits)."""
    rows, cols = pipe.grid
    top = max(rows, cols)
    fits = isinstance(current, (int, float)) and not isinstance(current, bool) and 1 <= current <= top
    return dict(
        maximum=top,
        value=int(current) if fits else max(1, cols // 2),
        info=f"one cell is {pipe.factor} px; the image is {cols}×{rows} cells",
    )


def _extend_inputs(
    choice: ModelChoice, image: gr.Image, cls: gr.Dropdown
) -> tuple[gr.CheckboxGroup, gr.Slider, gr.Button]:
    with gr.Tab("Extend"):
        directions = gr.CheckboxGroup(list(SIDES), value=["right"], label="Directions")
        r = _amount_range(choice.first)
        amount = model_default(
            knob(1, r["maximum"], value=r["value"], step=1, precision=0, label="Amount (token cells)", info=r["info"])
        )
        run = gr.Button("Outpaint", variant="primary", elem_id="outpaint-btn")
        example_box(choice, [image, cls, directions, amount], "outpaint", ("directions", "amount"), "outpaint")
    return directions, amount, run


def _panorama_inputs(choice: ModelChoice, image: gr.Image, cls: gr.Dropdown) -> tuple[gr.Radio, gr.Slider, gr.Button]:
    with gr.Tab("Panorama"):
        side = gr.Radio(list(SIDES), value="right", label="Grow towards")
        times = knob(
            2,
            8,
            value=4,
            step=1,
            precision=0,
            label="Times as long",
            info="repeated outpainting, half an image per round",
        )
        run = gr.Button("Make panorama", variant="primary", elem_id="panorama-btn")
        example_box(choice, [image, cls, side, times], "panorama", ("side", "times"), "panorama")
    return side, times, run


def build(choice: ModelChoice, last: gr.State) -> None:
    """The Outpaint tab."""
    pipe = choice.first
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            image, use, cls = task_image_inputs(pipe, "outpaint", "what the extended image shows")
            seed, randomize = seed_controls()
            directions, amount, run = _extend_inputs(choice, image, cls)
            side, times, run_pano = _panorama_inputs(choice, image, cls)
            controls = sampling_controls(pipe)
            with gr.Accordion("Canvas decoding", open=False):
                decoding = decoding_radio(choice, "outpaint")
        with gr.Column(scale=1, min_width=320):
            result, info = result_view("outpaint", INTRO)
            if not choice.has_examples("outpaint"):  # else a model's own, in the Extend and Panorama tabs
                digit_box(choice, [image, cls], "Examples", "outpaint-examples")
    choice.follow(
        [cls, amount, *controls.inputs],
        lambda p, c, a: [class_update(p, c), gr.update(**_amount_range(p, a)), *controls.updates(p)],
        inputs=[cls, amount],
    )
    use.click(use_last, [last], [image, cls], api_visibility="private")
    run.click(
        action(outpaint_callback(choice), outpaint_seconds),
        [image, cls, directions, amount, seed, randomize, *controls.inputs, decoding, choice.dropdown],
        [result, seed, info],
        api_name="outpaint",
        show_progress_on=info,
        api_description="Extend an image by `amount` token cells in each chosen direction.",
    )
    run_pano.click(
        action(panorama_callback(choice), panorama_seconds),
        [image, cls, side, times, seed, randomize, *controls.inputs, decoding, choice.dropdown],
        [result, seed, info],
        api_name="panorama",
        api_description="Repeated outpainting until the image is `times` as long.",
    )
