"""Where one ``generate`` call spends its time, per step: ``python -m arpg bench --profile``.

The parts of the model are timed with forward hooks (the self stack, the shared K/V projection,
the cross stack, the head); what remains of the call's wall time is sampling, the Python of the
decode loop and allocation.  A ``torch.profiler`` table of the busiest operators follows.
Timings are wall-clock on the CPU (on CUDA every hook synchronises, which slows the call: read
the parts as shares, not as absolute times).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from ..model import ARPG
from ..options import SamplingOptions
from ..sampling import generate

PARTS = ("self stack", "shared K/V", "cross stack", "head")
REST = "sampling, Python, allocation"


class _Clock:
    """Seconds spent inside each part (hooks call :meth:`enter` / :meth:`leave`)."""

    def __init__(self, device: torch.device) -> None:
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.cuda = device.type == "cuda"
        self._started: dict[str, float] = {}

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def enter(self, part: str) -> None:
        self._started[part] = self._now()

    def leave(self, part: str) -> None:
        self.seconds[part] += self._now() - self._started.pop(part)


def _wrap(clock: _Clock, part: str, fn: Callable) -> Callable:
    def timed(*args: Any, **kwargs: Any) -> Any:
        clock.enter(part)
        try:
            return fn(*args, **kwargs)
        finally:
            clock.leave(part)

    return timed


@contextmanager
def _timed_parts(model: ARPG, clock: _Clock) -> Iterator[None]:
    """Time the model's parts while the block runs (hooks removed afterwards)."""
    layers = model.layers
    groups = {"self stack": list(layers.self_dec), "cross stack": list(layers.cross_dec), "head": [model.head]}
    handles = []
    for part, modules in groups.items():
        for m in modules:
            handles.append(m.register_forward_pre_hook(lambda *_, p=part: clock.enter(p)))
            handles.append(m.register_forward_hook(lambda *_, p=part: clock.leave(p)))
    layers.shared_kv = _wrap(clock, "shared K/V", layers.shared_kv)  # a method, not a module: shadow it
    try:
        yield
    finally:
        del layers.shared_kv
        for h in handles:
            h.remove()


def profile_generate(
    model: ARPG, labels: list[int], options: SamplingOptions, *, seed: int = 0, top_ops: int = 12
) -> dict[str, Any]:
    """Time one ``generate`` call (after a warm-up call) by part, and profile it by operator.

    Returns ``{"total_s", "steps", "parts_s": {part: seconds}, "per_step_ms": {part: ms}, "ops": table}``;
    the parts include :data:`REST` (the call's time outside the timed parts).
    """
    run = lambda: generate(model, labels, options, generator=seed)  # noqa: E731
    run()  # warm-up: first-call allocations and kernel selection
    clock = _Clock(model.device)
    with _timed_parts(model, clock):
        t0 = clock._now()
        steps = len(run().trace.counts)
        total = clock._now() - t0
    parts = dict(clock.seconds)
    parts[REST] = max(0.0, total - sum(parts.values()))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if model.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        run()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top_ops)
    return {
        "total_s": total,
        "steps": steps,
        "parts_s": parts,
        "per_step_ms": {k: 1000 * v / steps for k, v in parts.items()},
        "ops": table,
    }


def format_profile(name: str, result: dict[str, Any]) -> str:
    """A text table: each part's milliseconds per step and share of the call."""
    total = result["total_s"]
    lines = [
        f"{name}: {total:.3f} s for {result['steps']} steps ({1000 * total / result['steps']:.1f} ms/step)",
        f"  {'part':<30} {'ms/step':>9} {'share':>7}",
    ]
    for part, sec in result["parts_s"].items():
        lines.append(f"  {part:<30} {result['per_step_ms'][part]:>9.2f} {sec / total:>7.1%}")
    return "\n".join(lines)
