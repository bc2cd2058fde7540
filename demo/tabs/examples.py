"""The tabs' example rows: digit images for the digits model, held-out scene renders for the scenes model.

Digits (Inpaint; Outpaint and Resolution when no scenes model is offered): ``assets/examples/digit_<d>.png``,
shown while the session's model has the digit classes.  Scenes (Outpaint's Extend and Panorama,
Resolution, whenever a scenes model is offered): each row is an image, its class, the task's
settings and the scenes model's name, so a click also switches the session's Model dropdown to it
(the switch after every example click keeps the class and amount the row chose:
:meth:`ModelChoice.after_example`, :meth:`ModelChoice.follow`).

The scene images are small PNGs, ``assets/examples/scene_<class>_<index>.png``: image ``index`` of
the held-out split (:data:`arpg.train.scenes.HELDOUT_SEED`) rendered as that class, 64x64 px.
Files rather than renders at start-up: the app writes nothing when it starts (its temporary folder
is purged while it runs), the page and the repository show the same pictures, and gradio serves
them like the digit examples.  ``python -m demo.tabs.examples`` writes them again; a test checks
that they are exactly the renders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from arpg.pipeline import ASSETS
from arpg.train import scenes

from .instant import TASK_ATTR
from .models import ModelChoice

log = logging.getLogger(__name__)

EXAMPLES = ASSETS / "examples"
#: The endpoint an example box runs, by the tab named first in its elem_id (:mod:`demo.tabs.instant`
#: shows the result of a click). Inpaint's rows only load an image: the mask is still to be painted.
TASK_OF_BOX = {"outpaint": "outpaint", "panorama": "panorama", "resolution": "resize"}


@dataclass(frozen=True)
class Scene:
    """A held-out scene: image ``index`` of :data:`scenes.HELDOUT_SEED`'s split, as class ``cls``."""

    cls: str  # a name of scenes.CLASS_NAMES
    index: int

    @property
    def path(self) -> Path:
        """Its PNG under :data:`EXAMPLES`."""
        return EXAMPLES / f"scene_{self.cls.replace(' ', '-')}_{self.index}.png"

    def render(self) -> np.ndarray:
        """The scene at 64x64 px: (64, 64, 3) uint8, the same on every machine."""
        label = scenes.CLASS_NAMES.index(self.cls)
        return scenes.sample([self.index], scenes.HELDOUT_SEED, labels=np.array([label]))[0][0]


#: Per task: (scene, the task's settings after image and class, in the order of its inputs).
#: Extend: directions, amount (cells); right by 8 cells is the issue's measured outpaint (64 -> 96 px wide).
EXTEND: tuple[tuple[Scene, list[str], int], ...] = (
    (Scene("mountains", 3), ["right"], 8),
    (Scene("city at night", 1), ["right"], 8),
    (Scene("lake", 2), ["left"], 8),
)
#: Panorama: side, times as long (4: the issue's measured 64x256 panorama).
PANORAMA: tuple[tuple[Scene, str, int], ...] = (
    (Scene("sea", 1), "right", 4),
    (Scene("desert dunes", 3), "right", 4),
    (Scene("forest", 4), "left", 3),
)
#: Resolution: the scene alone; its scale and strategy are the model's own (``Pipeline.resize_defaults``), set by
#: the model switch that follows a click, so the examples show what the tab does by default.
RESIZE: tuple[tuple[Scene], ...] = (
    (Scene("sunset clouds", 2),),
    (Scene("flower meadow", 0),),
    (Scene("snowfield", 1),),
)
ALL_SCENES = tuple(dict.fromkeys(row[0] for row in (*EXTEND, *PANORAMA, *RESIZE)))


def write_scene_examples(folder: str | Path | None = None) -> list[Path]:
    """Render every example scene into ``folder`` (default :data:`EXAMPLES`) as PNG; returns the paths."""
    out = []
    for scene in ALL_SCENES:
        path = Path(folder) / scene.path.name if folder is not None else scene.path
        Image.fromarray(scene.render()).save(path, optimize=True)
        out.append(path)
    return out


def scene_rows(specs: Sequence[tuple], model: str) -> list[list[Any]]:
    """Example rows ``[image path, class, *settings, model]`` for ``specs`` (:data:`EXTEND`, ...)."""
    return [[str(scene.path), scene.cls, *settings, model] for scene, *settings in specs]


def scene_box(
    choice: ModelChoice, inputs: Sequence[Any], specs: Sequence[tuple], label: str, elem_id: str
) -> gr.Examples | None:
    """The scene examples of ``specs`` for ``inputs`` (image, class, then the settings), the Model
    dropdown last; None (nothing built) when no scenes model is offered."""
    name = choice.scenes_name
    if name is None:
        return None
    missing = [str(s.path) for s, *_ in specs if not s.path.is_file()]
    if missing:  # a checkout without the PNGs: no examples rather than a broken page
        log.warning("scene examples missing (python -m demo.tabs.examples writes them): %s", ", ".join(missing))
        return None
    examples = gr.Examples(scene_rows(specs, name), [*inputs, choice.dropdown], label=label, elem_id=elem_id)
    setattr(examples, TASK_ATTR, TASK_OF_BOX.get(elem_id.split("-")[0]))
    # The table shows a dropdown's value only when it is one of the choices the dropdown was built with
    # (the first model's classes): give the class column the scenes' names (display only).
    examples.dataset.component_props[1]["choices"] = [(n, n) for n in scenes.CLASS_NAMES]
    choice.after_example(examples)
    return examples


def digit_rows(class_names: list[str] | None) -> list[list[Any]]:
    """Example inputs ``[path, class name]``: the digit images, labelled with ``class_names``
    (the ten digit classes of a model; none without them)."""
    if not class_names or len(class_names) != 10:
        return []
    return [[str(path), class_names[int(path.stem.split("_")[-1])]] for path in sorted(EXAMPLES.glob("digit_*.png"))]


def digit_box(choice: ModelChoice, inputs: list[Any], label: str, elem_id: str) -> None:
    """The digit examples for ``inputs`` (image, class), shown while the session's model has the
    classes they are labelled with (see :meth:`ModelChoice.example_classes`)."""
    names = choice.example_classes()
    rows = digit_rows(names)
    if not rows:
        return
    with gr.Column(visible=list(choice.first.class_names) == names) as box:
        examples = gr.Examples(rows, inputs, label=label, elem_id=elem_id)
        setattr(examples, TASK_ATTR, TASK_OF_BOX.get(elem_id.split("-")[0]))
        choice.after_example(examples)
    choice.follow([box], lambda p: [gr.update(visible=list(p.class_names) == names)])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for written in write_scene_examples():
        log.info("wrote %s", written)
