"""Visualize tab: animations of the decoding order, three strategies racing on one clock
(*Compare*), and a heatmap of the step of every cell."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from arpg.cost import check_request
from arpg.options import SAMPLER_ORDERS
from arpg.orders import order_policy
from arpg.pipeline import Pipeline
from arpg.viz.animate import RACE_HOLD_S, save_animation, strategy_frames, trace_frames
from arpg.viz.compare import RACE_MODELS, Comparison, compare_decodes, compare_models
from arpg.viz.frames import step_heatmap

from ..parts.cancel import run_cancellable
from ..parts.downloads import out_path
from ..parts.errors import refuse
from ..parts.gpu import action, request_seconds
from ..parts.model_choice import ModelChoice
from ..parts.runner import Run, plural
from ..parts.widgets import class_dropdown, class_update, knob, seed_controls

log = logging.getLogger("demo")

N_OUTPUTS = 5  # animation, download, heatmap, seed, summary
LEGEND = (
    "Each animation shows the image decoded so far (checkered cells are still unknown) and the token grid, "
    "each step's new cells lit up, earlier ones coloured by step. *Compare* plays the three decodes on one "
    "clock of their measured time: the fastest panel completes first."
)


@dataclass
class Animation:
    """How to draw one animation: the run it belongs to and the frames per second."""

    run: Run
    fps: float

    def outputs(self, frames: list, stem: str, step_of: Any, title: str, *parts: str) -> tuple:
        """(GIF, GIF for download, heatmap of ``step_of``, seed, summary) of the tab's events."""
        if self.run.progress is not None:
            self.run.progress(1.0, desc="Drawing the animation")
        gif = save_animation(frames, out_path(stem, ".gif"), fps=float(self.fps))
        heat = step_heatmap(step_of.numpy(), title=title)
        return str(gif), str(gif), heat, self.run.seed, self.run.summary(*parts)

    def race_outputs(self, cmp: Comparison, stem: str) -> tuple:
        """(GIF, MP4 for download (the GIF when MP4 cannot be written), ARPG's heatmap, seed, summary)."""
        if self.run.progress is not None:
            self.run.progress(1.0, desc="Drawing the animation")
        gif = save_animation(cmp.frames, out_path(stem, ".gif"), fps=cmp.timeline.fps, hold_last=RACE_HOLD_S)
        mp4 = _mp4(cmp, stem)
        arpg = next((d for d in cmp.decodes if d.method == "arpg"), cmp.decodes[0])  # a race of models: the first
        heat = step_heatmap(arpg.step_of, title=f"decoding step of each cell ({arpg.name})")
        kb = gif.stat().st_size / 1000
        files = f"GIF {kb:.0f} kB" + (", MP4 to download" if mp4 else "")
        return (
            str(gif),
            str(mp4 or gif),
            heat,
            self.run.seed,
            self.run.summary(cmp.timings(), f"forward passes: {cmp.passes()}", cmp.pace(), files),
        )


def _mp4(cmp: Comparison, stem: str) -> Path | None:
    """The comparison as an MP4, or None when this machine cannot write one (no ffmpeg)."""
    try:
        return save_animation(cmp.frames, out_path(stem, ".mp4"), fps=cmp.timeline.fps, hold_last=RACE_HOLD_S)
    except RuntimeError as exc:
        log.warning("no MP4 of the comparison: %s", exc)
        return None


def _options(pipe: Pipeline, steps: int, order: str | None, cfg_scale: float, temperature: float) -> Any:
    """``pipe``'s default decode options with the tab's knobs."""
    return pipe.defaults.replace(steps=int(steps), order=order, cfg_scale=cfg_scale, temperature=temperature)


def run_animate(
    pipe: Pipeline,
    class_name: str | None,
    order: str,
    steps: int,
    seed: int | None,
    randomize: bool,
    fps: float,
    cfg_scale: float,
    temperature: float,
    progress: Any = None,
) -> tuple:
    """/animate on ``pipe``: one decode in the chosen order (:meth:`arpg.pipeline.Pipeline.generate`, its
    snapshots drawn)."""
    run = Run.start(pipe, class_name, seed, randomize, progress)
    opts = _options(pipe, steps, order, cfg_scale, temperature)
    check_request(pipe, "generate", opts)
    run.record("animate", opts, fps=fps)
    t0 = time.perf_counter()
    out = pipe.generate([run.label], opts, seed=run.seed, snapshots=True, callback=run.on_step("Decoding"))
    took = time.perf_counter() - t0
    counts = out.trace.counts
    return Animation(run, fps).outputs(
        trace_frames(pipe, out, label_text=run.class_name),
        f"decode-{order}-{int(steps)}steps",
        out.trace.step_of,
        f"decoding step of each cell ({order})",
        f"{order} order",
        f"{plural(len(counts), 'step')} of {min(counts)}–{max(counts)} tokens",
        f"decoded in {took:.2f} s",
    )


def run_side_by_side(
    pipe: Pipeline,
    class_name: str | None,
    order: str,
    second: str,
    steps: int,
    seed: int | None,
    randomize: bool,
    fps: float,
    cfg_scale: float,
    temperature: float,
    progress: Any = None,
) -> tuple:
    """/side_by_side on ``pipe``: two decoding orders with the same class, seed and steps
    (:func:`arpg.viz.animate.strategy_frames`)."""
    run = Run.start(pipe, class_name, seed, randomize, progress)
    opts = _options(pipe, steps, order, cfg_scale, temperature)
    dearer = max((order, second), key=lambda o: order_policy(o).queries_remaining)  # more queries per step
    check_request(pipe, "generate", opts.replace(order=dearer), batch=2)
    run.record("side_by_side", opts, second=second, fps=fps)
    t0 = time.perf_counter()
    strategies = [(f"{o}, {int(steps)} steps", {"order": o}) for o in (order, second)]
    frames, outs = strategy_frames(
        pipe,
        run.label,
        strategies,
        opts,
        seed=run.seed,
        callback=run.count_steps(2 * int(steps), "Decoding two ways"),
    )
    queries = " / ".join(str(o.trace.queries) for o in outs)
    return Animation(run, fps).outputs(
        frames,
        f"pair-{order}-{second}-{int(steps)}steps",
        outs[1].trace.step_of,
        f"decoding step of each cell ({second})",
        f"{order} vs {second}",
        f"queries: {queries}",
        f"{time.perf_counter() - t0:.1f} s in all",
    )


def run_compare(
    pipe: Pipeline,
    class_name: str | None,
    steps: int,
    seed: int | None,
    randomize: bool,
    fps: float,
    cfg_scale: float,
    temperature: float,
    progress: Any = None,
) -> tuple:
    """/compare on ``pipe``: raster and random one token at a time, and ARPG, on one clock
    (:func:`arpg.viz.compare.compare_decodes`)."""
    cells = pipe.grid[0] * pipe.grid[1]
    run = Run.start(pipe, class_name, seed, randomize, progress)
    opts = _options(pipe, steps, None, cfg_scale, temperature)
    check_request(pipe, "generate", opts.replace(steps=cells), batch=3)  # two 1-token/step decodes dominate
    run.record("compare", opts, fps=fps)
    cmp = compare_decodes(
        pipe,
        run.label,
        opts,
        seed=run.seed,
        callback=run.count_steps(2 * cells + int(steps), "Decoding three ways"),
        fps=float(fps),
    )
    return Animation(run, fps).race_outputs(cmp, f"compare-{int(steps)}steps")


def run_race(
    choice: ModelChoice,
    class_name: str | None,
    models: list[str] | None,
    seed: int | None,
    randomize: bool,
    fps: float,
    progress: Any = None,
) -> tuple:
    """/race_models: 2-4 models of the dropdown decode the same class number and seed, each at its own
    settings, on one clock (:func:`arpg.viz.compare.compare_models`)."""
    names = list(dict.fromkeys(models or []))
    low, high = RACE_MODELS
    if not low <= len(names) <= high:
        raise refuse(f"Pick {low} to {high} different models to race.")
    pipes = [choice.pipe(name) for name in names]
    run = Run.start(pipes[0], class_name, seed, randomize, progress)
    for pipe in pipes:
        check_request(pipe, "generate", pipe.defaults)  # each decodes once, at its own settings
    cmp = compare_models(pipes, run.label, seed=run.seed, fps=float(fps))
    return Animation(run, fps).race_outputs(cmp, "race-models")


@dataclass
class Inputs:
    """The left column of the tab."""

    cls: gr.Dropdown
    order: gr.Dropdown
    second: gr.Dropdown
    steps: gr.Slider
    seed: gr.Number
    randomize: gr.Checkbox
    fps: gr.Slider
    cfg: gr.Slider
    temperature: gr.Slider


def _steps_range(pipe: Pipeline) -> dict[str, Any]:
    """The steps slider's value and help for ``pipe``'s grid (its maximum is the number of cells)."""
    cells = pipe.grid[0] * pipe.grid[1]
    return dict(value=min(cells, 16), info=f"parallel steps for the {cells} cells")


def _compare_text(pipe: Pipeline) -> str:
    """What *Compare* does, with ``pipe``'s number of cells."""
    cells = pipe.grid[0] * pipe.grid[1]
    return (
        f"*Compare* decodes the same class and seed three times: in raster order one token at a time "
        f"({cells} steps, like LlamaGen), in a random order one at a time ({cells} steps) and with ARPG, "
        "several random tokens per step, and plays them on one clock of their measured decode times "
        "(slowed so that ARPG lasts a second): ARPG completes first while the others keep decoding."
    )


def _inputs(pipe: Pipeline) -> Inputs:
    cells = pipe.grid[0] * pipe.grid[1]
    orders = list(SAMPLER_ORDERS)
    cls = class_dropdown(pipe, elem_id="visualize-class")
    order = gr.Dropdown(
        orders, value="random", label="Order (single animation)", info="the order in which the cells are decoded"
    )
    steps = knob(1, cells, step=1, precision=0, label="Steps", **_steps_range(pipe))
    seed, randomize = seed_controls()
    fps = knob(1, 30, value=6, step=1, label="Frames per second")
    with gr.Accordion("Advanced", open=False):
        cfg = knob(1.0, 10.0, value=pipe.defaults.cfg_scale, step=0.25, label="Guidance scale")
        temperature = knob(0.05, 3.0, value=pipe.defaults.temperature, step=0.05, label="Temperature")
    second = gr.Dropdown(
        orders,
        value="raster",
        label="Second order (side by side)",
        info="shown next to the first order, same class, seed and steps",
    )
    return Inputs(cls, order, second, steps, seed, randomize, fps, cfg, temperature)


def _outputs() -> list[gr.components.Component]:
    """The right column: animation, summary and heatmap (download comes first, from the left column)."""
    anim = gr.Image(
        label="Decoding animation",
        show_label=False,
        type="filepath",
        interactive=False,
        height=440,
        elem_id="visualize-animation",
        elem_classes=["pixelated"],
    )
    gr.Markdown(LEGEND)
    info = gr.Markdown(label="summary", elem_id="visualize-info")
    heat = gr.Image(
        label="Step of each cell",
        show_label=False,
        type="pil",
        format="png",
        interactive=False,
        height=400,
        elem_id="visualize-heatmap",
    )
    return [anim, info, heat]


def _follow(choice: ModelChoice, i: Inputs, compare_text: gr.Markdown) -> None:
    """After a switch: the model's classes, steps range and guidance defaults."""

    def update(p: Any) -> list[Any]:
        cells = p.grid[0] * p.grid[1]
        return [
            class_update(p),
            gr.update(maximum=cells, **_steps_range(p)),
            p.defaults.cfg_scale,
            p.defaults.temperature,
            _compare_text(p),
        ]

    choice.follow([i.cls, i.steps, i.cfg, i.temperature, compare_text], update)


def animate_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of *Animate*, ``/animate``, on the session's model: :func:`run_animate` in a thread that
    stops at its next decode step when its caller leaves (:func:`~demo.parts.cancel.run_cancellable`)."""

    def animate(
        class_name: str | None,
        order: str,
        steps: int,
        seed: int | None,
        randomize: bool,
        fps: float,
        cfg_scale: float,
        temperature: float,
        model: str | None,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        args = (choice.pipe(model), class_name, order, steps, seed, randomize, fps, cfg_scale, temperature, progress)
        yield from run_cancellable(run_animate, args, {}, N_OUTPUTS)

    return animate


def animate_seconds(class_name: Any, order: Any, steps: Any, *rest: Any) -> int:
    """ZeroGPU seconds of an ``/animate`` request (the callback's arguments, in order): one decode of ``steps``."""
    return request_seconds(steps)


def side_by_side_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of *Side by side*, ``/side_by_side``, on the session's model: :func:`run_side_by_side`,
    cancellable as :func:`animate_callback` is."""

    def side_by_side(
        class_name: str | None,
        order: str,
        second: str,
        steps: int,
        seed: int | None,
        randomize: bool,
        fps: float,
        cfg_scale: float,
        temperature: float,
        model: str | None,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        pipe = choice.pipe(model)
        args = (pipe, class_name, order, second, steps, seed, randomize, fps, cfg_scale, temperature, progress)
        yield from run_cancellable(run_side_by_side, args, {}, N_OUTPUTS)

    return side_by_side


def side_by_side_seconds(class_name: Any, order: Any, second: Any, steps: Any, *rest: Any) -> int:
    """ZeroGPU seconds of a ``/side_by_side`` request (the callback's arguments, in order): two decodes of
    ``steps``."""
    return request_seconds(steps, decodes=2)


def compare_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of *Compare*, ``/compare``, on the session's model: :func:`run_compare`, cancellable as
    :func:`animate_callback` is."""

    def compare(
        class_name: str | None,
        steps: int,
        seed: int | None,
        randomize: bool,
        fps: float,
        cfg_scale: float,
        temperature: float,
        model: str | None,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        args = (choice.pipe(model), class_name, steps, seed, randomize, fps, cfg_scale, temperature, progress)
        yield from run_cancellable(run_compare, args, {}, N_OUTPUTS)

    return compare


def race_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of *Race models*, ``/race_models``: :func:`run_race`, cancellable as the others are."""

    def race_models(
        class_name: str | None,
        models: list[str] | None,
        seed: int | None,
        randomize: bool,
        fps: float,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        yield from run_cancellable(
            run_race, (choice, class_name, models, seed, randomize, fps, progress), {}, N_OUTPUTS
        )

    return race_models


def race_seconds(class_name: Any, models: Any, *rest: Any) -> int:
    """ZeroGPU seconds of a ``/race_models`` request: a full decode per model, one token a step at worst."""
    return request_seconds(256, decodes=max(2, len(models or [])))


def compare_seconds(cells: int) -> Callable[..., int]:
    """ZeroGPU seconds of a ``/compare`` request on a model of ``cells`` token cells: ``steps`` and two decodes of
    one token a step."""

    def seconds(class_name: Any, steps: Any, *rest: Any) -> int:
        return request_seconds(steps, extra_steps=2 * cells)

    return seconds


def build(choice: ModelChoice) -> None:
    """The Visualize tab."""
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            i = _inputs(choice.first)
            with gr.Row():
                run = gr.Button("Animate", variant="primary", elem_id="animate-btn")
                run_pair = gr.Button("Side by side", variant="secondary", elem_id="pair-btn")
                run_cmp = gr.Button("Compare with 1 token/step", variant="secondary", elem_id="compare-btn")
            compare_text = gr.Markdown(_compare_text(choice.first))
            racers = gr.CheckboxGroup(
                choice.store.names(),
                value=choice.store.names()[:2],
                label="Models to race (each at its own settings)",
                elem_id="race-models",
            )
            run_race_btn = gr.Button("Race the models", variant="secondary", elem_id="race-btn")
            download = gr.File(
                label="Download the animation (GIF; MP4 for Compare)",
                interactive=False,
                elem_id="visualize-download",
                elem_classes=["compact-file"],
            )
        with gr.Column(scale=5, min_width=320):  # wide enough for Compare's three 256 px panels (808 px)
            anim, info, heat = _outputs()
    _follow(choice, i, compare_text)
    outputs = [anim, download, heat, i.seed, info]  # N_OUTPUTS
    tail = [i.steps, i.seed, i.randomize, i.fps, i.cfg, i.temperature, choice.dropdown]
    cells = choice.first.grid[0] * choice.first.grid[1]
    run.click(
        action(animate_callback(choice), animate_seconds),
        [i.cls, i.order, *tail],
        outputs,
        api_name="animate",
        api_description="A GIF of one decode in the chosen order, and a heatmap of the step of each cell.",
    )
    run_pair.click(
        action(side_by_side_callback(choice), side_by_side_seconds),
        [i.cls, i.order, i.second, *tail],
        outputs,
        api_name="side_by_side",
        api_description="Two decoding orders with the same class, seed and steps, side by side.",
    )
    run_cmp.click(
        action(compare_callback(choice), compare_seconds(cells)),
        [i.cls, *tail],
        outputs,
        api_name="compare",
        api_description="The same seed decoded in raster order, random one-at-a-time and with ARPG, "
        "played on one clock of the measured decode times (GIF, and an MP4 to download).",
    )
    run_race_btn.click(
        action(race_callback(choice), race_seconds),
        [i.cls, racers, i.seed, i.randomize, i.fps],
        outputs,
        api_name="race_models",
        api_description="2 to 4 models (e.g. ARPG against a model trained for raster order) decoding the same class "
        "number and seed, each at its own settings, played on one clock of their measured decode times.",
    )
