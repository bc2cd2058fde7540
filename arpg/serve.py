"""Request batching: concurrent requests that can share a decode are decoded together.

On a GPU, and on a CPU at the few rows a step has, one decode of B images costs much less than
B decodes of one: a step's time is mostly per-step overhead and weight traffic, not arithmetic.
A :class:`Batcher` serves one model: requests that agree on everything the decode shares (the
sampling options, hence steps, schedule, guidance and order kind, and the grid) are gathered for
at most ``wait_ms`` after the first of them arrived, up to ``max_batch`` images, and decoded as one
batch by :func:`arpg.sampling.decoder` with one generator per request (``groups``). Each request
keeps its labels, seed and order and gets the tokens it would get alone (bit-identical where the
kernels are batch-invariant: float32 on the CPU); its step callback still sees its own images
after every step. A request cancelled while batched (:meth:`Ticket.cancel`, or its callback
raising) fails alone and its rows leave the decode before the next step.

The app's Generate calls :func:`generate` (:meth:`arpg.pipeline.Pipeline.generate`'s signature), which
batches when ``$ARPG_BATCH_WAIT_MS`` is set above 0 (with ``$ARPG_MAX_BATCH``; :func:`settings_from_env`)
and is ``pipe.generate`` itself otherwise (the default).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .model import ARPG
from .options import SamplingOptions, with_overrides
from .orders import order_policy
from .pipeline import Output, Pipeline
from .sampling import EagerSteps, GenerationResult, StepCallback, Trace, check_labels, check_options, decoder
from .validation import check_int, check_number, check_seed

ENV_WAIT = "ARPG_BATCH_WAIT_MS"
ENV_MAX_BATCH = "ARPG_MAX_BATCH"
#: How long the first request of a batch waits for others to join (a suggested ``$ARPG_BATCH_WAIT_MS``).
DEFAULT_WAIT_MS = 25.0
#: Images decoded together at most, when ``$ARPG_MAX_BATCH`` is not set.
DEFAULT_MAX_BATCH = 16
#: The most Generate requests an app runs at once with batching on (the app's bound for any event).
MAX_CONCURRENT = 8


#: The default of ``settings`` arguments: read them from the environment (:func:`settings_from_env`).
FROM_ENV: Any = object()


class Cancelled(Exception):
    """A request was cancelled before its decode ended."""


@dataclass(frozen=True)
class BatchSettings:
    """How long a request waits for companions (ms) and how many images one decode takes at most."""

    wait_ms: float = DEFAULT_WAIT_MS
    max_batch: int = DEFAULT_MAX_BATCH

    def __post_init__(self) -> None:
        check_number("batch wait (ms)", self.wait_ms, 0, 10_000)
        check_int("max batch", self.max_batch, 1, 4096)


def settings_from_env(environ: Mapping[str, str] | None = None) -> BatchSettings | None:
    """Batching as ``$ARPG_BATCH_WAIT_MS`` and ``$ARPG_MAX_BATCH`` say: off (None) unless the wait is
    set above 0 (``ARPG_BATCH_WAIT_MS=25``), and off with a max batch of 1; an unset max batch is
    :data:`DEFAULT_MAX_BATCH`."""
    env = os.environ if environ is None else environ
    wait = env.get(ENV_WAIT, "").strip()
    most = env.get(ENV_MAX_BATCH, "").strip()
    if not wait:
        return None
    settings = BatchSettings(
        check_number(ENV_WAIT, wait, 0, 10_000),
        check_int(ENV_MAX_BATCH, most, 1, 4096) if most else DEFAULT_MAX_BATCH,
    )
    return None if settings.wait_ms == 0 or settings.max_batch == 1 else settings


def batchable(options: SamplingOptions) -> bool:
    """Whether requests with these options can share a decode: a named order fixed before decoding
    (an adaptive order picks its cells from the model's outputs while decoding)."""
    return isinstance(options.order, str) and not order_policy(options.order).adaptive


@dataclass(eq=False)
class Ticket:
    """One request in a :class:`Batcher`: wait for it with :meth:`result`, stop it with :meth:`cancel`."""

    labels: list[int]
    options: SamplingOptions
    seed: int
    grid: tuple[int, int]
    callback: StepCallback | None = None
    arrived: float = field(default_factory=time.monotonic)
    cancelled: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)
    _wake: Callable[[], None] | None = None  # tells the batcher, which may be waiting for companions
    _result: GenerationResult | None = None
    _error: BaseException | None = None

    @property
    def key(self) -> tuple:
        """What requests must share to be decoded together."""
        return self.options, self.grid

    def cancel(self) -> None:
        """Stop this request: it is dropped from its decode before the next step."""
        self.cancelled.set()
        if self._wake is not None:
            self._wake()

    def finish(self, result: GenerationResult | None = None, error: BaseException | None = None) -> None:
        """Hand the request its result or its error (the first one wins)."""
        if not self._done.is_set():
            self._result, self._error = result, error
            self._done.set()

    def done(self) -> bool:
        """Whether the request has its result or its error."""
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> GenerationResult:
        """Wait for the request's tokens and trace; raises its error (:class:`Cancelled` when cancelled)."""
        if not self._done.wait(timeout):
            raise TimeoutError("the batched request did not finish in time")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def _share(result: GenerationResult, tickets: Sequence[Ticket]) -> None:
    """Cut a batched result into each ticket's tokens and trace (as a decode alone would give it)."""
    t, start = result.trace, 0
    rows = sum(len(k.labels) for k in tickets)
    for k in tickets:
        end = start + len(k.labels)
        trace = Trace(
            t.rows,
            t.cols,
            t.order if t.order.dim() == 1 else t.order[start],  # the images of one request share its order
            t.counts,
            t.cfg,
            t.step_of if t.step_of.dim() == 2 else t.step_of[start],
            t.kv_cache_bytes * len(k.labels) // rows,
            t.forward_passes,
            t.queries,
        )
        k.finish(GenerationResult(result.tokens[start:end], trace))
        start = end


class Batcher:
    """Gathers the requests of one model and decodes compatible ones together (a worker thread,
    started when a request comes and gone when none is left)."""

    def __init__(self, model: ARPG, settings: BatchSettings | None = None, stepper: EagerSteps | None = None) -> None:
        self.model, self.settings, self.stepper = model, settings or BatchSettings(), stepper
        self._cond = threading.Condition()
        self._pending: list[Ticket] = []
        self._worker: threading.Thread | None = None
        self.batches: list[int] = []  # images of each decode run, newest last (bounded)

    # -- the callers' side ---------------------------------------------------------------------
    def submit(
        self,
        labels: Any,
        options: SamplingOptions,
        *,
        seed: int,
        grid: tuple[int, int] | None = None,
        callback: StepCallback | None = None,
    ) -> Ticket:
        """Queue one request (checked here, so a bad one never reaches a batch); returns its ticket."""
        if not batchable(options):
            raise ValueError(f"order {options.order!r} cannot be batched with other requests")
        lab = check_labels(self.model, labels).cpu().tolist()
        plan = check_options(self.model, grid, options)
        ticket = Ticket(lab, options, check_seed(seed), (plan.rows, plan.cols), callback, _wake=self._notify)
        with self._cond:
            self._pending.append(ticket)
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, daemon=True, name="arpg-batcher")
                self._worker.start()
            self._cond.notify_all()
        return ticket

    def generate(self, labels: Any, options: SamplingOptions, **kwargs: Any) -> GenerationResult:
        """:meth:`submit` and wait; the request is cancelled if waiting is interrupted."""
        ticket = self.submit(labels, options, **kwargs)
        try:
            return ticket.result()
        except BaseException:
            ticket.cancel()
            raise

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending or decoding (the worker has ended); whether that is so."""
        with self._cond:
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return worker is None or not worker.is_alive()

    # -- the worker's side -----------------------------------------------------------------------
    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._decode(batch)

    def _take(self) -> tuple[list[Ticket], bool]:
        """(the next batch in arrival order, whether it must go now); call with the lock held."""
        for t in [t for t in self._pending if t.cancelled.is_set()]:
            self._pending.remove(t)
            t.finish(error=Cancelled("the request was cancelled"))
        if not self._pending:
            return [], False
        first, most = self._pending[0], self.settings.max_batch
        batch, images = [first], len(first.labels)
        for t in self._pending[1:]:
            if t.key == first.key and images + len(t.labels) <= most:
                batch.append(t)
                images += len(t.labels)
        due = time.monotonic() >= first.arrived + self.settings.wait_ms / 1000
        return batch, due or images >= most

    def _next_batch(self) -> list[Ticket] | None:
        """Wait until a batch is full or its first request has waited ``wait_ms``; None when idle."""
        with self._cond:
            while True:
                batch, go = self._take()
                if not batch:
                    self._worker = None  # the next submit starts a new worker
                    return None
                if go:
                    for t in batch:
                        self._pending.remove(t)
                    return batch
                self._cond.wait(max(0.0, batch[0].arrived + self.settings.wait_ms / 1000 - time.monotonic()))

    @torch.inference_mode()
    def _decode(self, batch: list[Ticket]) -> None:
        """One decode for every ticket of ``batch``; each ticket gets its share or its error."""
        self.batches = [*self.batches[-99:], sum(len(t.labels) for t in batch)]
        dec, live = None, list(batch)
        try:
            dev = self.model.device
            dec = decoder(
                self.model,
                [lab for t in batch for lab in t.labels],
                batch[0].options,
                generator=[torch.Generator(dev).manual_seed(t.seed) for t in batch],
                groups=[len(t.labels) for t in batch],
                grid=batch[0].grid,
                stepper=self.stepper,
            )
            n = len(dec.plan.counts)
            for s in range(n):
                dec.step(s)
                live = _after_step(dec, live, s, n)
                if not live:
                    return
            _share(dec.result(None, False), live)
        except BaseException as exc:  # the whole batch failed (e.g. out of memory): every request hears it
            for t in live:
                t.finish(error=exc)
        finally:
            if dec is not None:
                dec.close()


def _after_step(dec: Any, live: list[Ticket], s: int, n: int) -> list[Ticket]:
    """Each live request's callback sees its images after step ``s``; cancelled ones (or whose callback
    raised) fail and leave the decode. Returns the requests still decoding."""
    tokens = dec.grid_tokens() if any(t.callback is not None for t in live) else None
    keep, start = [], 0
    for i, t in enumerate(live):
        end = start + len(t.labels)
        try:
            if t.callback is not None and not t.cancelled.is_set():
                t.callback(s, n, tokens[start:end])
            if t.cancelled.is_set():  # before this step or during its callbacks
                raise Cancelled("the request was cancelled")
            keep.append(i)
        except BaseException as exc:  # this request stops; the others go on
            t.finish(error=exc)
        start = end
    if keep and len(keep) < len(live):
        dec.keep_groups(keep)
    return [live[i] for i in keep]


# -- one batcher per model, for the app ------------------------------------------------------------
_BATCHERS: weakref.WeakValueDictionary[tuple, Batcher] = weakref.WeakValueDictionary()
_REGISTRY_LOCK = threading.Lock()


def batcher_for(pipe: Pipeline, settings: BatchSettings | None = None) -> Batcher:
    """The batcher of ``pipe``'s model with ``settings`` (default :class:`BatchSettings`): the same one
    for every caller while any of them holds it (it lives as long as a request or the caller does)."""
    settings = settings or BatchSettings()
    key = (id(pipe.model), settings)  # the batcher holds the model, so the id is not reused meanwhile
    with _REGISTRY_LOCK:
        batcher = _BATCHERS.get(key)
        if batcher is None:
            batcher = Batcher(pipe.model, settings, getattr(pipe, "stepper", None))
            _BATCHERS[key] = batcher
        return batcher


def generate(
    pipe: Pipeline,
    labels: Any,
    options: SamplingOptions | None = None,
    *,
    seed: int | None = None,
    callback: StepCallback | None = None,
    settings: BatchSettings | None = FROM_ENV,
    **overrides: Any,
) -> Output:
    """:meth:`Pipeline.generate` through the model's batcher when batching is on (``settings``: default
    :func:`settings_from_env`, None off) and the options allow it; else ``pipe.generate`` itself. The
    same images either way where the kernels are batch-invariant (float32 on the CPU)."""
    settings = settings_from_env() if settings is FROM_ENV else settings
    opts = with_overrides(options, overrides, pipe.defaults)
    if settings is None or not batchable(opts):
        return pipe.generate(labels, opts, seed=seed, callback=callback)
    seed = check_seed(seed)
    res = batcher_for(pipe, settings).generate(labels, opts, seed=seed, grid=pipe.grid, callback=callback)
    return Output(pipe.decode(res.tokens), res.tokens, res.trace, seed, torch.as_tensor(labels).reshape(-1).tolist())


def concurrent_requests(settings: BatchSettings | None = FROM_ENV) -> int | None:
    """How many Generate requests an app should let run at once with batching on (they wait in the
    batcher, so a decode finds its companions); None when batching is off (``settings`` as in
    :func:`generate`)."""
    settings = settings_from_env() if settings is FROM_ENV else settings
    return None if settings is None else min(MAX_CONCURRENT, max(2, settings.max_batch))
