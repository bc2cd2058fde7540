"""Plots of measurements: the speed/quality trade-off of a benchmark, decoding orders compared,
and the published ImageNet-256 numbers (data in ``published.json`` beside this file).

matplotlib is imported lazily, always through :class:`matplotlib.figure.Figure` and the Agg
canvas (never pyplot); the ``*_plot`` functions return figures, the ``*_figure`` ones RGB
PIL images.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from .draw import figure_to_image, new_figure

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = [
    "PUBLISHED",
    "PUBLISHED_CAPTION",
    "load_published",
    "figure_to_image",
    "tradeoff_plot",
    "tradeoff_figure",
    "published_plot",
    "published_figure",
    "orders_figure",
    "ORDER_COLUMNS",
    "PAPER_ORDER_FID",
    "order_rows",
    "paper_order_fids",
]

PUBLISHED_FILE = Path(__file__).with_name("published.json")


def load_published(path: str | Path = PUBLISHED_FILE) -> tuple[str, list[dict[str, Any]]]:
    """(caption, rows) of a published-numbers file: ``{"caption": str, "rows": [{...}, ...]}``.

    Row keys: ``model``, ``family``, ``order``, ``steps``, ``images_per_s``, ``memory_gb``
    (peak GPU memory) and ``fid`` (lower is better); the file's ``"columns"`` describes them.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return str(data["caption"]), [dict(r) for r in data["rows"]]


PUBLISHED_CAPTION, PUBLISHED = load_published()
"""The ARPG paper's ImageNet 256x256 table (A800, batch 64, bf16), one dict per row."""

# -- trade-off plot of a benchmark -----------------------------------------------------------------

_METHOD_STYLE: dict[str, dict[str, Any]] = {
    "arpg": {"label": "ARPG (random, parallel)", "marker": "o", "color": "#1f77b4"},
    "raster": {"label": "raster, 1 token/step", "marker": "s", "color": "#d62728"},
    "random1": {"label": "random, 1 token/step", "marker": "^", "color": "#ff7f0e"},
}

Series = tuple[str, dict[str, Any], list[dict[str, Any]]]  # (method, plot style, rows sorted by steps)


def _num(x: Any) -> float | None:
    """``float(x)`` unless it is None/NaN/not a number."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _batch(row: dict[str, Any]) -> int:
    """The row's batch size (1 when missing)."""
    return int(row.get("batch", 1) or 1)


def _by_steps(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` sorted by their step count."""
    return sorted(rows, key=lambda r: float(r["steps"]))


def _not_measured(ax: Any, text: str = "not measured") -> None:
    """Write a centred grey note on an otherwise empty axes."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="0.45", style="italic")


def _series(rows: list[dict[str, Any]]) -> list[Series]:
    """Group rows into plotted series: one per (known method, batch), then one per unknown method."""
    batches = sorted({_batch(r) for r in rows if r.get("method") == "arpg"})
    arpg_cmap = None
    if len(batches) > 1:
        from matplotlib import colormaps  # heavy, optional at import time

        arpg_cmap = colormaps["Blues"]
    multi_batch = len({_batch(r) for r in rows}) > 1
    out: list[Series] = []
    for method, base in _METHOD_STYLE.items():
        mrows = [r for r in rows if r.get("method") == method]
        for b in sorted({_batch(r) for r in mrows}):
            style = dict(base)
            if multi_batch:
                style["label"] = f"{base['label']}, batch {b}"
            if method == "arpg" and arpg_cmap is not None:
                style["color"] = arpg_cmap(0.45 + 0.55 * batches.index(b) / (len(batches) - 1))
            out.append((method, style, _by_steps(r for r in mrows if _batch(r) == b)))
    others = sorted({str(r.get("method")) for r in rows} - set(_METHOD_STYLE))
    for k, method in enumerate(others):
        style = {"label": method, "marker": "D", "color": f"C{4 + k}"}
        out.append((method, style, _by_steps(r for r in rows if r.get("method") == method)))
    return out


def _draw(ax: Any, groups: list[Series], key: str, **kw: Any) -> bool:
    """Plot ``key`` against steps for every series; True if anything was drawn."""
    any_drawn = False
    for method, style, grows in groups:
        pts = [(float(r["steps"]), _num(r.get(key))) for r in grows]
        pts = [(x, y) for x, y in pts if y is not None]
        if not pts:
            continue
        xs, ys = zip(*pts)
        line = method == "arpg"
        ax.plot(
            xs,
            ys,
            linestyle="-" if line else "none",
            marker=style["marker"],
            color=style["color"],
            markersize=6 if line else 9,
            label=style["label"],
            **kw,
        )
        any_drawn = True
    return any_drawn


def _step_axis(ax: Any) -> None:
    """log2 step axis with integer tick labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator  # heavy, optional at import time

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("decoding steps per image (log2)")
    ax.grid(True, which="major", alpha=0.3)


def _speed_panel(ax: Any, groups: list[Series], key: str, ylabel: str, title: str, legend: bool) -> None:
    """A log-log panel of ``key`` (throughput or latency) against steps."""
    if _draw(ax, groups, key):
        _step_axis(ax)
        ax.set_yscale("log")
        if legend:
            ax.legend(fontsize=8, loc="best")
    else:
        _not_measured(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)


def _quality_panel(ax: Any, groups: list[Series], rows: list[dict[str, Any]]) -> None:
    """Frechet distance (and accuracy on a twin axis, hollow markers) against steps; notes what is missing."""
    has_fd = any(_num(r.get("frechet")) is not None for r in rows)
    has_acc = any(_num(r.get("accuracy")) is not None for r in rows)
    ax.set_title("sample quality", fontsize=11)
    if has_fd:
        _draw(ax, groups, "frechet")
        ax.set_ylabel("Frechet distance (lower is better)")
        _step_axis(ax)
        if has_acc:
            twin = ax.twinx()
            _draw(twin, groups, "accuracy", alpha=0.85, markerfacecolor="none")
            twin.set_ylabel("accuracy, hollow markers (higher is better)")
            twin.set_ylim(-0.02, 1.02)
    elif has_acc:
        _draw(ax, groups, "accuracy")
        ax.set_ylabel("accuracy (higher is better)")
        ax.set_ylim(-0.02, 1.02)
        _step_axis(ax)
    else:
        _not_measured(ax)
    if has_fd != has_acc:
        missing = "accuracy" if has_fd else "Frechet distance"
        ax.text(
            0.98,
            0.02,
            f"{missing}: not measured",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.45",
            style="italic",
        )


def tradeoff_plot(results: dict[str, Any]) -> Figure:
    """Build the 1x3 speed/quality trade-off figure of a benchmark result.

    ``results`` (as written by the benchmark, one JSON object)::

        {
          "model":   str,   # e.g. "arpg-tiny (12 M params)"
          "machine": str,   # e.g. "NVIDIA H200, bf16" or "CPU, 2 threads"
          "rows": [         # one row per (method, steps, batch) measurement
            {
              "method": "arpg" | "raster" | "random1",
                                       # arpg: random order, several tokens/step;
                                       # raster / random1: 1 token per step
              "steps": int,            # decoding steps (forward passes) per image
              "batch": int,            # images generated together per call
              "images_per_s": float,   # throughput = batch / latency_s
              "latency_s": float,      # wall seconds of one generate call; every
                                       # image of the batch waits this long
              "kv_cache_bytes": int,   # KV cache size at the end of decoding
              "per_layer_cache_bytes": int,  # every layer (self + cross) keeping its own K/V
              "peak_mem_bytes": int,   # peak accelerator (or process) memory
              "accuracy": float | null,  # classifier accuracy on samples, 0..1
              "frechet": float | null    # Frechet distance to reference features
            }, ...
          ]
        }

    Unknown extra keys are ignored; null / missing quality fields are skipped and an
    empty quality panel says "not measured". ARPG rows are drawn as one line per batch
    size; raster / random1 rows as separate markers at their step counts.

    Returns:
        A pyplot-free :class:`matplotlib.figure.Figure`.
    """
    rows = [r for r in results.get("rows", []) if _num(r.get("steps")) is not None]
    fig = new_figure(13.0, 4.2, 100)
    axes = fig.subplots(1, 3)
    head = " · ".join(str(results[k]) for k in ("model", "machine") if results.get(k))
    if head:
        fig.suptitle(head, fontsize=12)
    groups = _series(rows)
    _speed_panel(axes[0], groups, "images_per_s", "images / s (higher is better)", "throughput", legend=True)
    _speed_panel(axes[1], groups, "latency_s", "seconds per call (one generate call)", "latency", legend=False)
    _quality_panel(axes[2], groups, rows)
    for ax in axes:
        if not ax.has_data():
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def tradeoff_figure(results: dict[str, Any]) -> Image.Image:
    """:func:`tradeoff_plot` rendered to an RGB PIL image (see it for the JSON shape)."""
    return figure_to_image(tradeoff_plot(results))


# -- published numbers -----------------------------------------------------------------------------

_FAMILY_COLOURS = {
    "ARPG": "#1f77b4",
    "LlamaGen": "#d62728",
    "RandAR": "#ff7f0e",
    "VAR": "#2ca02c",
    "MaskGIT": "#9467bd",
}

# label offsets (points) and alignment for the PUBLISHED rows, to avoid overlaps
_LABEL_PLACEMENT: dict[tuple[str, int], tuple[int, int, str, str]] = {
    ("ARPG-L", 32): (10, -8, "left", "top"),
    ("ARPG-L", 64): (0, 10, "center", "bottom"),
    ("ARPG-XL", 64): (8, -10, "left", "top"),
    ("ARPG-XXL", 64): (-13, -2, "right", "center"),
    ("RandAR-L", 88): (-13, 4, "right", "bottom"),
    ("LlamaGen-L", 576): (12, 6, "left", "bottom"),
    ("VAR-d16", 10): (12, 6, "left", "bottom"),
    ("MaskGIT", 8): (10, 4, "left", "bottom"),
}


def _published_point(ax: Any, k: int, row: dict[str, Any], seen: set[str]) -> None:
    """One labelled marker (area ~ memory, colour by family, one legend entry per family)."""
    fam = str(row.get("family", row["model"]))
    mem = float(row.get("memory_gb", 1.0))
    ax.scatter(
        [row["images_per_s"]],
        [row["fid"]],
        s=40 + 45 * mem,
        color=_FAMILY_COLOURS.get(fam, f"C{5 + k % 5}"),
        alpha=0.75,
        edgecolors="black",
        linewidths=0.6,
        zorder=3,
        label=None if fam in seen else fam,
    )
    seen.add(fam)
    dx, dy, ha, va = _LABEL_PLACEMENT.get((str(row["model"]), int(row["steps"])), (9, 4, "left", "bottom"))
    ax.annotate(
        f"{row['model']}, {row['steps']} steps\n{mem:g} GB",
        (row["images_per_s"], row["fid"]),
        xytext=(dx, dy),
        textcoords="offset points",
        fontsize=7.5,
        va=va,
        ha=ha,
        zorder=4,
    )


def published_plot(rows: Sequence[dict[str, Any]] | None = None) -> Figure:
    """Scatter of published ImageNet-256 results: images/s (log x) vs FID.

    Marker area grows with peak memory; ARPG points are blue, others by family.
    ``rows`` defaults to :data:`PUBLISHED`.
    """
    rows = list(PUBLISHED if rows is None else rows)
    fig = new_figure(7.6, 4.8, 100)
    ax = fig.add_subplot(1, 1, 1)
    seen: set[str] = set()
    for k, r in enumerate(rows):
        _published_point(ax, k, r, seen)
    ax.set_xscale("log")
    xs = [float(r["images_per_s"]) for r in rows]
    ys = [float(r["fid"]) for r in rows]
    if xs:
        ax.set_xlim(min(xs) / 1.6, max(xs) * 2.6)
        ax.set_ylim(min(0.0, min(ys)), max(ys) * 1.18)
    ax.set_xlabel("throughput, images / s (log scale, higher is better)")
    ax.set_ylabel("FID (lower is better)")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(PUBLISHED_CAPTION + " (batch 64, bf16; marker size ~ memory)", fontsize=10)
    if seen:
        leg = ax.legend(fontsize=8, loc="upper right")
        for handle in leg.legend_handles:
            handle.set_sizes([50])
        leg.set_zorder(5)
    return fig


def published_figure() -> Image.Image:
    """:func:`published_plot` of :data:`PUBLISHED` as an RGB PIL image."""
    return figure_to_image(published_plot())


# -- decoding orders compared ----------------------------------------------------------------------


def orders_figure(results: dict[str, Any]) -> Image.Image:
    """Bar chart of a decoding-order table (``rows`` of ``order``, ``steps``, ``frechet``, ``accuracy``):
    Frechet distance and judge accuracy per order, one group of bars per step count."""
    from matplotlib.figure import Figure  # heavy, optional at import time

    rows = results.get("rows", [])
    orders = list(dict.fromkeys(r["order"] for r in rows))
    steps = sorted({r["steps"] for r in rows})
    fig = Figure(figsize=(8, 3.4), dpi=110)
    ax_fd, ax_acc = fig.subplots(1, 2)
    width = 0.8 / max(1, len(steps))
    x = np.arange(len(orders))

    def value(key: str, order: str, s: int) -> Any:
        """``key`` of the row of (order, s steps); NaN when there is none."""
        return next((r[key] for r in rows if r["order"] == order and r["steps"] == s), np.nan)

    for j, s in enumerate(steps):
        ax_fd.bar(x + j * width, [value("frechet", o, s) for o in orders], width, label=f"{s} steps")
        ax_acc.bar(x + j * width, [100 * value("accuracy", o, s) for o in orders], width, label=f"{s} steps")
    titles = ((ax_fd, "Frechet distance (lower is better)"), (ax_acc, "judge accuracy % (higher is better)"))
    for ax, title in titles:
        ax.set_xticks(x + width * (len(steps) - 1) / 2, orders, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    ax_fd.legend(fontsize=8)
    fig.suptitle(f"decoding orders: {results.get('model', '')}", fontsize=10)
    fig.tight_layout()
    return figure_to_image(fig)


# -- decoding orders as a table --------------------------------------------------------------------

#: FID of ARPG-L on ImageNet 256 by generation order (the paper's table of orders), best first.
PAPER_ORDER_FID = {
    "random": 2.44,
    "raster": 2.49,
    "z-curve": 2.56,
    "alternate": 2.56,
    "spiral-in": 3.71,
    "spiral-out": 4.11,
}
#: The columns of :func:`order_rows`. Seconds per image are those of the row's own decode, at its batch (images
#: per call): a bigger batch costs less per image, so they compare with a trade-off table's "seconds per call"
#: divided by the same batch only.
ORDER_COLUMNS = ["order", "steps", "images", "batch", "accuracy", "Fréchet", "seconds per image", "queries per image"]


def _rounded(v: Any, digits: int) -> float | None:
    v = _num(v) if not isinstance(v, bool) else None
    return None if v is None else round(v, digits)


def order_rows(results: dict[str, Any]) -> list[list[Any]]:
    """The rows of a decoding-order result (``bench --orders`` or the app's Measure) as table rows of
    :data:`ORDER_COLUMNS` (None where a value was not measured or recorded)."""
    return [
        [
            r["order"],
            r["steps"],
            r.get("samples"),
            r.get("batch"),
            _rounded(r.get("accuracy"), 3),
            _rounded(r.get("frechet"), 2),
            _rounded(r.get("seconds_per_image"), 3),
            _rounded(r.get("queries_per_image"), 0),
        ]
        for r in results.get("rows", [])
    ]


def paper_order_fids(orders: Iterable[str] | None = None) -> str:
    """The paper's FID by decoding order (ARPG-L, ImageNet 256) as one line, for ``orders`` (default all)."""
    shown = [o for o in PAPER_ORDER_FID if orders is None or o in set(orders)]
    return " · ".join(f"{o} {PAPER_ORDER_FID[o]}" for o in shown)
