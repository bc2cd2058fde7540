"""Visualize tab: animations of the decoding order, three strategies racing on one clock
(*Compare*), and a heatmap of the step of every cell."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from arpg.cost import check_request
from arpg.options import SAMPLER_ORDERS
from arpg.orders import order_policy
from arpg.viz.animate import RACE_HOLD_S, save_animation, strategy_frames, trace_frames
from arpg.viz.compare import Comparison, compare_decodes
from arpg.viz.frames import step_heatmap

from .cancel import cancellable
from .errors import action, request_seconds
from .files import out_path
from .models import ModelChoice
from .runner import Run, plural
from .widgets import class_dropdown, class_update, knob, seed_controls

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
        arpg = next(d for d in cmp.decodes if d.method == "arpg")
        heat = step_heatmap(arpg.step_of, title="decoding step of each cell (ARPG)")
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


def _options(pipe: Any, steps: int, order: str | None, cfg_scale: float, temperature: float) -> Any:
    """``pipe``'s default decode options with the tab's knobs."""
    return pipe.defaults.replace(steps=int(steps), order=order, cfg_scale=cfg_scale, temperature=temperature)


def _animate(pipe: Any) -> Callable[..., tuple]:
    """The callback of *Animate*: one decode in the chosen order."""

    def animate(
        class_name: str,
        order: str,
        steps: int,
        seed: int | None,
        randomize: bool,
        fps: float,
        cfg_scale: float,
        temperature: float,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple:
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

    return animate


def _side_by_side(pipe: Any) -> Callable[..., tuple]:
    """The callback of *Side by side*: two decoding orders with the same class, seed and steps."""

    def side_by_side(
        class_name: str,
        order: str,
        second: str,
        steps: int,
        seed: int | None,
        randomize: bool,
        fps: float,
        cfg_scale: float,
        temperature: float,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple:
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

    return side_by_side


def _compare(pipe: Any) -> Callable[..., tuple]:
    """The callback of *Compare*: raster and random one token at a time, and ARPG, on one clock."""
    cells = pipe.grid[0] * pipe.grid[1]

    def compare(
        class_name: str,
        steps: int,
        seed: int | None,
        randomize: bool,
        fps: float,
        cfg_scale: float,
        temperature: float,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple:
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

    return compare


def handlers(pipe: Any) -> dict[str, Callable[..., tuple]]:
    """The callbacks of the three buttons, by API name: one order, two side by side, three ways."""
    return {"animate": _animate(pipe), "side_by_side": _side_by_side(pipe), "compare": _compare(pipe)}


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


def _steps_range(pipe: Any) -> dict[str, Any]:
    """The steps slider's value and help for ``pipe``'s grid (its maximum is the number of cells)."""
    cells = pipe.grid[0] * pipe.grid[1]
    return dict(value=min(cells, 16), info=f"parallel steps for the {cells} cells")


def _compare_text(pipe: Any) -> str:
    """What *Compare* does, with ``pipe``'s number of cells."""
    cells = pipe.grid[0] * pipe.grid[1]
    return (
        f"*Compare* decodes the same class and seed three times: in raster order one token at a time "
        f"({cells} steps, like LlamaGen), in a random order one at a time ({cells} steps) and with ARPG, "
        "several random tokens per step, and plays them on one clock of their measured decode times "
        "(slowed so that ARPG lasts a second): ARPG completes first while the others keep decoding."
    )


def _inputs(pipe: Any) -> Inputs:
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


def _handler(name: str) -> Callable[[Any], Callable[..., tuple]]:
    """A factory of the callback ``name`` of :func:`handlers`, for :meth:`ModelChoice.callback`; it
    stops at the next decode step when its caller leaves (:func:`~demo.tabs.cancel.cancellable`)."""

    def factory(pipe: Any) -> Callable[..., tuple]:
        return handlers(pipe)[name]

    return cancellable(factory, N_OUTPUTS)


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
        action(choice.callback(_handler("animate"))),
        [i.cls, i.order, *tail],
        outputs,
        api_name="animate",
        api_description="A GIF of one decode in the chosen order, and a heatmap of the step of each cell.",
    )
    run_pair.click(
        action(choice.callback(_handler("side_by_side")), lambda v: request_seconds(v, decodes=2)),
        [i.cls, i.order, i.second, *tail],
        outputs,
        api_name="side_by_side",
        api_description="Two decoding orders with the same class, seed and steps, side by side.",
    )
    run_cmp.click(
        action(choice.callback(_handler("compare")), lambda v: request_seconds(v, extra_steps=2 * cells)),
        [i.cls, *tail],
        outputs,
        api_name="compare",
        api_description="The same seed decoded in raster order, random one-at-a-time and with ARPG, "
        "played on one clock of the measured decode times (GIF, and an MP4 to download).",
    )
