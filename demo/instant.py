"""Instant examples: a click on an example row shows its result, computed on the first click and
answered from memory afterwards (the rows never change, so neither do their results): a lookup outside
the queue shows a remembered result at once; only a row not seen yet waits in the queue to decode.

A row runs its tab's endpoint (:mod:`demo.endpoints`) with the row's values, a fixed seed
(:data:`EXAMPLE_SEED`, randomize off), the model's default sampling options and the other inputs at
their initial values, so its result, seed and summary (with the command line naming the example's
file, :func:`demo.links.with_image`) are the same for everybody. Results stay in memory, a bounded
number of them (:class:`ResultCache`), never on disk: the files gradio writes for each answer live in
the app's temporary folder like any other result and are purged with it.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from .endpoints import Endpoint, endpoint
from .links import with_image
from .parts.examples import TASK_ATTR
from .parts.model_choice import ModelChoice
from .parts.widgets import SAMPLING_FIELDS, is_model_default

EXAMPLE_SEED = 0
#: Results kept: every row of every tab, for a few models, with room to spare.
MAX_RESULTS = 64


@dataclass
class ResultCache:
    """Final outputs by key, the least recently used dropped beyond ``max_entries``; thread-safe."""

    max_entries: int = MAX_RESULTS
    hits: int = 0
    misses: int = 0
    _items: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def peek(self, key: Hashable) -> tuple | None:
        """The outputs stored under ``key`` or None, not counted."""
        with self._lock:
            return self._items.get(key)

    def get(self, key: Hashable) -> tuple | None:
        """The outputs stored under ``key`` (counted as a hit), or None (a miss)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
            return None

    def put(self, key: Hashable, outputs: tuple) -> None:
        """Store ``outputs`` under ``key``."""
        with self._lock:
            self._items[key] = outputs
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _fill(name: str, component: Any) -> Any:
    """The value an example gives an input its row does not set."""
    if name == "seed":
        return EXAMPLE_SEED
    if name == "randomize":
        return False
    if name in SAMPLING_FIELDS or name == "decoding" or is_model_default(component):
        return None  # the model's default
    return component.value


@dataclass
class ExampleRunner:
    """Runs the rows of one ``gr.Examples`` through ``ep``: :meth:`show_example` answers a click at once from
    memory, :meth:`run_example` decodes a row not seen yet (the event after the row's values are loaded)."""

    ep: Endpoint
    examples: gr.Examples
    dropdown: Any
    cache: ResultCache

    @property
    def inputs(self) -> list[Any]:
        """The event's inputs: the clicked row, the example's inputs and the Model dropdown (once)."""
        own = list(self.examples.inputs)
        return [self.examples.dataset, *own, *([] if any(c is self.dropdown for c in own) else [self.dropdown])]

    def arguments(self, values: list[Any]) -> list[Any]:
        """The endpoint's arguments for the values of :attr:`inputs` after the row."""
        given = {id(c): v for c, v in zip(self.inputs[1:], values, strict=True)}
        return [given[id(c)] if id(c) in given else _fill(n, c) for n, c in self.ep.inputs.items()]

    def key(self, index: int, model: str) -> tuple:
        """What identifies a row's result: the endpoint, the box, the row and the model."""
        return (self.ep.api_name, self.examples.dataset.elem_id, int(index), model)

    def unchanged(self) -> tuple:
        """Every output left as it is."""
        return tuple(gr.skip() for _ in self.ep.outputs)

    def show_example(self, row: Any, model: str) -> tuple:
        """The result of the row clicked when it is in memory (a hit), else every output unchanged; never
        decodes. ``model``: the dropdown's value, for a row that does not name its model."""
        index = int(row[0])
        if not 0 <= index < len(self.examples.examples):
            return self.unchanged()
        own = list(self.examples.inputs)
        named = next((i for i, c in enumerate(own) if c is self.dropdown), None)
        hit = self.cache.get(self.key(index, self.examples.examples[index][named] if named is not None else model))
        return hit if hit is not None else self.unchanged()

    def run_example(self, row: Any, progress: gr.Progress | None = gr.Progress(), *values: Any) -> Iterator[tuple]:
        """Decode the row's result unless it is in memory (:meth:`show_example` showed it): partial images
        while it decodes, then the result, stored. ``values``: those of :attr:`inputs` after the row;
        ``progress`` comes before them, as gradio passes a tracker (None: none) to a leading parameter whose
        default is one."""
        args = self.arguments(values)
        key = self.key(int(row[0]), args[list(self.ep.inputs).index("model")])
        if self.cache.peek(key) is not None:
            yield self.unchanged()
            return
        out = self.ep.fn(*args, *([progress] if progress is not None else []))
        last: Any = None
        for item in out if inspect.isgenerator(out) else [out]:
            if last is not None:
                yield last  # a partial image while it decodes
            last = item
        path = self.examples.examples[int(row[0])][0]
        final = tuple(with_image(v, path) if isinstance(v, str) else v for v in last)
        self.cache.put(key, final)
        yield final


def attach(blocks: gr.Blocks, choice: ModelChoice, cache: ResultCache | None = None) -> list[ExampleRunner]:
    """Make every example row of ``choice`` whose ``gr.Examples`` names an endpoint (:data:`TASK_ATTR`)
    show its result on a click (call inside ``blocks`` once every tab is built); returns the runners."""
    cache = cache if cache is not None else ResultCache()
    runners = []
    for examples in choice.examples:
        ep = endpoint(blocks, getattr(examples, TASK_ATTR, None) or "")
        if ep is None:
            continue
        runner = ExampleRunner(ep, examples, choice.dropdown, cache)
        info = next((c for c in ep.outputs if isinstance(c, gr.Markdown)), None)
        private: dict[str, Any] = dict(api_visibility="private")
        # a remembered result at once, with the row's values and outside the queue (a lookup, no decode)
        examples.dataset.click(
            runner.show_example,
            [examples.dataset, choice.dropdown],
            ep.outputs,
            queue=False,
            show_progress="hidden",
            **private,
        )
        # else, once the row's values are in place, it decodes in the queue
        examples.load_input_event.then(
            runner.run_example,
            runner.inputs,
            ep.outputs,
            show_progress_on=info,
            **private,
        )
        runners.append(runner)
    return runners
