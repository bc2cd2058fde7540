"""Example images of windowed against whole-canvas decoding, one row per task, for the README.

    python scripts/make_windows_examples.py                          # digits -> docs/examples/windows_digits.png
    python scripts/make_windows_examples.py --model scenes           # scenes -> docs/examples/windows_scenes.png
    python scripts/make_windows_examples.py --model runs/scenes/preview --out /tmp/preview.png

Each row is one task of ``scripts/bench_windows.py`` / ``scripts/bench_scenes.py`` on one held-out
input: outpaint by 8 cells to the right, panorama to 4x the width, resolution x2 (lattice and
re-encode), decoded in windows of a trained size and as one whole canvas, with the same seed.
For scenes a last column shows the real render of the same canvas (the scenes are procedural).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from arpg import tasks
from arpg.commands import model_pipeline
from arpg.data import digits, scenes
from arpg.pipeline import Pipeline
from arpg.viz.draw import font

HEIGHT = 128  # display height of every picture, px
ROWS = (  # (title, task, keyword arguments, the real canvas: (H, W, scale))
    ("outpaint: 8 cells to the right", tasks.outpaint, {"right": 8}, (64, 96, 1.0)),
    ("panorama: 4x the width", tasks.panorama, {"times": 4}, (64, 256, 1.0)),
    ("resolution x2, lattice", tasks.resize, {"scale": 2.0, "strategy": "lattice"}, (128, 128, 2.0)),
    ("resolution x2, re-encode", tasks.resize, {"scale": 2.0, "strategy": "reencode"}, (128, 128, 2.0)),
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


def examples(pipe: Pipeline, seed: int = 0) -> Image.Image:
    """Every task's row for one held-out input of the model's data set, stacked."""
    if pipe.data == "scenes":
        labels, seeds = scenes.scene_of([3], scenes.HELDOUT_SEED + 5)
        image, label = scenes.render_batch(labels, seeds, 64, 64)[0], int(labels[0])
    else:
        imgs, labs = digits.sample(range(1), seed=digits.HELDOUT_SEED + 5, style=digits.GENERATOR_STYLE)
        image, label, seeds = imgs[0], int(labs[0]), None
    rows = []
    for title, task, kw, (h, w, scale) in ROWS:
        cells = [("input", image)]
        for decoding in ("windowed", "whole"):
            res = task(pipe, image, label, seed=seed, decoding=decoding, **kw)
            cells.append((decoding, res.image))
        if seeds is not None:  # the same scene on the task's canvas
            cells.append(("real render", scenes.render_batch(labels, seeds, h, w, scale)[0]))
        rows.append(_row(f"{title} ({pipe.class_names[label]})", cells))
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits", help="digits, scenes or a folder of arpg/vq/judge weights")
    ap.add_argument("--out", type=Path, default=None, help="default: docs/examples/windows_<data>.png")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    pipe = model_pipeline(a.model)
    out = a.out or Path("docs/examples") / f"windows_{pipe.data}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    examples(pipe, a.seed).save(out)
    print(f"wrote {out} ({pipe.name})")


if __name__ == "__main__":
    main()
