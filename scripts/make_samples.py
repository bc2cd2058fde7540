"""A grid of generated samples, one row per class, for a model card in the README.

    python scripts/make_samples.py                   # digits -> docs/examples/samples.png
    python scripts/make_samples.py --model scenes    # scenes -> docs/examples/scenes_samples.png

Row ``c`` is ``--per-class`` images of class ``c`` from one ``generate`` call with seed ``c`` at the
model's default sampling settings (``--steps`` overrides the step count), so a rerun draws the same
images on the same machine and dtype.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from arpg.model_flags import model_pipeline
from arpg.pipeline import Pipeline
from arpg.viz.frames import image_grid

DEFAULT_OUT = {"digits": "docs/examples/samples.png", "scenes": "docs/examples/scenes_samples.png"}


def samples_grid(pipe: Pipeline, per_class: int = 8, steps: int = 32) -> Image.Image:
    """``per_class`` samples of every class of ``pipe`` at ``steps`` steps, a row per class."""
    images = []
    for c in range(len(pipe.class_names)):
        images.extend(pipe.generate([c] * per_class, pipe.defaults.replace(steps=steps), seed=c).images)
    return image_grid(images, ncols=per_class)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="digits", help="digits, scenes or a folder of arpg/vq/judge weights")
    p.add_argument("--per-class", type=int, default=8)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--out", default=None, help="the PNG (default: docs/examples/samples.png or scenes_samples.png)")
    a = p.parse_args()
    out = Path(a.out or DEFAULT_OUT.get(a.model, "samples.png"))
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        pipe = model_pipeline(a.model)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    samples_grid(pipe, a.per_class, a.steps).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
