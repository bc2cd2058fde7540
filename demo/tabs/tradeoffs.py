"""Trade-offs tab: steps against latency, throughput and quality, saved or measured here,
beside the published numbers."""
from __future__ import annotations

import inspect
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr

from .common import action, guard, knob, out_path, refuse

BENCH_DIR = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
STEP_CHOICES = (4, 8, 16, 32, 64)
BATCH_CHOICES = (1, 2, 4, 8)
MAX_REPEATS = 3
COLUMNS = ["method", "steps", "batch", "images/s", "latency (s)", "KV cache (MB)", "accuracy", "Fréchet"]
NO_RESULTS = ("**No saved results yet — press Measure** to time this model on this machine "
              "(a few seconds to a minute with the small defaults).")
PUBLISHED_COLUMNS = ["model", "order", "steps", "images_per_s", "memory_gb", "fid"]


def result_table(results: dict[str, Any]) -> list[list[Any]]:
    """The rows of a benchmark result as table rows (see :data:`COLUMNS`)."""
    def num(v: Any, digits: int) -> Any:
        return round(float(v), digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

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
ORDER_COLUMNS = ["order", "steps", "accuracy", "Fréchet", "s/image", "queries/image", "paper FID (ARPG-L)"]


def order_rows(results: dict[str, Any]) -> list[list[Any]]:
    """Rows of a decoding-order table (``bench --orders``) with the paper's FID beside them."""
    return [[r["order"], r["steps"], round(r["accuracy"], 3), round(r["frechet"], 2),
             round(r["seconds_per_image"], 3), round(r["queries_per_image"]), PAPER_ORDER_FID.get(r["order"])]
            for r in results.get("rows", [])]


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


@lru_cache(maxsize=16)
def _figure(path: str, mtime: float) -> tuple[Any, list[list[Any]], str]:
    from demo.render import tradeoff_figure

    results = json.loads(Path(path).read_text())
    head = " · ".join(str(results[k]) for k in ("model", "machine") if results.get(k))
    return tradeoff_figure(results), result_table(results), head


@lru_cache(maxsize=1)
def published_image() -> Any:
    """The published figure (drawn once)."""
    from demo.render import published_figure

    return published_figure()


def build(pipe: Any, tab: gr.Tab, bench_dir: Path | None = None) -> None:
    """The Trade-offs tab; its plots are drawn when the tab is opened."""
    from demo.render import PUBLISHED, PUBLISHED_CAPTION

    bench_dir = Path(bench_dir) if bench_dir else BENCH_DIR
    cells = pipe.grid[0] * pipe.grid[1]
    step_choices = [s for s in STEP_CHOICES if s <= cells] or [cells]
    step_default = [s for s in (8, 16, 32) if s in step_choices] or step_choices[:1]

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

    def on_open(name: str | None) -> tuple:
        return (*show_saved(name), published_image())

    def measure(batches: list[int], steps: list[int], raster: bool, repeats: int,
                progress: gr.Progress = gr.Progress()) -> tuple:
        try:
            from arpg import bench
        except ImportError:
            raise refuse("Measuring needs the benchmark module (arpg/bench.py), which is not part of this "
                           "installation; the saved and published results are still shown.") from None
        batches = sorted({int(b) for b in batches or []})
        steps = sorted({int(s) for s in steps or []})
        if not batches or not steps:
            raise refuse("Pick at least one batch size and one step count to measure.")
        if any(b not in BATCH_CHOICES for b in batches) or any(s not in step_choices for s in steps):
            raise refuse(f"Batch sizes must be among {list(BATCH_CHOICES)} and steps among {step_choices}.")
        methods = ("arpg", "raster") if raster else ("arpg",)

        def report(*args: Any, **kwargs: Any) -> None:
            nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
            desc = kwargs.get("desc") or next((a for a in args if isinstance(a, str)), None) or "Measuring"
            if len(nums) >= 2 and nums[1]:
                progress((int(nums[0]), int(nums[1])), desc=desc)
            elif nums:
                progress(min(1.0, float(nums[0])), desc=desc)

        kwargs = dict(steps=tuple(steps), batch=tuple(batches), methods=methods, repeats=int(repeats),
                      progress=report)
        params = inspect.signature(bench.run_bench).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            kwargs = {k: v for k, v in kwargs.items() if k in params}
        results = bench.run_bench(pipe, **kwargs)
        path = out_path("benchmark", ".json")
        path.write_text(json.dumps(results, indent=2))
        from demo.render import tradeoff_figure

        head = " · ".join(str(results[k]) for k in ("model", "machine") if results.get(k))
        info = "Measured on this machine just now" + (f" — {head}" if head else "") + ". Download the JSON below."
        return tradeoff_figure(results), result_table(results), info, str(path)

    gr.Markdown("How much faster do fewer, bigger steps make generation, and what do they cost in quality? "
                "Top: the loaded model, from saved results or measured on this machine. Bottom: the numbers "
                "published for the released models.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            names = saved_files(bench_dir)
            saved = gr.Dropdown(choices=names, value=preferred_file(pipe, names), label="Saved results",
                                allow_custom_value=True,
                                elem_id="tradeoffs-saved")
            info = gr.Markdown(NO_RESULTS, label="summary", elem_id="tradeoffs-info")
            with gr.Accordion("Measure on this machine", open=True):
                batches = gr.CheckboxGroup(list(BATCH_CHOICES), value=[1, 4], label="Batch sizes")
                steps = gr.CheckboxGroup(step_choices, value=step_default, label="ARPG steps")
                raster = gr.Checkbox(value=True, label=f"Also raster order, one token per step ({cells} steps)")
                repeats = knob(1, MAX_REPEATS, value=1, step=1, precision=0, label="Repeats")
                run = gr.Button("Measure", variant="primary", elem_id="measure-btn")
                download = gr.File(label="Measured results (JSON)", interactive=False, elem_id="measure-download",
                                   elem_classes=["compact-file"])
        with gr.Column(scale=3, min_width=360):
            gr.Markdown("#### Steps against latency, throughput and quality")
            plot = gr.Image(show_label=False, label="Trade-offs", type="pil", format="png", interactive=False,
                            height=330, elem_id="tradeoffs-plot")
            table = gr.Dataframe(headers=COLUMNS, label="Measurements", interactive=False, max_height=260,
                                 elem_id="tradeoffs-table")
    gr.Markdown(f"#### Published: throughput against FID\n*{PUBLISHED_CAPTION[0].upper() + PUBLISHED_CAPTION[1:]}.*")
    with gr.Row():
        published = gr.Image(show_label=False, label="Published", type="pil", format="png", interactive=False,
                             height=400, elem_id="tradeoffs-published", scale=1)
        gr.Dataframe(value=[[r.get(c) for c in PUBLISHED_COLUMNS] for r in PUBLISHED], headers=[
            "model", "order", "steps", "images/s", "memory (GB)", "FID"], interactive=False,
            label="Published numbers", elem_id="tradeoffs-published-table", scale=1)
    orders_file = bench_dir / "orders.json"
    if orders_file.exists():
        from demo.render import orders_figure

        order_results = json.loads(orders_file.read_text())
        gr.Markdown("#### Decoding orders on this model\n*Judge accuracy and Fréchet distance of images decoded "
                    "in each order (same steps), beside the paper's FID for ARPG-L on ImageNet. "
                    f"Command: `{order_results.get('command', 'python -m arpg bench --orders ...')}`*")
        with gr.Row():
            gr.Image(orders_figure(order_results), show_label=False, label="Orders", type="pil", format="png",
                     interactive=False, height=300, elem_id="tradeoffs-orders", scale=1)
            gr.Dataframe(value=order_rows(order_results), headers=ORDER_COLUMNS, interactive=False,
                         label="Decoding orders", elem_id="tradeoffs-orders-table", scale=1)
    tab.select(guard(on_open), [saved], [plot, table, info, saved, published], api_visibility="private")
    saved.input(guard(show_saved), [saved], [plot, table, info, saved], api_name="saved_results",
                api_description="The trade-off plot and table of a saved benchmark result.")
    run.click(action(measure), [batches, steps, raster, repeats], [plot, table, info, download], api_name="measure",
              api_description="Time the loaded model on this machine (bounded: a few batch sizes and step counts).")
