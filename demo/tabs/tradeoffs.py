"""Trade-offs tab: steps against latency, throughput and quality, saved or measured here
(:mod:`arpg.measure.quick`: its time estimated before it runs, quality from the model's judge,
decoding orders compared), beside the published numbers. The results behind it, and what Measure runs on a
model, are in :mod:`demo.tabs.tradeoffs_results`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr

from arpg.measure import quick
from arpg.options import SAMPLER_ORDERS
from arpg.pipeline import Pipeline
from arpg.viz.plots import ORDER_COLUMNS, PUBLISHED, PUBLISHED_CAPTION, order_rows, orders_figure, paper_order_fids

from ..parts.cancel import run_cancellable
from ..parts.errors import guard, plain_errors
from ..parts.gpu import action
from ..parts.model_choice import ModelChoice
from ..parts.widgets import knob
from .tradeoffs_results import (
    BATCH_CHOICES,
    COLUMNS,
    MAX_REPEATS,
    NO_RESULTS,
    belongs,
    estimate_text,
    measure_seconds,
    model_files,
    preferred_file,
    published_image,
    run_measure,
    saved_results,
    step_choices,
    toolbar_room,
)

BENCH_DIR = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
#: Decoding orders the Measure button can compare with random order (ARPG's own, always measured).
OTHER_ORDERS = tuple(o for o in SAMPLER_ORDERS if o != "random")
PUBLISHED_COLUMNS = ["model", "order", "steps", "images_per_s", "memory_gb", "fid"]


def number_choices(group: gr.CheckboxGroup) -> gr.CheckboxGroup:
    """A checkbox group of numbers that also takes them as text, as the API docs list them
    (``"4"`` for 4); anything else is refused in words naming the group."""
    original = group.preprocess

    def preprocess(payload: Any) -> Any:
        if isinstance(payload, list):
            payload = [int(v) if isinstance(v, str) and v.strip().isdecimal() else v for v in payload]
        with plain_errors():
            return original(payload)

    group.preprocess = preprocess  # type: ignore[method-assign]  # (as widgets.knob does for sliders)
    return group


def _measure_ranges(pipe: Pipeline) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(steps choices and default, raster checkbox label, quality sample's visibility) for ``pipe``."""
    choices = step_choices(pipe)
    default = list(quick.default_plan(pipe).steps)  # the plan the ceiling always admits
    cells = pipe.grid[0] * pipe.grid[1]
    judged = getattr(pipe, "judge", None) is not None
    return (
        dict(choices=choices, value=default),
        f"Also raster order, one token per step ({cells} steps)",
        dict(visible=judged),
    )


def _measure_inputs(pipe: Pipeline) -> tuple[list[gr.components.Component], gr.Markdown, gr.Button, gr.File]:
    """The "Measure on this machine" accordion: (inputs of :func:`measure_callback`, estimate, button, download)."""
    steps_range, raster_label, sample = _measure_ranges(pipe)
    with gr.Accordion("Measure on this machine", open=True):
        batches = number_choices(
            gr.CheckboxGroup(
                list(BATCH_CHOICES), value=list(quick.DEFAULT_BATCHES), label="Batch sizes", elem_id="measure-batches"
            )
        )
        steps = number_choices(gr.CheckboxGroup(label="ARPG steps", elem_id="measure-steps", **steps_range))
        raster = gr.Checkbox(value=True, label=raster_label)
        orders = gr.CheckboxGroup(
            list(OTHER_ORDERS),
            value=[],
            label="Also compare decoding orders",
            info="random order (ARPG's own) is always measured",
            elem_id="measure-orders",
        )
        per_class = knob(
            1,
            quick.MAX_PER_CLASS,
            value=quick.DEFAULT_PER_CLASS,
            step=1,
            precision=0,
            label="Quality sample (images per class)",
            elem_id="measure-sample",
            info="judge accuracy and Fréchet distance of this many images per class, per row",
            **sample,
        )
        repeats = knob(1, MAX_REPEATS, value=1, step=1, precision=0, label="Repeats")
        estimate = gr.Markdown("", elem_id="measure-estimate")
        run = gr.Button("Measure", variant="primary", elem_id="measure-btn")
        download = gr.File(
            label="Measured results (JSON)",
            interactive=False,
            elem_id="measure-download",
            elem_classes=["compact-file"],
        )
    return [batches, steps, raster, repeats, orders, per_class], estimate, run, download


def _published_section() -> gr.Image:
    """The published numbers: figure (drawn when the tab opens) and table."""
    gr.Markdown(f"#### Published: throughput against FID\n*{PUBLISHED_CAPTION[0].upper() + PUBLISHED_CAPTION[1:]}.*")
    with gr.Row():
        published = gr.Image(
            show_label=False,
            label="Published",
            type="pil",
            format="png",
            interactive=False,
            height=400,
            elem_id="tradeoffs-published",
            scale=1,
        )
        gr.Dataframe(
            value=[[r.get(c) for c in PUBLISHED_COLUMNS] for r in PUBLISHED],
            headers=["model", "order", "steps", "images/s", "memory (GB)", "FID"],
            interactive=False,
            label="Published numbers",
            elem_id="tradeoffs-published-table",
            scale=1,
        )
    gr.Markdown(f"*The paper's FID of ARPG-L on ImageNet 256 by decoding order: {paper_order_fids()}.*")
    return published


def _is_orders(results: Any) -> bool:
    rows = results.get("rows") if isinstance(results, dict) else None
    return bool(rows) and all(isinstance(r, dict) and "order" in r and "method" not in r for r in rows)


def saved_orders(pipe: Pipeline, bench_dir: Path) -> Path | None:
    """The saved decoding-order result (``bench --orders``) measured on ``pipe``'s model, if any."""
    for path in sorted(bench_dir.glob("*.json")) if bench_dir.is_dir() else []:
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _is_orders(results) and belongs(str(results.get("model", "")), str(pipe.name)):
            return path
    return None


@lru_cache(maxsize=8)
def _orders_view(path: str, mtime: float) -> tuple[str, Any, list[list[Any]]]:
    results = json.loads(Path(path).read_text())
    caption = (
        f"#### Decoding orders on this model\n*Judge accuracy and Fréchet distance of images decoded in each "
        f"order (same steps); the paper's FIDs by order are under Published. Command: "
        f"`{results.get('command', 'python -m arpg bench --orders ...')}`*"
    )
    return caption, toolbar_room(orders_figure(results)), order_rows(results)


def orders_updates(pipe: Pipeline, bench_dir: Path) -> list[Any]:
    """The saved orders section for ``pipe`` (box, caption, chart, table): hidden when its model has none."""
    path = saved_orders(pipe, bench_dir)
    if path is None:
        return [gr.update(visible=False), "", None, gr.update(value=[])]
    caption, image, rows = _orders_view(str(path), path.stat().st_mtime)
    return [gr.update(visible=True), caption, image, gr.update(value=rows)]


def _orders_section(choice: ModelChoice, bench_dir: Path) -> None:
    """The decoding-order chart and table of the session's model (``bench --orders``), when one is saved."""
    box_u, caption, image, table = orders_updates(choice.first, bench_dir)
    with gr.Column(visible=box_u["visible"]) as box:
        text = gr.Markdown(caption, elem_id="tradeoffs-orders-caption")
        with gr.Row():
            chart = gr.Image(
                image,
                show_label=False,
                label="Orders",
                type="pil",
                format="png",
                interactive=False,
                height=300,
                elem_id="tradeoffs-orders",
                scale=1,
            )
            rows = gr.Dataframe(
                value=table["value"],
                headers=ORDER_COLUMNS,
                interactive=False,
                label="Decoding orders",
                elem_id="tradeoffs-orders-table",
                scale=1,
            )
    choice.follow([box, text, chart, rows], lambda p: orders_updates(p, bench_dir))


def _follow(
    choice: ModelChoice,
    inputs: list[gr.components.Component],
    shown: list[gr.components.Component],
    show: Callable[..., tuple],
) -> None:
    """After a switch: the step counts, raster label and quality sample of the Measure inputs, the saved
    result of the new model (``shown``: plot, table, summary, saved-results dropdown), and no measured
    orders table or JSON of the model before (``shown``'s last two)."""

    def update(p: Any) -> list[Any]:
        steps_range, raster_label, sample = _measure_ranges(p)
        ranges = [gr.update(**steps_range), gr.update(label=raster_label), gr.update(**sample)]
        return [*ranges, *show(None, p.name), gr.update(value=[]), None]

    choice.follow([inputs[1], inputs[2], inputs[5], *shown], update)


def _results_column() -> tuple[gr.Image, gr.Dataframe, gr.Dataframe]:
    """The measured (or saved) results: trade-off plot, table, and the quality and orders table."""
    gr.Markdown("#### Steps against latency, throughput and quality")
    plot = gr.Image(
        show_label=False,
        label="Trade-offs",
        type="pil",
        format="png",
        interactive=False,
        height=360,
        elem_id="tradeoffs-plot",
    )
    table = gr.Dataframe(
        headers=COLUMNS, label="Measurements", interactive=False, max_height=260, elem_id="tradeoffs-table"
    )
    orders = gr.Dataframe(
        headers=ORDER_COLUMNS,
        label="Quality and decoding orders (measured)",
        interactive=False,
        max_height=260,
        elem_id="measure-orders-table",
    )
    return plot, table, orders


def saved_callback(choice: ModelChoice, bench_dir: Path) -> Callable[..., tuple]:
    """The callback of the saved-results dropdown, ``/saved_results``, on the session's model
    (:func:`~demo.tabs.tradeoffs_results.saved_results`)."""

    def show_saved(name: str | None, model: str | None) -> tuple:
        return saved_results(choice.pipe(model), bench_dir, name)

    return show_saved


def estimate_callback(choice: ModelChoice) -> Callable[..., str]:
    """The callback that says how long Measure will take on the session's model with these settings
    (:func:`~demo.tabs.tradeoffs_results.estimate_text`)."""

    def estimate(
        batches: list[int],
        steps: list[int],
        raster: bool,
        repeats: int,
        orders: list[str] | None,
        per_class: int,
        model: str | None,
    ) -> str:
        return estimate_text(choice.pipe(model), batches, steps, raster, repeats, orders, per_class)

    return estimate


def measure_callback(choice: ModelChoice) -> Callable[..., Iterator[tuple]]:
    """The callback of the Measure button, ``/measure``, on the session's model: :func:`run_measure
    <demo.tabs.tradeoffs_results.run_measure>` in a thread that stops when its caller leaves
    (:func:`~demo.parts.cancel.run_cancellable`)."""

    def measure(
        batches: list[int],
        steps: list[int],
        raster: bool,
        repeats: int,
        orders: list[str] | None,
        per_class: int,
        model: str | None,
        progress: gr.Progress = gr.Progress(),
    ) -> Iterator[tuple]:
        args = (choice.pipe(model), batches, steps, raster, repeats, orders, per_class, progress)
        yield from run_cancellable(run_measure, args, {}, 5)

    return measure


def _wire_measure(
    choice: ModelChoice,
    tab_event: Any,
    inputs: list[gr.components.Component],
    estimate: gr.Markdown,
    run: gr.Button,
    outputs: list[gr.components.Component],
) -> None:
    """The estimate (when the tab opens, on every change of a setting or model) and the Measure button."""
    say = guard(estimate_callback(choice))
    # one at a time, in order: the last estimate shown is the one of the last settings
    quiet = dict(
        api_visibility="private", show_progress="hidden", concurrency_id="measure-estimate", concurrency_limit=1
    )
    for component in inputs:
        component.change(say, [*inputs, choice.dropdown], [estimate], trigger_mode="always_last", **quiet)
    choice.dropdown.change(say, [*inputs, choice.dropdown], [estimate], **quiet)
    tab_event.then(say, [*inputs, choice.dropdown], [estimate], **quiet)
    measure = action(measure_callback(choice), measure_seconds)
    run.click(
        measure,
        [*inputs, choice.dropdown],
        outputs,
        api_name="measure",
        api_description="Measure the chosen model on this machine: seconds per call and images/s for every "
        "batch size and step count; with a judge, accuracy and Fréchet distance of a small "
        "sample per step count and decoding order (the time is estimated on the page first).",
    )


def build(choice: ModelChoice, tab: gr.Tab, bench_dir: Path | None = None) -> None:
    """The Trade-offs tab; its plots are drawn when the tab is opened."""
    bench_dir = Path(bench_dir) if bench_dir else BENCH_DIR
    gr.Markdown(
        "How much faster do fewer, bigger steps make generation, and what do they cost in quality? "
        "Top: the chosen model, from saved results or measured on this machine. Bottom: the numbers "
        "published for the released models."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            names = model_files(choice.first, bench_dir)
            saved = gr.Dropdown(
                choices=names,
                value=preferred_file(choice.first, names, bench_dir),
                label="Saved results",
                allow_custom_value=True,
                elem_id="tradeoffs-saved",
            )
            info = gr.Markdown(NO_RESULTS, label="summary", elem_id="tradeoffs-info")
            measure_inputs, estimate, run, download = _measure_inputs(choice.first)
        with gr.Column(scale=3, min_width=360):
            plot, table, orders_table = _results_column()
    published = _published_section()
    _orders_section(choice, bench_dir)
    show_saved = saved_callback(choice, bench_dir)
    _follow(choice, measure_inputs, [plot, table, info, saved, orders_table, download], show_saved)

    def on_select(name: str | None, model: str | None) -> tuple:
        return (*show_saved(name, model), published_image())

    opened = tab.select(
        guard(on_select), [saved, choice.dropdown], [plot, table, info, saved, published], api_visibility="private"
    )
    saved.input(
        guard(show_saved),
        [saved, choice.dropdown],
        [plot, table, info, saved],
        api_name="saved_results",
        api_description="The trade-off plot and table of a saved benchmark result.",
    )
    _wire_measure(choice, opened, measure_inputs, estimate, run, [plot, table, info, download, orders_table])
