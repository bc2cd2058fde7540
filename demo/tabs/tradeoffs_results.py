"""The results behind the Trade-offs tab (:mod:`demo.tabs.tradeoffs`), without its widgets: saved results read
and drawn, and what the Measure button runs on a model (:mod:`arpg.measure.quick`: time estimated first, then
measured)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from arpg.measure import quick
from arpg.pipeline import Pipeline
from arpg.viz.plots import order_rows, published_figure, tradeoff_figure

from ..parts.cancel import raise_if_cancelled
from ..parts.downloads import out_path
from ..parts.errors import plain_errors, refuse
from ..parts.gpu import request_seconds

log = logging.getLogger("demo")

STEP_CHOICES = (4, 8, 16, 32, 64)
BATCH_CHOICES = (1, 2, 4, 8)
MAX_REPEATS = 3
PROGRESS_EVERY_S = 0.25  # Measure's progress bar moves at most this often
COLUMNS = ["method", "steps", "batch", "images/s", "seconds per call", "KV cache (MB)", "accuracy", "Fréchet"]
#: Room above a figure, as a fraction of its width, so the image toolbar covers no title.
TOOLBAR_ROOM = 0.1
NO_RESULTS = (
    "**No saved results yet — press Measure** (API: `/measure`) to measure this model on this machine; "
    "its time is estimated below first."
)


def num(v: Any, digits: int) -> float | None:
    """``v`` rounded to ``digits`` digits; None when it is not a number."""
    return round(float(v), digits) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def result_table(results: dict[str, Any]) -> list[list[Any]]:
    """The rows of a benchmark result as table rows (see :data:`COLUMNS`)."""
    out = []
    for r in results.get("rows", []):
        kv = r.get("kv_cache_bytes")
        out.append(
            [
                r.get("method"),
                r.get("steps"),
                r.get("batch"),
                num(r.get("images_per_s"), 2),
                num(r.get("latency_s"), 3),
                num(kv / 2**20, 2) if isinstance(kv, (int, float)) else None,
                num(r.get("accuracy"), 3),
                num(r.get("frechet"), 2),
            ]
        )
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


def toolbar_room(image: Image.Image, fraction: float | None = None) -> Image.Image:
    """``image`` with a white band on top (``fraction`` of its width high, default
    :data:`TOOLBAR_ROOM`): the page's image toolbar (download, full screen) sits there instead of
    over the figure's title."""
    fraction = TOOLBAR_ROOM if fraction is None else fraction
    arr = np.asarray(image.convert("RGB"))
    band = np.full((round(fraction * arr.shape[1]), arr.shape[1], 3), 255, np.uint8)
    return Image.fromarray(np.concatenate([band, arr]))


def _model_field(path: Path) -> str:
    """The ``"model"`` a saved JSON result names ("" when it names none or cannot be read)."""
    try:
        model = json.loads(path.read_text()).get("model", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return model if isinstance(model, str) else ""


def belongs(model: str, name: str) -> bool:
    """Whether a result's ``model`` (e.g. "shipped digits model (6.69M params)", "ARPG-L, random weights")
    is of the model called ``name``: that name, alone or followed by what the result adds about it."""
    return model == name or (model.startswith(name) and model[len(name)] in " ,(")


def model_files(pipe: Pipeline, bench_dir: Path, names: list[str] | None = None) -> list[str]:
    """The saved results (of ``names``, default :func:`saved_files`) measured on ``pipe``'s model."""
    names = saved_files(bench_dir) if names is None else names
    return [n for n in names if belongs(_model_field(bench_dir / n), str(pipe.name))]


def preferred_file(pipe: Pipeline, names: list[str], bench_dir: Path) -> str | None:
    """The saved result of ``names`` to show for ``pipe``: of those measured on its model, the one with
    the most rows (the fullest picture); None when none was measured on it."""
    mine = model_files(pipe, bench_dir, names)

    def rows(name: str) -> int:
        return len(json.loads((bench_dir / name).read_text()).get("rows", []))

    return max(mine, key=lambda n: (rows(n), n)) if mine else None


def no_results(pipe: Pipeline) -> str:
    """What the summary says when no result of ``pipe``'s model is saved."""
    return NO_RESULTS.replace("No saved results yet", f"No saved results for {pipe.name} yet")


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


def saved_results(pipe: Pipeline, bench_dir: Path, name: str | None) -> tuple:
    """A saved result of ``pipe``'s model, ``name`` when it is one (else the preferred one): (plot, table,
    summary, dropdown update offering the results of that model only)."""
    names = model_files(pipe, bench_dir)  # only results of the session's model
    if not names:
        return None, [], no_results(pipe), gr.update(choices=[], value=None)
    name = name if name in names else preferred_file(pipe, names, bench_dir)
    path = bench_dir / name
    try:
        fig, table, head = _figure(str(path), path.stat().st_mtime)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise refuse(f"Could not read the saved results {name}: {exc}") from None
    info = f"Saved results **{name}**" + (f" — {head}" if head else "")
    return fig, table, info, gr.update(choices=names, value=name)


def step_choices(pipe: Pipeline) -> list[int]:
    """The step counts offered for ``pipe`` (no more than its cells)."""
    cells = pipe.grid[0] * pipe.grid[1]
    return [s for s in STEP_CHOICES if s <= cells] or [cells]


def measure_plan(
    pipe: Pipeline,
    batches: list[Any] | None,
    steps: list[Any] | None,
    raster: bool,
    repeats: Any,
    orders: list[str] | None = None,
    per_class: Any = quick.DEFAULT_PER_CLASS,
) -> quick.QuickPlan:
    """The checked plan of the Measure inputs (plain-words gr.Error when one is wrong)."""
    if not batches or not steps:
        raise refuse("Pick at least one batch size and one step count to measure.")
    allowed = step_choices(pipe)
    if any(int(b) not in BATCH_CHOICES for b in batches) or any(int(s) not in allowed for s in steps):
        raise refuse(f"Batch sizes must be among {list(BATCH_CHOICES)} and steps among {allowed}.")
    with plain_errors():
        return quick.QuickPlan.checked(pipe.grid[0] * pipe.grid[1], steps, batches, raster, repeats, orders, per_class)


def _measured_info(results: dict[str, Any], judged: bool) -> str:
    """The summary of a measurement: model, machine, time taken against the estimate, quality sample."""
    head = _head(results)
    took = f"took {results.get('seconds', 0):.0f} s (estimated {results.get('estimate_s', 0):.0f} s)"
    quality = (
        f"quality: judge accuracy and Fréchet distance of {results['orders']['rows'][0]['samples']} images "
        "per row (small samples: compare rows of this run)"
        if judged and results["orders"]["rows"]
        else "no judge for this model: quality not measured"
    )
    return (
        "Measured on this machine just now" + (f" — {head}" if head else "") + f"; {took}; {quality}. "
        "Download the JSON below."
    )


def throttled(show: Callable[[float, str], None], every_s: float = PROGRESS_EVERY_S) -> Callable[[float, str], None]:
    """``show(done, text)`` at most every ``every_s`` seconds (and at the end): a run reports at every
    forward pass, thousands of them, and each update sent to the page costs the server several ms."""
    last = [-every_s]

    def report(done: float, text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s or done >= 1.0:
            last[0] = now
            show(done, text)

    return report


def run_measure(
    pipe: Pipeline,
    batches: list[int],
    steps: list[int],
    raster: bool,
    repeats: int,
    orders: list[str] | None,
    per_class: int,
    progress: Any = gr.Progress(),
) -> tuple:
    """/measure on ``pipe`` (:func:`arpg.measure.quick.run_quick`): (plot, table, summary, JSON file, orders
    table); ``progress(done, desc=...)`` shows how far it is."""
    plan = measure_plan(pipe, batches, steps, raster, repeats, orders, per_class)
    with plain_errors():  # over the ceiling: refused in words before anything runs
        quick.check_plan(pipe, plan)

    report = throttled(lambda done, text: progress(done, desc=f"{text} ({100 * done:.0f}%)"))

    # the caller left: the run stops at its next timed call or forward pass
    results = quick.run_quick(pipe, plan, progress=report, check_cancel=raise_if_cancelled)
    path = out_path("benchmark", ".json")
    path.write_text(json.dumps(results, indent=2))
    info = _measured_info(results, getattr(pipe, "judge", None) is not None)
    return results_figure(results), result_table(results), info, str(path), order_rows(results["orders"])


def estimate_text(
    pipe: Pipeline,
    batches: list[int],
    steps: list[int],
    raster: bool,
    repeats: int,
    orders: list[str] | None,
    per_class: int,
) -> str:
    """What the page says, before Measure runs on ``pipe``, of how long it will take with these settings."""
    try:
        plan = measure_plan(pipe, batches, steps, raster, repeats, orders, per_class)
    except gr.Error as exc:
        return str(exc.message)
    try:
        return quick.check_plan(pipe, plan).text()
    except ValueError as exc:  # over the ceiling: said before Measure is pressed
        return f"**Too long to measure here:** {exc}."
    except Exception:  # e.g. no GPU outside a request on a ZeroGPU Space: Measure itself still runs
        log.warning("no time estimate for %s", pipe.name, exc_info=True)
        return "No time estimate here yet: the first measurement of this model calibrates it."


def measure_seconds(batches: Any, steps: Any, raster: Any, repeats: Any, orders: Any, *rest: Any) -> int:
    """ZeroGPU seconds of a ``/measure`` request (the callback's arguments, in order): its timed calls (a warm-up
    and the ``repeats`` of every batch size and step count) and a quality decode per order, plus the raster
    order's steps."""
    decodes = 2 + len(orders or [])
    return request_seconds(steps, images=batches, repeats=repeats, decodes=decodes, extra_steps=256 if raster else 0)
