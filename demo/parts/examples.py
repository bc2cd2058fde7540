"""The tabs' example rows: digit images for the digits model, and each model's own examples from its card.

Digits (Inpaint; Outpaint and Resolution when no model with its own examples is offered):
``assets/examples/digit_<d>.png``, shown while the session's model has the digit classes.  A model
whose card lists examples for a task (``examples/examples.json`` in its folder, :mod:`arpg.card`) gets
a box of them in that task's tab whenever it is offered: each row is an image, its class, the task's
settings and the model's name, so a click also switches the session's Model dropdown to it (the
switch after every example click keeps the class and amount the row chose:
:meth:`ModelChoice.after_example`, :meth:`ModelChoice.follow`).

Example images are small PNGs in the model's folder; a row's ``index`` says which held-out image of the
model's data set it renders.  Files rather than renders at start-up: the app writes nothing when it
starts (its temporary folder is purged while it runs), the page and the repository show the same
pictures, and gradio serves them like the digit examples.  ``python -m demo.parts.examples`` writes
them again; a test checks that they are exactly the renders.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from arpg import zoo
from arpg.card import Example, ModelCard, read_card
from arpg.data.sets import dataset

from .model_choice import ModelChoice

log = logging.getLogger(__name__)

EXAMPLES = zoo.ASSETS / "examples"
#: The attribute of a ``gr.Examples`` naming the endpoint its rows run (:mod:`demo.instant` shows the result
#: of a click).
TASK_ATTR = "arpg_task"
#: The endpoint an example box runs, by the tab named first in its elem_id. Inpaint's rows only load an image:
#: the mask is still to be painted.
TASK_OF_BOX = {"outpaint": "outpaint", "panorama": "panorama", "resolution": "resize"}


def render(card: ModelCard, example: Example) -> np.ndarray:
    """The held-out image of ``card``'s data set that ``example`` shows: (H, W, 3) uint8, the same on every
    machine (``ValueError`` for a row without an index or a card without a data set)."""
    if example.index is None or card.data is None:
        raise ValueError(f"{example.image.name}: an example renders a held-out image only with an index and data set")
    data = dataset(card.data)
    label = list(card.class_names).index(example.cls)
    return data.sample([example.index], data.HELDOUT_SEED, labels=np.array([label]))[0][0]


def rendered_examples(card: ModelCard) -> list[Example]:
    """Every distinct example of ``card`` that renders a held-out image, in the card's order."""
    rows = [ex for task in card.examples.values() for ex in task if ex.index is not None]
    return list({ex.image: ex for ex in rows}.values())


def write_examples(card: ModelCard, folder: str | Path | None = None) -> list[Path]:
    """Render every example of ``card`` into ``folder`` (default: where its card says) as PNG; the paths."""
    out = []
    for ex in rendered_examples(card):
        path = Path(folder) / ex.image.name if folder is not None else ex.image
        Image.fromarray(render(card, ex)).save(path, optimize=True)
        out.append(path)
    return out


def example_box(
    choice: ModelChoice, inputs: Sequence[Any], task: str, keys: tuple[str, ...], box: str
) -> list[gr.Examples]:
    """A box of examples for ``inputs`` (image, class, then the settings named ``keys``), the Model dropdown
    last, for every offered model whose card has examples of ``task``; the boxes built (none: no such model).
    Each box's elem_id is ``<box>-<model key>-examples``."""
    built = []
    for name, key, card in choice.store.cards():
        rows = [[*ex.row(keys), name] for ex in card.examples_for(task)]
        missing = [row[0] for row in rows if not Path(row[0]).is_file()]
        if not rows or missing:  # a checkout without the PNGs: no examples rather than a broken page
            if missing:
                log.warning("examples missing (python -m demo.parts.examples writes them): %s", ", ".join(missing))
            continue
        elem_id = f"{box}-{key}-examples"
        examples = gr.Examples(rows, [*inputs, choice.dropdown], label=f"Examples: {key}", elem_id=elem_id)
        setattr(examples, TASK_ATTR, TASK_OF_BOX.get(box))
        # The table shows a dropdown's value only when it is one of the choices the dropdown was built with
        # (the first model's classes): give the class column this model's names (display only).
        examples.dataset.component_props[1]["choices"] = [(n, n) for n in card.class_names]
        choice.after_example(examples)
        built.append(examples)
    return built


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


def registered_cards() -> list[ModelCard]:
    """The cards of the registered models trained here whose weights are there."""
    folders = [e.folder for e in zoo.trained_here() if e.folder is not None and not zoo.missing_files(e.folder)]
    return [read_card(f / "arpg.safetensors", None, zoo.ASSETS) for f in folders]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for card in registered_cards():
        for written in write_examples(card):
            log.info("wrote %s", written)
