"""Timed calls of a benchmark: interleaved passes, peak memory per call, torch.compile with an eager fallback.

:func:`timed_runs` is the loop of :func:`arpg.measure.bench.run_bench`: warm-up passes, then
timed passes over every setting, alternating direction so that no setting always runs
first or last.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..model import ARPG
from ..sampling import Trace
from .probes import PeakMemory, sync

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
Key = tuple[str, int, int]  # (method, steps, batch)


class Ticker:
    """Counts finished pieces of work and reports ``progress(fraction, text)``."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.done, self.progress = max(1, total), 0, progress

    def __call__(self, text: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(min(1.0, self.done / self.total), text)


class CompiledSteps:
    """``model.extend``/``model.query`` (the step function) wrapped in ``torch.compile`` for a run.

    A compile failure is recorded in ``info`` and the eager methods come back; :meth:`restore`
    brings them back at the end of the run.
    """

    def __init__(self, model: ARPG, requested: bool):
        self.model, self.active = model, False
        self.info: dict[str, Any] = {"requested": bool(requested), "ok": None, "error": None, "compile_s": None}
        if requested:
            model.extend = torch.compile(model.extend, dynamic=True)  # type: ignore[method-assign]
            model.query = torch.compile(model.query, dynamic=True)  # type: ignore[method-assign]
            self.active = True

    def fail(self, e: Exception) -> None:
        """Record why compiling failed and go back to the eager step function."""
        log.warning("torch.compile failed, continuing eagerly: %s", e)
        self.info.update(ok=False, error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
        self.restore()

    def restore(self) -> None:
        """The eager ``extend``/``query`` again (no-op when not compiled)."""
        if self.active:
            for name in ("extend", "query"):
                self.model.__dict__.pop(name, None)
            self.active = False


@dataclass
class Timings:
    """What the timed passes saw, per setting: wall times, (peak, delta) memory, the last trace."""

    times: dict[Key, list[float]] = field(default_factory=dict)
    mem: dict[Key, list[tuple[int, int]]] = field(default_factory=dict)
    traces: dict[Key, Trace] = field(default_factory=dict)
    first_call: dict[Key, float] = field(default_factory=dict)


def _time_one(
    call: Callable[..., Trace], key: Key, device: torch.device, compiled: CompiledSteps
) -> tuple[Trace, float, PeakMemory]:
    """One call of setting ``key``: its trace, seconds and memory (retried eagerly if compiling fails)."""
    sync(device)
    with PeakMemory(device) as pm:
        t0 = time.perf_counter()
        try:
            trace = call(*key)
        except Exception as e:  # noqa: BLE001 - a compile failure must not end the run
            if not compiled.active:
                raise
            compiled.fail(e)
            t0 = time.perf_counter()
            trace = call(*key)
        sync(device)
        dt = time.perf_counter() - t0
    return trace, dt, pm


def timed_runs(
    call: Callable[..., Trace],
    settings: Sequence[Key],
    warmup: int,
    repeats: int,
    device: torch.device,
    compiled: CompiledSteps,
    tick: Ticker,
) -> Timings:
    """``warmup`` untimed passes, then ``repeats`` timed passes over ``settings``, alternating direction.

    ``call(method, steps, batch)`` runs one setting and returns its trace.
    """
    t = Timings({k: [] for k in settings}, {k: [] for k in settings})
    try:
        for p in range(warmup + repeats):
            timed = p >= warmup
            for key in settings if p % 2 == 0 else settings[::-1]:
                trace, dt, pm = _time_one(call, key, device, compiled)
                t.first_call.setdefault(key, dt)
                if timed:
                    t.times[key].append(dt)
                    t.mem[key].append((pm.peak, pm.delta))
                    t.traces[key] = trace
                what = f"run {p + 1 - warmup}/{repeats}" if timed else f"warm-up {p + 1}/{warmup}"
                tick(f"{what}: {key[0]}, {key[1]} steps, batch {key[2]}: {dt:.2f} s")
                log.info("%s: %s %d steps batch %d: %.3f s", what, *key, dt)
    finally:
        compiled.restore()
    if compiled.info["requested"] and compiled.info["ok"] is None:
        # the first call of every setting pays for (re)compilation; the medians do not
        compiled.info["ok"] = True
        compiled.info["compile_s"] = round(sum(t.first_call[k] - median(t.times[k]) for k in settings), 3)
    return t


def median(xs: Sequence[float]) -> float:
    """The median as a float."""
    return float(statistics.median(xs))


def percentile(values: Sequence[float], q: float) -> float | None:
    """Percentile ``q`` (0..1) of ``values`` at the 1-based rank ``round(q * n + 0.5)`` (Python's rounding,
    clipped to 1..n): the rank the load tests have always reported, at or above the nearest rank; None when
    there are no values."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))] if v else None
