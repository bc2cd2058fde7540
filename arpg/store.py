"""The models a server offers, loaded on first use: the models trained here stay resident, and at
most one released (large) model is held at a time; switching to another frees the previous one
and gives its memory back to the system (:func:`arpg.allocator.trim`). One model loads at a time,
and the models in memory are served while it loads.

The web app keeps one :class:`ModelStore`; every browser session names the model it wants
and asks the store for its pipeline, so two users can use two models at once.  Besides the
first model it offers every model trained here that the registry (:mod:`arpg.zoo`) lists and
whose folder holds weights (:func:`trained_models`), each as a :class:`SmallModel`: its folder,
name and card, read from the JSON without loading the weights.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .allocator import trim
from .card import ModelCard, read_examples
from .hub import RELEASED, WeightsUnavailable, load_pipeline, released_present
from .pipeline import Pipeline, shipped_card
from .zoo import MODELS, ModelEntry, by_title, check_folder, missing_files, title, trained_here

log = logging.getLogger(__name__)

SHIPPED_NAME = MODELS["digits"].title()


@dataclass(frozen=True)
class SmallModel:
    """A model trained here, in a folder of ``arpg``/``vq`` (and ``judge``) weights + JSON: its registry
    name (``key``), the name the app shows (``name``: :func:`arpg.zoo.title`, "shipped <key> model" or a
    preview's "<key> model (preview, step N of M)") and its card (data set, classes, examples), read
    without loading the weights."""

    directory: Path
    name: str
    card: ModelCard
    key: str = ""

    @property
    def data(self) -> str | None:
        return self.card.data

    @classmethod
    def at(cls, directory: str | Path, data: str | None = None, entry: ModelEntry | None = None) -> SmallModel:
        """The model in ``directory`` (registered as ``entry``, if given); ``ValueError`` (one line) when
        the folder or a weights file is missing, or when its JSON names another data set than ``data``."""
        d = check_folder(directory)
        card = shipped_card(d)
        if data is not None and card.data != data:
            raise ValueError(f"{d} holds a {card.data} model (its arpg.json says so), not a {data} model")
        if entry is not None and not card.examples and entry.folder is not None:
            card = _with_examples(card, entry.folder)  # a preview of a registered model shows its examples
        key = entry.name if entry is not None else card.data or d.name
        return cls(d, title(key, card.preview), card, key)

    def load(self, device: str | None = None) -> Pipeline:
        """Its pipeline, named :attr:`name`, with its card."""
        pipe = Pipeline.shipped(self.directory, device=device, name=self.name)
        pipe.card = self.card
        return pipe


def _with_examples(card: ModelCard, folder: Path) -> ModelCard:
    """``card`` with the examples of the model folder ``folder`` (a registered model's, for its preview)."""
    return dataclasses.replace(card, examples=read_examples(folder)) if folder.is_dir() else card


def zoo_key(name: str) -> str | None:
    """The registry name (lower case) of the model trained here shown as ``name``, or None."""
    entry = by_title(name)
    return entry.name.lower() if entry is not None else None


def trained_model(entry: ModelEntry, directory: str | Path | None = None) -> SmallModel | None:
    """The model trained here that ``entry`` names: in ``directory`` when given, else in the folder its
    variable names (:meth:`~arpg.zoo.ModelEntry.folder_now`), else in its own folder when that holds
    weights (None when it does not yet).

    A folder that is named (by a flag or the variable) must hold a model of the same data set as the
    entry's own folder: ``ValueError`` with one line saying what is wrong otherwise."""
    named = Path(str(directory).strip()).expanduser() if directory is not None and str(directory).strip() else None
    folder = named or entry.folder_now()
    if folder is None:
        return None
    if folder == entry.folder and missing_files(folder):
        return None
    own = entry.folder if entry.folder is not None and not missing_files(entry.folder) else None
    data = shipped_card(own).data if own is not None and folder != own else None
    return SmallModel.at(folder, data=data, entry=entry)


def trained_models(folders: Mapping[str, str | Path | None] | None = None) -> list[SmallModel]:
    """Every registered model trained here whose weights are there (:func:`trained_model`);
    ``folders``: another folder for some of them, by registry name (e.g. a preview named by the app's flag)."""
    folders = folders or {}
    found = (trained_model(e, folders.get(e.name)) for e in trained_here())
    return [m for m in found if m is not None]


class ModelStore:
    """Pipelines by name. ``first`` is what the server started with (always resident); ``shipped``
    builds the shipped digits model when ``first`` is another one; ``small``: other models trained
    here, loaded on first use and then kept like the shipped one."""

    def __init__(
        self,
        first: Pipeline,
        extra: list[str] | None = None,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        shipped: Callable[[], Pipeline] | None = None,
        tokenizer: str | None = None,
        small: Sequence[SmallModel] = (),
    ) -> None:
        self.first = first
        self.device = device
        self.cache_dir = cache_dir
        self.tokenizer = tokenizer  # for the names in ``extra`` (released names pair with VQ-16)
        self._resident: dict[str, Pipeline] = {first.name: first}
        self._shipped = shipped  # how to build the shipped model when ``first`` is a released one
        self._small = {m.name: m for m in small if m.name != first.name}
        self._extra = [e for e in (extra or []) if e and e != first.name]
        self._large: str | None = None  # the one released model held besides ``first``
        self._lock = threading.Lock()  # the dicts above; never held during a load
        self._loading = threading.Lock()  # one load at a time (at most one released model in memory)

    def names(self) -> list[str]:
        """The choices: the first model, the shipped one, the small ones, released models present
        offline, and ``extra``."""
        out = [self.first.name]
        if self._shipped is not None:
            out.append(SHIPPED_NAME)
        out += list(self._small) + released_present(self.cache_dir) + self._extra
        return list(dict.fromkeys(n for n in out if n))

    def named_for(self, data: str) -> str | None:
        """The name of the first model offered that learnt data set ``data`` (e.g. "digits"), or None."""
        if self.first.data == data:
            return self.first.name
        if data == "digits" and self._shipped is not None:
            return SHIPPED_NAME
        return next((m.name for m in self._small.values() if m.data == data), None)

    def name_of(self, key: str) -> str | None:
        """The name offered for registry name ``key`` ("digits" -> "shipped digits model"), or None."""
        if self.first.name == key or zoo_key(self.first.name) == key.lower():
            return self.first.name
        if key.lower() == "digits" and self._shipped is not None:
            return SHIPPED_NAME
        return next((m.name for m in self._small.values() if m.key.lower() == key.lower()), None)

    def cards(self) -> list[tuple[str, str, ModelCard]]:
        """(name, registry name, card) of the first model and of every model trained here that is offered."""
        first = (self.first.name, zoo_key(self.first.name) or "model", self.first.card)
        return [first, *((m.name, m.key.lower(), m.card) for m in self._small.values())]

    def resident(self) -> list[str]:
        """Names of the pipelines held in memory now."""
        with self._lock:
            return list(self._resident)

    def get(self, name: str | None) -> Pipeline:
        """The pipeline of ``name`` (None: the first), loading it if needed.

        One model loads at a time; while it loads, every model already in memory is served (the
        store's lock is held only to look names up, never during a load). Raises ``ValueError``
        for a name that is not offered and :class:`WeightsUnavailable` when its files cannot be read.
        """
        if not name or name == self.first.name:
            return self.first
        with self._lock:
            if name in self._resident:
                return self._resident[name]
        if name not in self.names():
            raise ValueError(f"unknown model {name[:80]!r}; choose one of {', '.join(self.names())}")
        with self._loading:
            with self._lock:  # another session may have loaded it while this one waited
                if name in self._resident:
                    return self._resident[name]
            large = self._is_large(name)
            if large:
                self._free_large()
            try:
                pipe = self._load(name)
            finally:
                trim()  # the load's temporaries (the checkpoint as read, before dtype and fusing)
            with self._lock:
                self._resident[name] = pipe
                if large:
                    self._large = name
            return pipe

    def _is_large(self, name: str) -> bool:
        """Whether ``name`` is a released (or other large) model, of which one is held at a time."""
        return not (name == SHIPPED_NAME and self._shipped is not None) and name not in self._small

    def _load(self, name: str) -> Pipeline:
        if name == SHIPPED_NAME and self._shipped is not None:
            pipe = self._shipped()
            pipe.name = SHIPPED_NAME
            return pipe
        if name in self._small:
            log.info("loading %s from %s", name, self._small[name].directory)
            try:
                return self._small[name].load(self.device)
            except Exception as exc:
                raise WeightsUnavailable(f"could not load {name}: {str(exc).strip()[:200]}") from exc
        log.info("loading %s", name)
        try:
            tokenizer = None if name in RELEASED else self.tokenizer
            pipe = load_pipeline(RELEASED.get(name, name), tokenizer, self.device, self.cache_dir)
        except WeightsUnavailable:
            raise
        except Exception as exc:
            raise WeightsUnavailable(f"could not load {name}: {str(exc).strip()[:200]}") from exc
        pipe.name = name
        return pipe

    def _free_large(self) -> None:
        """Drop the released model held now; its memory goes back to the system now, or once the
        last request using it ends (the server's idle trim, :func:`arpg.allocator.trim`)."""
        with self._lock:
            name, self._large = self._large, None
            if name is None:
                return
            self._resident.pop(name, None)
        log.info("freeing %s", name)
        trim()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
