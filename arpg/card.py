"""A model's card: what its JSON and its folder say about it, read once into one typed record.

The JSON beside a model's weights (:func:`arpg.sidecar.read_sidecar`) may name the data set the model
learnt (``"data"``), its decodings (``"decoding"``), its resolution change (``"resize"``) and how far a
preview's training was (``"preview"``); a model folder may hold ``examples/examples.json``: per task
(``outpaint``, ``panorama``, ``resize``, ...), rows of an image in that folder, its class and the
task's settings, e.g. ``{"image": "sea_1.png", "class": "sea", "index": 1, "side": "right", "times": 4}``
(``index``: the held-out image of the data set that the PNG renders, so a test can check it).
Everything model-specific the app and the CLI show (class names, examples, default decodings) comes
from here, never from a model's name.  Sampling defaults stay with the model's family
(:data:`arpg.pipeline.SAMPLERS`), which knows its presets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.sets import DATASETS
from .options import DEFAULT_DECODING, ResizeDefaults, check_decodings, check_resize
from .sidecar import read_sidecar, sidecar_path
from .validation import show

EXAMPLES_FOLDER = "examples"
EXAMPLES_FILE = "examples.json"
#: The keys of an example row that are not the task's settings.
_ROW_KEYS = ("image", "class", "index")


@dataclass(frozen=True)
class Example:
    """One example row of a task: an image (a PNG path), its class name and the task's settings by name."""

    image: Path
    cls: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    index: int | None = None  # the held-out image of the model's data set that ``image`` renders

    def row(self, keys: tuple[str, ...]) -> list[Any]:
        """``[image path, class, *settings in the order of keys]`` (a setting not given: None)."""
        return [str(self.image), self.cls, *(self.settings.get(k) for k in keys)]


@dataclass(frozen=True)
class ModelCard:
    """What a model's JSON and folder say (see the module's docstring)."""

    data: str | None = None  # the data set a model of this project learnt (arpg.data.DATASETS), else None
    class_names: tuple[str, ...] = ()
    decodings: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DECODING))
    resize: ResizeDefaults = field(default_factory=ResizeDefaults)
    preview: tuple[int, int] | None = None  # (step, steps) of a preview packed mid-training
    examples: Mapping[str, tuple[Example, ...]] = field(default_factory=dict)

    def examples_for(self, task: str) -> tuple[Example, ...]:
        """The example rows of ``task`` (none when the card has none)."""
        return self.examples.get(task, ())


def imagenet_class_names(assets: Path) -> list[str]:
    """The 1000 ImageNet class names (``assets/imagenet_classes.txt``), else "class <i>"."""
    path = assets / "imagenet_classes.txt"
    if path.exists():
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(names) == 1000:
            return names
    return [f"class {i}" for i in range(1000)]


def class_names_for(num_classes: int, data: str | None, assets: Path) -> list[str]:
    """Readable class names: the data set's (``data``), ImageNet's for 1000 classes, the digits' for 10 (a
    model trained here before its JSON named its data set), else "class <i>"."""
    if data is not None:
        names = list(DATASETS[data].CLASS_NAMES)
    elif num_classes == 1000:
        names = imagenet_class_names(assets)
    elif num_classes == len(DATASETS["digits"].CLASS_NAMES):
        names = list(DATASETS["digits"].CLASS_NAMES)
    else:
        names = []
    return names if len(names) == num_classes else [f"class {i}" for i in range(num_classes)]


def _section(meta: Mapping[str, Any], key: str, where: Path) -> dict[str, Any]:
    section = meta.get(key)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError(f'{where}: "{key}" must be an object of {key} options, got {show(section)}')
    return section


def _preview(meta: Mapping[str, Any]) -> tuple[int, int] | None:
    where = meta.get("preview")
    if isinstance(where, dict) and {"step", "steps"} <= set(where):
        return int(where["step"]), int(where["steps"])
    return None


def read_examples(folder: Path) -> dict[str, tuple[Example, ...]]:
    """The rows of ``folder/examples/examples.json`` by task ({} when there is no such file); ``ValueError``
    (one line naming the file) when it is malformed."""
    path = folder / EXAMPLES_FOLDER / EXAMPLES_FILE
    if not path.is_file():
        return {}
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
        return {task: tuple(_example(path.parent, row) for row in rows) for task, rows in tasks.items()}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a table of example rows by task ({type(exc).__name__}: {exc})") from None


def _example(folder: Path, row: Mapping[str, Any]) -> Example:
    settings = {k: v for k, v in row.items() if k not in _ROW_KEYS}
    index = row.get("index")
    return Example(folder / str(row["image"]), str(row["class"]), settings, None if index is None else int(index))


def read_card(
    weights: str | Path | None,
    num_classes: int | None,
    assets: Path,
    examples: Path | None = None,
    default_data: str | None = None,
) -> ModelCard:
    """The card of the model whose weights are ``weights`` (its JSON read once; None: no JSON) with
    ``num_classes`` classes (None: as many as its JSON says); examples from ``examples`` (a model folder;
    default: the weights' folder); ``default_data``: the data set when the JSON names none (a model
    trained here before JSONs named it)."""
    meta = read_sidecar(weights) if weights is not None else {}
    where = sidecar_path(weights) if weights is not None else Path("<no JSON>")
    if num_classes is None:
        num_classes = meta.get("num_classes", 0) if isinstance(meta.get("num_classes"), int) else 0
    data = meta.get("data", default_data)
    data = data if isinstance(data, str) and data in DATASETS else None
    decodings = _section(meta, "decoding", where)
    resize = _section(meta, "resize", where)
    folder = examples if examples is not None else Path(weights).parent if weights is not None else None
    return ModelCard(
        data=data,
        class_names=tuple(class_names_for(num_classes, data, assets)),
        decodings={**DEFAULT_DECODING, **check_decodings(decodings, f'{where}: "decoding"')},
        resize=check_resize(resize, f'{where}: "resize"') if resize else ResizeDefaults(),
        preview=_preview(meta),
        examples=read_examples(folder) if folder is not None else {},
    )
