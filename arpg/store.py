"""The models a server offers, loaded on first use: the shipped model(s) stay resident, and at
most one released (large) model is held at a time; switching to another frees the previous one
and gives its memory back to the system (:func:`arpg.allocator.trim`). One model loads at a time,
and the models in memory are served while it loads.

The web app keeps one :class:`ModelStore`; every browser session names the model it wants
and asks the store for its pipeline, so two users can use two models at once.  Besides the
shipped digits model it offers small models trained here from their folders (:class:`SmallModel`):
the scenes model of ``assets/models/scenes`` once its weights exist, or the folder named by
``app.py --scenes`` / ``$ARPG_SCENES`` (:func:`scenes_model`), e.g. a preview packed mid-training.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .allocator import trim
from .hub import RELEASED, WeightsUnavailable, load_pipeline, released_present
from .pipeline import SCENES_DIR, Pipeline, data_of, shipped_name

log = logging.getLogger(__name__)

SHIPPED_NAME = "shipped digits model"
#: The variable that names the scenes model's folder when ``app.py --scenes`` is not given.
ENV_SCENES = "ARPG_SCENES"
#: The files :meth:`Pipeline.shipped` needs in a model's folder (``judge.safetensors`` is optional).
SMALL_FILES = ("arpg.safetensors", "vq.safetensors")


@dataclass(frozen=True)
class SmallModel:
    """A small model trained here, in a folder of ``arpg``/``vq`` (and ``judge``) weights + JSON:
    its name (:func:`arpg.pipeline.shipped_name`: "shipped scenes model", or "scenes model
    (preview, step N of M)") and data set, read from the JSON without loading the weights."""

    directory: Path
    name: str
    data: str

    @classmethod
    def at(cls, directory: str | Path, data: str | None = None) -> SmallModel:
        """The model in ``directory``; ``ValueError`` (one line) when the folder or one of
        :data:`SMALL_FILES` is missing, or when its JSON names another data set than ``data``."""
        d = Path(directory).expanduser()
        if not d.is_dir():
            raise ValueError(f"{d}: no such folder")
        missing = [n for n in SMALL_FILES if not (d / n).is_file()]
        if missing:
            raise ValueError(f"{d} has no {' or '.join(missing)} (a model folder holds arpg, vq and judge weights)")
        found = data_of(d / "arpg.safetensors")
        if data is not None and found != data:
            raise ValueError(f"{d} holds a {found} model (its arpg.json says so), not a {data} model")
        return cls(d, shipped_name(d / "arpg.safetensors"), found)

    def load(self, device: str | None = None) -> Pipeline:
        """Its pipeline, named :attr:`name`."""
        pipe = Pipeline.shipped(self.directory, device=device)
        pipe.name = self.name
        return pipe


def scenes_model(directory: str | Path | None = None) -> SmallModel | None:
    """The scenes model the app offers: ``directory`` (``app.py --scenes``), else ``$ARPG_SCENES``,
    else :data:`arpg.pipeline.SCENES_DIR` when its weights exist (None when they do not yet).

    A folder that is named (by the flag or the variable) must hold a scenes model: ``ValueError``
    with one line saying what is missing otherwise (the app stops at start-up with it)."""
    named = str(directory).strip() if directory is not None else os.environ.get(ENV_SCENES, "").strip()
    if named:
        return SmallModel.at(named, data="scenes")
    if all((SCENES_DIR / n).is_file() for n in SMALL_FILES):
        return SmallModel.at(SCENES_DIR, data="scenes")
    return None


class ModelStore:
    """Pipelines by name. ``first`` is what the server started with (always resident); ``shipped``
    builds the shipped digits model when ``first`` is another one; ``small``: other models trained
    here (e.g. the scenes model), loaded on first use and then kept like the shipped one."""

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
        """The name of the first model offered that learnt data set ``data`` ("digits", "scenes"), or None."""
        if self.first.data == data:
            return self.first.name
        if data == "digits" and self._shipped is not None:
            return SHIPPED_NAME
        return next((m.name for m in self._small.values() if m.data == data), None)

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
