"""Where one ``generate`` call spends its time, per step: ``python -m arpg bench --profile``.

The parts of the model are timed with forward hooks (the self stack, the shared K/V projection,
the cross stack, the head); what remains of the call's wall time is sampling, the Python of the
decode loop and allocation.  A ``torch.profiler`` run sums the operators' own time by kind
(:data:`KINDS`: matmuls, attention, the sampler's random numbers, the rest) and counts the FLOPs
of every linear layer, so the matmuls' achieved rate can be set against the machine's peak; a
table of the busiest operators follows.
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
#: Operator kinds of the profile: a kind takes an operator whose name contains one of its words.
KINDS = {
    "matmul": ("linear", "aten::mm", "aten::addmm", "aten::bmm"),
    "attention": ("scaled_dot_product",),
    "sampler random numbers": ("exponential_", "multinomial", "aten::uniform_", "aten::normal_"),
}
OTHER = "other operators"


def _kind(op: str) -> str:
    return next((k for k, words in KINDS.items() if any(w in op for w in words)), OTHER)


@contextmanager
def _linear_flops(model: torch.nn.Module, total: list[float]) -> Iterator[None]:
    """Add 2 x in x out x rows FLOPs of every linear layer's call to ``total[0]`` while the block runs."""

    def count(m: torch.nn.Linear, args: tuple, _out: Any) -> None:
        total[0] += 2.0 * m.out_features * args[0].numel()

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


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
    flops = [0.0]
    with profile(activities=activities) as prof, _linear_flops(model, flops):
        run()
    averages = prof.key_averages()
    kinds = dict.fromkeys([*KINDS, OTHER], 0.0)
    for ev in averages:
        kinds[_kind(ev.key)] += ev.self_cpu_time_total / 1e6
    return {
        "total_s": total,
        "steps": steps,
        "parts_s": parts,
        "per_step_ms": {k: 1000 * v / steps for k, v in parts.items()},
        "operators_s": kinds,  # own CPU time by kind, in the profiled call (the profiler adds a little)
        "linear_gflop": flops[0] / 1e9,
        "linear_gflops_per_s": flops[0] / 1e9 / kinds["matmul"] if kinds["matmul"] > 0 else None,
        "ops": averages.table(sort_by="self_cpu_time_total", row_limit=top_ops),
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
    kinds = result.get("operators_s") or {}
    if kinds:
        whole = sum(kinds.values()) or 1.0
        lines.append("  operators' own time by kind: " + ", ".join(f"{k} {v / whole:.0%}" for k, v in kinds.items()))
    rate, peak = result.get("linear_gflops_per_s"), result.get("peak_gflops")
    if rate:
        at_peak = f" = {rate / peak:.0%} of the {result['peak_dtype']} matmul peak ({peak:.0f})" if peak else ""
        lines.append(f"  linear layers: {result['linear_gflop']:.1f} GFLOP at {rate:.0f} GFLOP/s{at_peak}")
    return "\n".join(lines)
