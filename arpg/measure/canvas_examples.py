"""One held-out input through every canvas task, windowed and whole, as a picture: one row per task.

Each row is one task of :mod:`arpg.measure.canvas_tasks` (outpaint by 8 cells to the right, panorama to 4x
the width, resolution x2 with lattice and with re-encode) on the same held-out image of the model's data set
(split ``HELDOUT_SEED +`` :data:`SPLIT`), decoded in windows of a trained size and as one whole canvas with
the same seed. When the data set renders every task's canvas (procedural landscapes do; square digits do
not), a last column shows the true render of the same canvas.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..pipeline import Pipeline
from ..viz.draw import font
from .canvas_tasks import canvas_of, run_trial, source_of

HEIGHT = 128  # display height of every picture, px
SPLIT = 5  # offset from the data set's HELDOUT_SEED of the pictured image
#: (title, task of :func:`~arpg.measure.canvas_tasks.run_trial`, its part)
ROWS = (
    ("outpaint: 8 cells to the right", "outpaint", "outpaint"),
    ("panorama: 4x the width", "panorama", "panorama"),
    ("resolution x2, lattice", "resize lattice", "resize"),
    ("resolution x2, re-encode", "resize reencode", "resize"),
)


def _shown(img: np.ndarray) -> Image.Image:
    """``img`` at :data:`HEIGHT` px high, pixels kept sharp."""
    im = Image.fromarray(img)
    return im.resize((im.width * HEIGHT // im.height, HEIGHT), Image.NEAREST)


def _row(title: str, cells: list[tuple[str, np.ndarray]]) -> Image.Image:
    """One task: its title, then each picture under its caption."""
    pics = [(caption, _shown(img)) for caption, img in cells]
    width = 8 + sum(p.width + 8 for _, p in pics)
    canvas = Image.new("RGB", (width, HEIGHT + 46), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 4), title, fill=(10, 10, 10), font=font(14))
    x = 8
    for caption, pic in pics:
        draw.text((x, 24), caption, fill=(70, 70, 70), font=font(11))
        canvas.paste(pic, (x, 40))
        x += pic.width + 8
    return canvas


def example_rows(pipe: Pipeline, index: int = 0, seed: int = 0) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """(title, [(caption, image), ...]) of every task on held-out image ``index``, with ``seed`` and the
    model's sampling defaults: the input, windowed, whole and, where every canvas has one, the true render."""
    source = source_of(pipe, SPLIT)
    imgs, labels = source.images("outpaint", index + 1)
    image, label = imgs[index], int(labels[index])
    canvases = {part: canvas_of(part, source.side, pipe.factor) for _, _, part in ROWS}
    truth = all(source.renders(c) for c in canvases.values())
    rows = []
    for title, task, part in ROWS:
        cells = [("input", image)]
        for decoding in ("windowed", "whole"):
            cells.append((decoding, run_trial(pipe, task, image, label, seed, pipe.defaults, decoding)[0]))
        if truth:  # the same image on the task's canvas
            cells.append(("real render", source.images(part, index + 1, canvases[part])[0][index]))
        rows.append((f"{title} ({pipe.class_names[label]})", cells))
    return rows


def example_sheet(pipe: Pipeline, index: int = 0, seed: int = 0) -> Image.Image:
    """The rows of :func:`example_rows` drawn and stacked."""
    rows = [_row(title, cells) for title, cells in example_rows(pipe, index, seed)]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    return sheet
