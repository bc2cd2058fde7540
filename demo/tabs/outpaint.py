"""Outpaint tab: extend an image by whole token cells on any side, or into a panorama."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import numpy as np

from arpg import tasks
from arpg.cost import check_request
from arpg.images import prepare_image
from arpg.options import SamplingOptions
from arpg.windows import DECODINGS

from .errors import action, refuse
from .examples import digit_box, example_box
from .models import ModelChoice
from .pictures import before_after, far_note, image_input, on_canvas, result_view, use_last
from .runner import Run, plural, stream_steps
from .widgets import class_update, knob, model_default, sampling_controls, seed_controls, task_image_inputs

SIDES = ("left", "right", "top", "bottom")
INTRO = "The original tokens stay as they are and become context on a bigger grid; only the new cells are decoded."
DECODING_INFO = (
    "windowed: in windows of a grid size the model was trained on, each seeing every known token "
    "inside it; whole: the bigger grid in one decode (positions the model may never have seen)"
)


def checked_directions(directions: list[str] | None) -> list[str]:
    """The chosen sides (at least one, each of :data:`SIDES`)."""
    directions = [d for d in (directions or []) if d]
    bad = [d for d in directions if d not in SIDES]
    if bad:
        raise refuse(f"Unknown direction {bad[0]!r}: use left, right, top or bottom.")
    if not directions:
        raise refuse("Pick at least one direction to extend.")
    return directions


def decoding_radio(choice: ModelChoice, task: str) -> gr.Radio:
    """The "Decoding" choice of a canvas task (:data:`arpg.windows.DECODINGS`), on the session model's
    decoding for ``task`` (what measured best on it, :attr:`arpg.pipeline.Pipeline.decodings`), set again
    when the model changes."""

    def value(pipe: Any) -> str:
        return tasks.decoding_for(task, None, pipe.decodings)

    radio = model_default(gr.Radio(list(DECODINGS), value=value(choice.first), label="Decoding", info=DECODING_INFO))
    choice.follow([radio], lambda pipe: [gr.update(value=value(pipe))])
    return radio


def decoding_before_model(callback: Callable[..., Iterator[tuple]]) -> Callable[..., Iterator[tuple]]:
    """A :meth:`ModelChoice.callback` of a handler whose last own input is ``decoding``, taking that input
    after the sampling controls instead, just before ``model`` (still the last), so API calls that give
    the earlier inputs by position keep working."""
    sig = inspect.signature(callback)
    params = list(sig.parameters.values())
    names = [p.name for p in params]
    src, dst = names.index("decoding"), names.index("model") - 1
    params.insert(dst, params.pop(src))

    def reordered(*args: Any, **kwargs: Any) -> Iterator[tuple]:
        values = list(args)
        if len(values) > dst:
            values.insert(src, values.pop(dst))
        yield from callback(*values, **kwargs)

    reordered.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    reordered.__name__, reordered.__qualname__, reordered.__doc__ = (
        callback.__name__,
        callback.__qualname__,
        callback.__doc__,
    )
    return reordered


def decoding_note(pipe: Any, grid: tuple[int, int], used: tasks.Used) -> str | None:
    """How a canvas of ``grid`` (rows, cols) tokens was decoded, as its result's record ``used`` says
    (:attr:`arpg.tasks.TaskResult.used`: in windows or whole), beside the grids ``pipe``'s model was trained
    on (its config's ``trained_sizes``); None when nothing was decoded."""
    if not used.steps:
        return None
    sizes = pipe.model.cfg.trained_sizes
    trained = " or ".join(f"{c}×{r}" for r, c in sizes)
    bigger = f"the {grid[1]}×{grid[0]}-token grid is bigger than the {trained} the model was trained on"
    if used.windows is not None and used.windows > 1:
        return f"decoded in windows: {bigger} ({plural(used.windows, 'window')} of {used.window[1]}×{used.window[0]})"
    if any(grid[0] <= r and grid[1] <= c for r, c in sizes):
        return "decoded whole: a grid size the model was trained on"
    return f"decoded whole: {bigger} (positions beyond them never seen)"


def rounds_note(used: tasks.Used) -> str | None:
    """How a panorama's rounds were decoded, as its result's record ``used`` says; None when there were none."""
    if not used.steps:
        return None
    if used.windows is None:
        return "each round decoded whole from the image so far, re-encoded"
    return f"decoded in {plural(used.windows, 'window')} of {used.window[1]}×{used.window[0]} tokens"


def outpaint_handler(pipe: Any) -> Callable[..., Iterator[tuple]]:
    """The callback of the Outpaint button: ((input on the new canvas, result) for the before/after slider,
    seed, summary) while decoding."""

    def outpaint(
        image: Any,
        class_name: str,
        directions: list[str],
        amount: int | None,
        seed: int | None,
        randomize: bool,
        decoding: str | None,
        options: SamplingOptions,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        img = image_input(image)
        directions = checked_directions(directions)
        amount = _amount_range(pipe)["value"] if amount is None else amount  # left out: the model's
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

    return outpaint


def panorama_handler(pipe: Any) -> Callable[..., Iterator[tuple]]:
    """The callback of the panorama button: ((input on the canvas so far, image so far), seed, summary) after
    every round, then the result."""

    def panorama(
        image: Any,
        class_name: str,
        side: str,
        times: int,
        seed: int | None,
        randomize: bool,
        decoding: str | None,
        options: SamplingOptions,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
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

        shown = 0
        for ev in stream_steps(work):
            done = len(rounds)
            if ev.result is not None:
                h, w = ev.result.image.shape[:2]
                info = run.summary(
                    f"{int(times)}× towards the {side} in {plural(done, 'round')}: {w}×{h} px",
                    rounds_note(ev.result.used),
                    ev.result.note,
                    far_note(pipe, img),
                )
                yield _grown(whole, ev.result.image, side), ev.result.seed, info
                return
            if progress is not None:
                progress((ev.step + 1, ev.n_steps), desc=f"Panorama, round {done + 1}")
            if done > shown:  # a round finished: show the image so far
                shown = done
                so_far = _grown(whole, rounds[done - 1].image, side)
                yield so_far, run.seed, f"round {done} done, round {done + 1} decoding …"

    return panorama


def _cells(pipe: Any, img: Any, side: str) -> int:
    """The token cells of ``img`` (as the tasks prepare it for ``pipe``) along the axis ``side`` grows."""
    h, w = prepare_image(img, pipe.factor, pipe.grid[0]).shape[:2]
    return (h if side in ("top", "bottom") else w) // pipe.factor


def _extended_input(pipe: Any, img: Any, ext: dict[str, int]) -> np.ndarray:
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


def _amount_range(pipe: Any, current: Any = None) -> dict[str, Any]:
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
        action(decoding_before_model(choice.callback(outpaint_handler))),
        [image, cls, directions, amount, seed, randomize, *controls.inputs, decoding, choice.dropdown],
        [result, seed, info],
        api_name="outpaint",
        show_progress_on=info,
        api_description="Extend an image by `amount` token cells in each chosen direction.",
    )
    run_pano.click(
        action(decoding_before_model(choice.callback(panorama_handler))),
        [image, cls, side, times, seed, randomize, *controls.inputs, decoding, choice.dropdown],
        [result, seed, info],
        api_name="panorama",
        api_description="Repeated outpainting until the image is `times` as long.",
    )
