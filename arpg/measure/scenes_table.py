"""Markdown tables of the canvas tasks: the scenes model's (:func:`arpg.measure.scenes_tasks.measure_scenes_tasks`),
its sharpness and seams (:func:`detail_table`), and, beside them, the digits model's
(``scripts/bench_windows.py``, ``docs/benchmarks/windows.json``): one table of windowed against
whole-canvas decoding for every task, on scenes and on digits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..windows import DECODINGS

#: The tasks of both benchmarks, in table order (the names of ``windows.json``).
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


def scenes_table(res: Mapping[str, Any]) -> str:
    """A scenes run as markdown: task | decoding | judged as the class | Frechet (ratio to plain generation)
    | PSNR | forward passes; plain generation first. "(real ...)": the same windows of the real renders."""
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
    """What the judge does not see, of a scenes run as markdown: task | decoding | sharpness (of the new part,
    or of a resize beside bicubic's) | seam where the input meets the new part | seam where a panorama's
    rounds meet | PSNR; 1.00 is the true render's (see :mod:`arpg.measure.scenes_tasks`)."""
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


def windows_table(scenes: Mapping[str, Any] | None, digits: Mapping[str, Any] | None) -> str:
    """Windowed against whole-canvas decoding for every task, the scenes model (a :func:`measure_scenes_tasks`
    result) beside the digits model (``docs/benchmarks/windows.json``): judged as the class (the winner of
    each task in bold), the scenes' Frechet ratio, and forward passes; "-" where a side was not measured."""
    lines = [
        "| task | decoding | scenes: judged as the class | scenes: Frechet (ratio) | scenes: passes "
        "| digits: judged as the class | digits: passes |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in TASKS:
        for dec in DECODINGS:
            s, d = _cell(scenes, task, dec), _cell(digits, task, dec)
            s_acc = _mark(scenes, task, dec, _pct(s.get("accuracy")) if s else "-")
            d_acc = _mark(digits, task, dec, _pct(d.get("accuracy")) if d else "-")
            lines.append(
                f"| {task} | {dec} | {s_acc} | {_frechet(s) if s else '-'} | "
                f"{_num(s.get('forward_passes'), '.0f') if s else '-'} | {d_acc} | "
                f"{_num(d.get('forward_passes'), '.0f') if d else '-'} |"
            )
    lines.append("")
    lines.append(_sources(scenes, digits))
    return "\n".join(lines)


def _sources(scenes: Mapping[str, Any] | None, digits: Mapping[str, Any] | None) -> str:
    """One line naming each side's model, trials and steps."""
    parts = []
    if scenes:
        st = scenes.get("settings", {})
        parts.append(f"scenes: {scenes.get('model')}, trials {st.get('trials')}, {st.get('steps')} steps")
    if digits:
        parts.append(f"digits: {digits.get('model')}, {digits.get('trials')} trials, {digits.get('steps')} steps")
    return "; ".join(parts)
