"""Every model the project knows, one typed entry each: the registry behind ``--model``, ``--weights``,
``$ARPG_WEIGHTS``, the app's model store and its Model dropdown.

One record, :class:`ModelEntry`, for two kinds of model:

* **trained here** (``folder``): a folder of ``arpg.safetensors`` and ``vq.safetensors`` (with their JSON
  configs, and optionally ``judge.safetensors`` and ``examples/``), e.g. the digits model in
  ``assets/models``; ``env`` names a variable that may point the entry at another folder (a preview
  packed mid-training). What the model is (data set, classes, sampling defaults, decodings, examples)
  is read from the folder by :func:`arpg.card.read_card`, never from the entry's name.
* **released** (``weights``): an image model's file on the hub and the tokenizer it was trained with.

Adding a model trained here is one folder plus one entry in :data:`MODELS` (:func:`register`); a new
family adds its module and its entries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"  # a link to the repository's assets/ (package data)
#: The files every model folder holds (``judge.safetensors`` is optional).
MODEL_FILES = ("arpg.safetensors", "vq.safetensors")
JUDGE_FILE = "judge.safetensors"
#: The tokenizers released models pair with, by short name.
TOKENIZERS: dict[str, str] = {"VQ-16": "hf://FoundationVision/LlamaGen/vq_ds16_c2i.pt"}


@dataclass(frozen=True)
class ModelEntry:
    """One model of the registry (see the module's docstring); ``name`` is what every flag and link takes."""

    name: str
    family: str = "arpg"
    folder: Path | None = None  # trained here: its folder
    env: str | None = None  # trained here: a variable that may name another folder for it
    weights: str | None = None  # released: the image model's file (hf://<org>/<repo>/<file>)
    tokenizer: str | None = None  # released: the tokenizer's file, or a name of TOKENIZERS
    recipe: str | None = None  # trained here: the training recipe that makes it (default: its name)

    def __post_init__(self) -> None:
        if (self.folder is None) == (self.weights is None):
            raise ValueError(f"model {self.name!r}: give either a folder (trained here) or weights (released)")

    @property
    def trained_here(self) -> bool:
        return self.folder is not None

    def folder_now(self) -> Path | None:
        """Where this model's files are now: the folder named by :attr:`env` when that is set, else :attr:`folder`."""
        named = os.environ.get(self.env, "").strip() if self.env else ""
        return Path(named).expanduser() if named else self.folder

    def tokenizer_spec(self) -> str | None:
        """The released tokenizer's file (a name of :data:`TOKENIZERS` expanded)."""
        return TOKENIZERS.get(self.tokenizer or "", self.tokenizer)

    def title(self, preview: tuple[int, int] | None = None) -> str:
        """What the app's Model dropdown shows (:func:`title`), or the released model's name."""
        return title(self.name, preview) if self.trained_here else self.name


def title(name: str, preview: tuple[int, int] | None = None) -> str:
    """The name shown for a model trained here: "shipped <name> model", or "<name> model (preview, step a
    of b)" for a preview packed mid-training."""
    if preview is not None:
        return f"{name} model (preview, step {preview[0]} of {preview[1]})"
    return f"shipped {name} model"


#: Every model, by name (the order is the app's and the help texts' order).
MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add ``entry`` to :data:`MODELS` (``ValueError`` when its name is taken, in any case)."""
    if find(entry.name) is not None:
        raise ValueError(f"a model named {entry.name!r} is registered already")
    MODELS[entry.name] = entry
    return entry


def find(name: str | None) -> ModelEntry | None:
    """The entry named ``name`` (any case), or None."""
    key = (name or "").strip().lower()
    return next((e for e in MODELS.values() if e.name.lower() == key), None)


def entry(name: str) -> ModelEntry:
    """The entry named ``name`` (any case); ``ValueError`` naming the choices for an unknown one."""
    found = find(name)
    if found is None:
        raise ValueError(f"unknown model {str(name)[:80]!r}; choose from {', '.join(MODELS)}")
    return found


def trained_here() -> list[ModelEntry]:
    """The models trained by this project, in registry order."""
    return [e for e in MODELS.values() if e.trained_here]


def released() -> list[ModelEntry]:
    """The released models, in registry order."""
    return [e for e in MODELS.values() if not e.trained_here]


def by_title(title: str) -> ModelEntry | None:
    """The model trained here whose plain :meth:`ModelEntry.title` is ``title`` (e.g. "shipped scenes model")."""
    return next((e for e in trained_here() if e.title() == title), None)


def missing_files(folder: str | Path) -> list[str]:
    """The names of :data:`MODEL_FILES` that ``folder`` lacks (none: it holds a model)."""
    return [n for n in MODEL_FILES if not (Path(folder) / n).is_file()]


def check_folder(folder: str | Path) -> Path:
    """``folder`` if it holds a model; ``ValueError`` (one line) saying what is missing otherwise."""
    d = Path(folder).expanduser()
    if not d.is_dir():
        raise ValueError(f"{d}: no such folder")
    missing = missing_files(d)
    if missing:
        raise ValueError(f"{d} has no {' or '.join(missing)} (a model folder holds arpg, vq and judge weights)")
    return d


register(ModelEntry("digits", folder=ASSETS / "models"))
register(ModelEntry("scenes", folder=ASSETS / "models" / "scenes", env="ARPG_SCENES"))
# A raster model (LlamaGen family) trained here on the digits tokens: ``train --recipe digits-raster``.
register(ModelEntry("raster", "llamagen", folder=ASSETS / "models" / "raster", recipe="digits-raster"))
register(ModelEntry("ARPG-L", weights="hf://hp-l33/ARPG/arpg_300m.pt", tokenizer="VQ-16"))
register(ModelEntry("ARPG-XL", weights="hf://hp-l33/ARPG/arpg_700m.pt", tokenizer="VQ-16"))
register(ModelEntry("ARPG-XXL", weights="hf://hp-l33/ARPG/arpg_1b.pt", tokenizer="VQ-16"))
# The peers released on the same tokenizer (arpg.llamagen, arpg.randar): 256 px, 16x16 tokens.
register(ModelEntry("LlamaGen-B", "llamagen", weights="hf://FoundationVision/LlamaGen/c2i_B_256.pt", tokenizer="VQ-16"))
register(ModelEntry("LlamaGen-L", "llamagen", weights="hf://FoundationVision/LlamaGen/c2i_L_256.pt", tokenizer="VQ-16"))
_RANDAR = "hf://ziqipang/RandAR/randar_{}_llamagen_360k_bs_1024_lr_0.0004.safetensors"
register(ModelEntry("RandAR-L", "randar", weights=_RANDAR.format("0.3b"), tokenizer="VQ-16"))
register(ModelEntry("RandAR-XL", "randar", weights=_RANDAR.format("0.7b"), tokenizer="VQ-16"))
