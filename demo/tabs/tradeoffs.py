"""Trade-offs tab: steps against latency, throughput and quality, saved or measured here
(:mod:`arpg.measure.quick`: its time estimated before it runs, quality from the model's judge,
decoding orders compared), beside the published numbers."""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from arpg.measure import quick
from arpg.options import SAMPLER_ORDERS
from arpg.viz.plots import PUBLISHED, PUBLISHED_CAPTION, orders_figure, published_figure, tradeoff_figure

from .cancel import cancellable, raise_if_cancelled
from .errors import action, guard, plain_errors, refuse, request_seconds
from .files import out_path
from .models import ModelChoice
from .widgets import knob

log = logging.getLogger("demo")

BENCH_DIR = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
STEP_CHOICES = (4, 8, 16, 32, 64)
BATCH_CHOICES = (1, 2, 4, 8)
MAX_REPEATS = 3
COLUMNS = ["method", "steps", "batch", "images/s", "seconds per call", "KV cache (MB)", "accuracy", "Fréchet"]
#: Decoding orders the Measure button can compare with random order (ARPG's own, always measured).
OTHER_ORDERS = tuple(o for o in SAMPLER_ORDERS if o != "random")
#: Room above a figure, as a fraction of its width, so the image toolbar covers no title.
TOOLBAR_ROOM = 0.1
NO_RESULTS = ("**No saved results yet — press Measure** (API: `/measure`) to measure this model on this machine; "
              "its time is estimated below first.")
PUBLISHED_COLUMNS = ["model", "order", "steps", "images_per_s", "memory_gb", "fid"]


def num(v: Any, digits: int) -> float | None:
    """``v`` rounded to ``digits`` digits; None when it is not a number."""
    return round(float(v), digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def result_table(results: dict[str, Any]) -> list[list[Any]]:
    """The rows of a benchmark result as table rows (see :data:`COLUMNS`)."""
    out = []
    for r in results.get("rows", []):
        kv = r.get("kv_cache_bytes")
        out.append([r.get("method"), r.get("steps"), r.get("batch"), num(r.get("images_per_s"), 2),
                    num(r.get("latency_s"), 3), num(kv / 2**20, 2) if isinstance(kv, (int, float)) else None,
                    num(r.get("accuracy"), 3), num(r.get("frechet"), 2)])
    return out


def _is_bench(path: Path) -> bool:
    """A ``python -m arpg bench`` result (rows with a method), not another JSON file."""
    try:
        rows = json.loads(path.read_text()).get("rows", [])
    except (OSError, ValueError, AttributeError):
        return False
    return bool(rows) and all(isinstance(r, dict) and "method" in r for r in rows)


def saved_files(bench_dir: Path) -> list[str]:
    """Names of the saved benchmark results (``*.json`` written by ``bench``)."""
    return sorted(p.name for p in bench_dir.glob("*.json") if _is_bench(p)) if bench_dir.is_dir() else []


# FID of ARPG-L on ImageNet 256 by generation order (paper, table of orders).
PAPER_ORDER_FID = {"raster": 2.49, "spiral-in": 3.71, "spiral-out": 4.11, "z-curve": 2.56, "alternate": 2.56,
                   "random": 2.44}
ORDER_COLUMNS = ["order", "steps", "images", "accuracy", "Fréchet", "seconds per image", "queries per image",
                 "paper FID (ARPG-L)"]


def order_rows(results: dict[str, Any]) -> list[list[Any]]:
    """Rows of a decoding-order table (``bench --orders`` or a measurement) with the paper's FID
    beside them (see :data:`ORDER_COLUMNS`; quality is None when it was not measured)."""
    return [[r["order"], r["steps"], r.get("samples"), num(r.get("accuracy"), 3), num(r.get("frechet"), 2),
             num(r.get("seconds_per_image"), 3), num(r.get("queries_per_image"), 0), PAPER_ORDER_FID.get(r["order"])]
            for r in results.get("rows", [])]


def toolbar_room(image: Image.Image, fraction: float | None = None) -> Image.Image:
    """``image`` with a white band on top (``fraction`` of its width high, default
    :data:`TOOLBAR_ROOM`): the page's image toolbar (download, full screen) sits there instead of
    over the figure's title."""
    fraction = TOOLBAR_ROOM if fraction is None else fraction
    arr = np.asarray(image.convert("RGB"))
    band = np.full((round(fraction * arr.shape[1]), arr.shape[1], 3), 255, np.uint8)
    return Image.fromarray(np.concatenate([band, arr]))


def preferred_file(pipe: Any, names: list[str]) -> str | None:
    """The saved result that belongs to the loaded model, if any, else the first one."""
    if not names:
        return None
    if "shipped" in str(pipe.name) and "shipped.json" in names:
        return "shipped.json"
    key = str(pipe.name).lower()
    for n in names:
        if Path(n).stem.lower() in key or key in Path(n).stem.lower():
            return n
    return names[0]


def results_figure(results: dict[str, Any]) -> Image.Image:
    """The trade-off figure of a benchmark result, with room for the toolbar above it."""
    return toolbar_room(tradeoff_figure(results))


@lru_cache(maxsize=16)
def _figure(path: str, mtime: float) -> tuple[Any, list[list[Any]], str]:
    results = json.loads(Path(path).read_text())
    return results_figure(results), result_table(results), _head(results)


@lru_cache(maxsize=1)
def published_image() -> Image.Image:
    """The published figure (drawn once), with room for the toolbar above its title."""
    return toolbar_room(published_figure())


def _head(results: dict[str, Any]) -> str:
    """The model and machine of a benchmark result, as one line."""
    return " · ".join(str(results[k]) for k in ("model", "machine") if results.get(k))


def saved_handler(pipe: Any, bench_dir: Path) -> Callable[[str | None], tuple]:
    """The callback that shows a saved result: (plot, table, summary, dropdown update)."""

    def show_saved(name: str | None) -> tuple:
        names = saved_files(bench_dir)
        if not names:
            return None, [], NO_RESULTS, gr.update(choices=[], value=None)
        name = name if name in names else preferred_file(pipe, names)
        path = bench_dir / name
        try:
            fig, table, head = _figure(str(path), path.stat().st_mtime)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise refuse(f"Could not read the saved results {name}: {exc}") from None
        info = f"Saved results **{name}**" + (f" — {head}" if head else "")
        return fig, table, info, gr.update(choices=names, value=name)

    return show_saved


def step_choices(pipe: Any) -> list[int]:
    """The step counts offered for ``pipe`` (no more than its cells)."""
    cells = pipe.grid[0] * pipe.grid[1]
    return [s for s in STEP_CHOICES if s <= cells] or [cells]


def measure_plan(pipe: Any, batches: list[Any] | None, steps: list[Any] | None, raster: bool, repeats: Any,
                 orders: list[str] | None = None, per_class: Any = quick.DEFAULT_PER_CLASS) -> quick.QuickPlan:
    """The checked plan of the Measure inputs (plain-words gr.Error when one is wrong)."""
    if not batches or not steps:
        raise refuse("Pick at least one batch size and one step count to measure.")
    allowed = step_choices(pipe)
    if any(int(b) not in BATCH_CHOICES for b in batches) or any(int(s) not in allowed for s in steps):
        raise refuse(f"Batch sizes must be among {list(BATCH_CHOICES)} and steps among {allowed}.")
    with plain_errors():
        return quick.QuickPlan.checked(pipe.grid[0] * pipe.grid[1], steps, batches, raster, repeats, orders,
                                       per_class)


def _measured_info(results: dict[str, Any], judged: bool) -> str:
    """The summary of a measurement: model, machine, time taken against the estimate, quality sample."""
    head = _head(results)
    took = f"took {results.get('seconds', 0):.0f} s (estimated {results.get('estimate_s', 0):.0f} s)"
    quality = (f"quality: judge accuracy and Fréchet distance of {results['orders']['rows'][0]['samples']} images "
               "per row (small samples: compare rows of this run)" if judged and results["orders"]["rows"]
               else "no judge for this model: quality not measured")
    return ("Measured on this machine just now" + (f" — {head}" if head else "") + f"; {took}; {quality}. "
            "Download the JSON below.")


def measure_handler(pipe: Any) -> Callable[..., tuple]:
    """The callback of the Measure button: (plot, table, summary, JSON file, orders table)."""

    def measure(batches: list[int], steps: list[int], raster: bool, repeats: int, orders: list[str] | None,
                per_class: int, progress: gr.Progress = gr.Progress()) -> tuple:
        plan = measure_plan(pipe, batches, steps, raster, repeats, orders, per_class)
        def report(done: float, text: str) -> None:
            raise_if_cancelled()  # the caller left: stop between measurements
            progress(done, desc=text)

        results = quick.run_quick(pipe, plan, progress=report)
        path = out_path("benchmark", ".json")
        path.write_text(json.dumps(results, indent=2))
        info = _measured_info(results, getattr(pipe, "judge", None) is not None)
        return results_figure(results), result_table(results), info, str(path), order_rows(results["orders"])

    return measure


def estimate_handler(pipe: Any) -> Callable[..., str]:
    """The callback that says, before Measure runs, how long it will take with these settings."""

    def estimate(batches: list[int], steps: list[int], raster: bool, repeats: int, orders: list[str] | None,
                 per_class: int) -> str:
        try:
            plan = measure_plan(pipe, batches, steps, raster, repeats, orders, per_class)
        except gr.Error as exc:
            return str(exc.message)
        try:
            return quick.estimate(pipe, plan).text()
        except Exception:  # e.g. no GPU outside a request on a ZeroGPU Space: Measure itself still runs
            log.warning("no time estimate for %s", pipe.name, exc_info=True)
            return "No time estimate here yet: the first measurement of this model calibrates it."

    return estimate


def measure_seconds(values: Mapping[str, Any]) -> int:
    """GPU seconds a Measure request reserves on ZeroGPU: its timed calls (a warm-up and the
    repeats) and a quality decode per order, plus the raster order's steps."""
    decodes = 2 + len(values.get("orders") or [])
    return request_seconds(values, decodes=decodes, extra_steps=256 if values.get("raster") else 0)


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


def _measure_ranges(pipe: Any) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(steps choices and default, raster checkbox label, quality sample's visibility) for ``pipe``."""
    choices = step_choices(pipe)
    default = [s for s in (8, 16, 32) if s in choices] or choices[:1]
    cells = pipe.grid[0] * pipe.grid[1]
    judged = getattr(pipe, "judge", None) is not None
    return dict(choices=choices, value=default), f"Also raster order, one token per step ({cells} steps)", \
        dict(visible=judged)


def _measure_inputs(pipe: Any) -> tuple[list[gr.components.Component], gr.Markdown, gr.Button, gr.File]:
    """The "Measure on this machine" accordion: (inputs of :func:`measure_handler`, estimate, button, download)."""
    steps_range, raster_label, sample = _measure_ranges(pipe)
    with gr.Accordion("Measure on this machine", open=True):
        batches = number_choices(gr.CheckboxGroup(list(BATCH_CHOICES), value=[4], label="Batch sizes",
                                                  elem_id="measure-batches"))
        steps = number_choices(gr.CheckboxGroup(label="ARPG steps", elem_id="measure-steps", **steps_range))
        raster = gr.Checkbox(value=True, label=raster_label)
        orders = gr.CheckboxGroup(list(OTHER_ORDERS), value=[], label="Also compare decoding orders",
                                  info="random order (ARPG's own) is always measured", elem_id="measure-orders")
        per_class = knob(1, quick.MAX_PER_CLASS, value=quick.DEFAULT_PER_CLASS, step=1, precision=0,
                         label="Quality sample (images per class)", elem_id="measure-sample",
                         info="judge accuracy and Fréchet distance of this many images per class, per row", **sample)
        repeats = knob(1, MAX_REPEATS, value=1, step=1, precision=0, label="Repeats")
        estimate = gr.Markdown("", elem_id="measure-estimate")
        run = gr.Button("Measure", variant="primary", elem_id="measure-btn")
        download = gr.File(label="Measured results (JSON)", interactive=False, elem_id="measure-download",
                           elem_classes=["compact-file"])
    return [batches, steps, raster, repeats, orders, per_class], estimate, run, download


def _published_section() -> gr.Image:
    """The published numbers: figure (drawn when the tab opens) and table."""
    gr.Markdown(f"#### Published: throughput against FID\n*{PUBLISHED_CAPTION[0].upper() + PUBLISHED_CAPTION[1:]}.*")
    with gr.Row():
        published = gr.Image(show_label=False, label="Published", type="pil", format="png", interactive=False,
                             height=400, elem_id="tradeoffs-published", scale=1)
        gr.Dataframe(value=[[r.get(c) for c in PUBLISHED_COLUMNS] for r in PUBLISHED], headers=[
            "model", "order", "steps", "images/s", "memory (GB)", "FID"], interactive=False,
            label="Published numbers", elem_id="tradeoffs-published-table", scale=1)
    return published


def _orders_section(orders_file: Path) -> None:
    """The decoding-order table of this model (``bench --orders``), when one is saved."""
    if not orders_file.exists():
        return
    results = json.loads(orders_file.read_text())
    gr.Markdown("#### Decoding orders on this model\n*Judge accuracy and Fréchet distance of images decoded "
                "in each order (same steps), beside the paper's FID for ARPG-L on ImageNet. "
                f"Command: `{results.get('command', 'python -m arpg bench --orders ...')}`*")
    with gr.Row():
        gr.Image(toolbar_room(orders_figure(results)), show_label=False, label="Orders", type="pil", format="png",
                 interactive=False, height=300, elem_id="tradeoffs-orders", scale=1)
        gr.Dataframe(value=order_rows(results), headers=ORDER_COLUMNS, interactive=False,
                     label="Decoding orders", elem_id="tradeoffs-orders-table", scale=1)


def _follow(choice: ModelChoice, inputs: list[gr.components.Component], shown: list[gr.components.Component],
            show: Callable[..., tuple]) -> None:
    """After a switch: the step counts, raster label and quality sample of the Measure inputs, and
    the saved result of the new model (``shown``: plot, table, summary, saved-results dropdown)."""
    def update(p: Any) -> list[Any]:
        steps_range, raster_label, sample = _measure_ranges(p)
        return [gr.update(**steps_range), gr.update(label=raster_label), gr.update(**sample), *show(None, p.name)]

    choice.follow([inputs[1], inputs[2], inputs[5], *shown], update)


def _results_column() -> tuple[gr.Image, gr.Dataframe, gr.Dataframe]:
    """The measured (or saved) results: trade-off plot, table, and the quality and orders table."""
    gr.Markdown("#### Steps against latency, throughput and quality")
    plot = gr.Image(show_label=False, label="Trade-offs", type="pil", format="png", interactive=False,
                    height=360, elem_id="tradeoffs-plot")
    table = gr.Dataframe(headers=COLUMNS, label="Measurements", interactive=False, max_height=260,
                         elem_id="tradeoffs-table")
    orders = gr.Dataframe(headers=ORDER_COLUMNS, label="Quality and decoding orders (measured)", interactive=False,
                          max_height=260, elem_id="measure-orders-table")
    return plot, table, orders


def _wire_measure(choice: ModelChoice, tab_event: Any, inputs: list[gr.components.Component], estimate: gr.Markdown,
                  run: gr.Button, outputs: list[gr.components.Component]) -> None:
    """The estimate (when the tab opens, on every change of a setting or model) and the Measure button."""
    say = guard(choice.callback(estimate_handler))
    # one at a time, in order: the last estimate shown is the one of the last settings
    quiet = dict(api_visibility="private", show_progress="hidden", concurrency_id="measure-estimate",
                 concurrency_limit=1)
    for component in inputs:
        component.change(say, [*inputs, choice.dropdown], [estimate], trigger_mode="always_last", **quiet)
    choice.dropdown.change(say, [*inputs, choice.dropdown], [estimate], **quiet)
    tab_event.then(say, [*inputs, choice.dropdown], [estimate], **quiet)
    measure = action(choice.callback(cancellable(measure_handler, 5)), measure_seconds)
    run.click(measure, [*inputs, choice.dropdown], outputs,
              api_name="measure",
              api_description="Measure the chosen model on this machine: seconds per call and images/s for every "
                              "batch size and step count; with a judge, accuracy and Fréchet distance of a small "
                              "sample per step count and decoding order (the time is estimated on the page first).")


def build(choice: ModelChoice, tab: gr.Tab, bench_dir: Path | None = None) -> None:
    """The Trade-offs tab; its plots are drawn when the tab is opened."""
    bench_dir = Path(bench_dir) if bench_dir else BENCH_DIR
    gr.Markdown("How much faster do fewer, bigger steps make generation, and what do they cost in quality? "
                "Top: the chosen model, from saved results or measured on this machine. Bottom: the numbers "
                "published for the released models.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            names = saved_files(bench_dir)
            saved = gr.Dropdown(choices=names, value=preferred_file(choice.first, names), label="Saved results",
                                allow_custom_value=True, elem_id="tradeoffs-saved")
            info = gr.Markdown(NO_RESULTS, label="summary", elem_id="tradeoffs-info")
            measure_inputs, estimate, run, download = _measure_inputs(choice.first)
        with gr.Column(scale=3, min_width=360):
            plot, table, orders_table = _results_column()
    published = _published_section()
    _orders_section(bench_dir / "orders.json")
    show_saved = choice.callback(lambda p: saved_handler(p, bench_dir))
    _follow(choice, measure_inputs, [plot, table, info, saved], show_saved)

    def on_select(name: str | None, model: str | None) -> tuple:
        return (*show_saved(name, model), published_image())

    opened = tab.select(guard(on_select), [saved, choice.dropdown], [plot, table, info, saved, published],
                        api_visibility="private")
    saved.input(guard(show_saved), [saved, choice.dropdown], [plot, table, info, saved], api_name="saved_results",
                api_description="The trade-off plot and table of a saved benchmark result.")
    _wire_measure(choice, opened, measure_inputs, estimate, run, [plot, table, info, download, orders_table])
