"""Example images of windowed against whole-canvas decoding, one row per task, for the README.

    python scripts/make_windows_examples.py                          # digits -> docs/examples/windows_digits.png
    python scripts/make_windows_examples.py --model scenes           # scenes -> docs/examples/windows_scenes.png
    python scripts/make_windows_examples.py --model runs/scenes/preview --out /tmp/preview.png

The rows, the input and the true renders: :mod:`arpg.measure.canvas_examples`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from arpg.measure.canvas_examples import example_sheet
from arpg.model_flags import model_pipeline

#: The held-out image pictured, by data set (default 0): a forest scene shows the landscapes best.
INDEX = {"scenes": 3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits", help="digits, scenes or a folder of arpg/vq/judge weights")
    ap.add_argument("--out", type=Path, default=None, help="default: docs/examples/windows_<data>.png")
    ap.add_argument("--index", type=int, default=None, help="the held-out image (default: 3 for scenes, else 0)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    pipe = model_pipeline(a.model)
    out = a.out or Path("docs/examples") / f"windows_{pipe.data}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    index = a.index if a.index is not None else INDEX.get(pipe.data, 0)
    example_sheet(pipe, index, a.seed).save(out)
    print(f"wrote {out} ({pipe.name})")


if __name__ == "__main__":
    main()
