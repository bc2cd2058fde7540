"""The models a server offers, loaded on first use: the shipped model(s) stay resident, and at
most one released (large) model is held at a time; switching to another frees the previous one.

The web app keeps one :class:`ModelStore`; every browser session names the model it wants
and asks the store for its pipeline, so two users can use two models at once.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from .hub import RELEASED, WeightsUnavailable, load_pipeline, released_present
from .pipeline import Pipeline

log = logging.getLogger(__name__)

SHIPPED_NAME = "shipped digits model"


class ModelStore:
    """Pipelines by name. ``first`` is what the server started with (always resident)."""

    def __init__(
        self,
        first: Pipeline,
        extra: list[str] | None = None,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        shipped: Callable[[], Pipeline] | None = None,
        tokenizer: str | None = None,
    ) -> None:
        self.first = first
        self.device = device
        self.cache_dir = cache_dir
        self.tokenizer = tokenizer  # for the names in ``extra`` (released names pair with VQ-16)
        self._resident: dict[str, Pipeline] = {first.name: first}
        self._shipped = shipped  # how to build the shipped model when ``first`` is a released one
        self._extra = [e for e in (extra or []) if e and e != first.name]
        self._large: str | None = None  # the one released model held besides ``first``
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The choices: the first model, the shipped one, released models present offline, and ``extra``."""
        out = [self.first.name]
        if self._shipped is not None:
            out.append(SHIPPED_NAME)
        out += released_present(self.cache_dir) + self._extra
        return list(dict.fromkeys(n for n in out if n))

    def resident(self) -> list[str]:
        """Names of the pipelines held in memory now."""
        return list(self._resident)

    def get(self, name: str | None) -> Pipeline:
        """The pipeline of ``name`` (None: the first), loading it if needed.

        Raises ``ValueError`` for a name that is not offered and :class:`WeightsUnavailable`
        when its files cannot be read.
        """
        if not name or name == self.first.name:
            return self.first
        with self._lock:
            if name in self._resident:
                return self._resident[name]
            if name not in self.names():
                raise ValueError(f"unknown model {name[:80]!r}; choose one of {', '.join(self.names())}")
            pipe = self._load(name)
            self._resident[name] = pipe
            return pipe

    def _load(self, name: str) -> Pipeline:
        if name == SHIPPED_NAME and self._shipped is not None:
            pipe = self._shipped()
            pipe.name = SHIPPED_NAME
            return pipe
        self._free_large()
        log.info("loading %s", name)
        try:
            tokenizer = None if name in RELEASED else self.tokenizer
            pipe = load_pipeline(RELEASED.get(name, name), tokenizer, self.device, self.cache_dir)
        except WeightsUnavailable:
            raise
        except Exception as exc:
            raise WeightsUnavailable(f"could not load {name}: {str(exc).strip()[:200]}") from exc
        pipe.name = name
        self._large = name
        return pipe

    def _free_large(self) -> None:
        """Drop the released model held now (its memory returns once no request uses it)."""
        if self._large is None:
            return
        log.info("freeing %s", self._large)
        self._resident.pop(self._large, None)
        self._large = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
