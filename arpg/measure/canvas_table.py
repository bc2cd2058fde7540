"""Markdown tables of the canvas tasks (:func:`arpg.measure.canvas_tasks.measure_canvas_tasks`): a run's
tasks (:func:`task_table`), its sharpness and seams (:func:`detail_table`), and runs of several models
side by side: one table of windowed against whole-canvas decoding for every task (:func:`windows_table`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..windows import DECODINGS

#: The canvas tasks, in table order.
TASKS = ("outpaint", "panorama", "resize lattice", "resize reencode")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _frechet(row: Mapping[str, Any]) -> str:
    """ "12.34 (1.23x)": the Frechet distance and its ratio to plain generation's, when known."""
    if row.get("frechet") is None:
        return "-"
    text = f"{row['frechet']:.2f}" + _ratio(row.get("frechet_ratio"))
    if row.get("frechet_new") is not None:  # a panorama: the windows right of its input only
        text += f"; new windows {row['frechet_new']:.2f}" + _ratio(row.get("frechet_new_ratio"))
    return text


def _ratio(ratio: float | None) -> str:
    return "" if ratio is None else f" ({ratio:.2f}x)"


def _judged(row: Mapping[str, Any]) -> str:
    real = row.get("real_accuracy")
    return _pct(row.get("accuracy")) + ("" if real is None else f" (real {_pct(real)})")


def _psnr(row: Mapping[str, Any]) -> str:
    if row.get("psnr_db") is None:
        return "-"
    base = row.get("psnr_db_bicubic")
    return f"{row['psnr_db']:.2f} dB" + ("" if base is None else f" (bicubic {base:.2f})")


def _rows(res: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(task, decoding, row) of every measured task row, in :data:`TASKS` order."""
    found = res.get("tasks", {})
    names = [t for t in TASKS if t in found] + [t for t in found if t not in TASKS]
    return [(t, d, found[t][d]) for t in names for d in DECODINGS if d in found[t]]


def task_table(res: Mapping[str, Any]) -> str:
    """A run as markdown: task | decoding | judged as the class | Frechet (ratio to plain generation) | PSNR
    | forward passes; plain generation first. "(real ...)": the same windows of the true renders; "-": not
    measured (no true render of that canvas)."""
    lines = [
        "| task | decoding | judged as the class | Frechet (ratio to plain generation) | PSNR | forward passes |",
        "|---|---|---|---|---|---|",
    ]
    gen = res.get("generation")
    if gen:
        lines.append(
            f"| plain generation | - | {_judged(gen)} | {_frechet(gen)} | - | {_num(gen['forward_passes'], '.0f')} |"
        )
    for task, dec, row in _rows(res):
        win = " (winner)" if res["tasks"][task].get("winner") == dec else ""
        lines.append(
            f"| {task} | {dec}{win} | {_judged(row)} | {_frechet(row)} | {_psnr(row)} | "
            f"{_num(row.get('forward_passes'), '.0f')} |"
        )
    return "\n".join(lines)


def _seam(row: Mapping[str, Any], key: str = "seam") -> str:
    """ "1.23 (worst 2.34)": a seam score and the worst within a few pixels of the join, when measured."""
    if row.get(key) is None:
        return "-"
    return f"{row[key]:.2f}" + ("" if row.get(f"{key}_peak") is None else f" (worst {row[f'{key}_peak']:.2f})")


def detail_table(res: Mapping[str, Any]) -> str:
    """What the judge does not see, of a run as markdown: task | decoding | sharpness (of the new part, or of a
    resize beside bicubic's) | seam where the input meets the new part | seam where a panorama's rounds meet
    | PSNR; 1.00 is the true render's (see :mod:`arpg.measure.canvas_tasks`)."""
    lines = [
        "| task | decoding | sharpness (new part; resize: all) | seam at the input's edge | seam between rounds "
        "| PSNR |",
        "|---|---|---|---|---|---|",
    ]
    gen = res.get("generation")
    if gen and gen.get("sharpness") is not None:
        lines.append(f"| plain generation | - | {_num(gen['sharpness'])} | - | - | - |")
    for task, dec, row in _rows(res):
        sharp = _num(row.get("sharpness"))
        if row.get("sharpness_bicubic") is not None:
            sharp += f" (bicubic {row['sharpness_bicubic']:.2f})"
        lines.append(f"| {task} | {dec} | {sharp} | {_seam(row)} | {_seam(row, 'seam_rounds')} | {_psnr(row)} |")
    return "\n".join(lines)


def _cell(res: Mapping[str, Any] | None, task: str, dec: str) -> Mapping[str, Any] | None:
    """The row of ``task`` and decoding ``dec`` in a result, or None."""
    rows = (res or {}).get("tasks", {}).get(task)
    return rows.get(dec) if rows else None


def _mark(res: Mapping[str, Any] | None, task: str, dec: str, text: str) -> str:
    """``text`` in bold for the decoding that won ``task``."""
    rows = (res or {}).get("tasks", {}).get(task) or {}
    return f"**{text}**" if rows.get("winner") == dec and text != "-" else text


def _has_frechet(res: Mapping[str, Any] | None) -> bool:
    """Whether any task row of a run has a Frechet distance (a run with true renders of some canvas)."""
    rows = (res or {}).get("tasks", {}).values()
    return any(isinstance(r, Mapping) and r.get("frechet") is not None for t in rows for r in t.values())


def _side_cells(res: Mapping[str, Any] | None, task: str, dec: str, frechet: bool) -> list[str]:
    """One run's cells of a row of :func:`windows_table`: judged as the class, Frechet (when shown), passes."""
    row = _cell(res, task, dec)
    cells = [_mark(res, task, dec, _pct(row.get("accuracy")) if row else "-")]
    if frechet:
        cells.append(_frechet(row) if row else "-")
    return [*cells, _num(row.get("forward_passes"), ".0f") if row else "-"]


def windows_table(sides: Sequence[tuple[str, Mapping[str, Any] | None]]) -> str:
    """Windowed against whole-canvas decoding for every task, runs side by side (``sides``: (name, a
    :func:`~arpg.measure.canvas_tasks.measure_canvas_tasks` result or None)): judged as the class (the winner
    of each task in bold), the Frechet ratio (for a run that has true renders) and forward passes; "-" where a
    side was not measured."""
    shown = [(name, res, _has_frechet(res)) for name, res in sides]
    head = ["task", "decoding"]
    for name, _, frechet in shown:
        head += [f"{name}: judged as the class", *([f"{name}: Frechet (ratio)"] if frechet else []), f"{name}: passes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task in TASKS:
        for dec in DECODINGS:
            cells = [task, dec] + [c for _, res, frechet in shown for c in _side_cells(res, task, dec, frechet)]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _sources(sides)]
    return "\n".join(lines)


def _sources(sides: Sequence[tuple[str, Mapping[str, Any] | None]]) -> str:
    """One line naming each side's model, trials and steps."""
    parts = []
    for name, res in sides:
        if res:
            st = res.get("settings", res)  # a run of scripts/bench_windows.py before the settings section
            parts.append(f"{name}: {res.get('model')}, trials {st.get('trials')}, {st.get('steps')} steps")
    return "; ".join(parts)


def missing_ratios(res: Mapping[str, Any]) -> list[str]:
    """The tasks of a run with a Frechet distance but no ratio: plain generation was not measured at their
    sample sizes."""
    found = res.get("tasks", {})
    return sorted(
        {
            t
            for t, rows in found.items()
            for d in DECODINGS
            if rows.get(d, {}).get("frechet") is not None and rows[d].get("frechet_ratio") is None
        }
    )


def canvas_text(res: Mapping[str, Any], beside: Sequence[tuple[str, Mapping[str, Any] | None]] = ()) -> str:
    """Everything a canvas-task run prints: its tables, then windowed against whole beside other runs
    (``beside``: (name, result) pairs), and what is missing for the ratios."""
    name = res.get("settings", {}).get("data") or res.get("model")
    text = [
        f"{res['model']} on {res.get('machine')}\n",
        task_table(res),
        "\nSharpness and seams against the true renders (1.00: as the truth):\n",
        detail_table(res),
        "\nWindowed against whole-canvas decoding:\n",
        windows_table([(name, res), *beside]),
    ]
    missing = missing_ratios(res)
    if missing:
        text.append(
            f"\nno ratio for {', '.join(missing)}: plain generation was not measured at their sample sizes; "
            "measure --parts generation with the same --trials"
        )
    return "\n".join(text)
