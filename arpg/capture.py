"""Decoding steps with fixed shapes, captured once and replayed (CUDA graphs, or ``torch.compile``).

At batch 1 on a GPU a decoding step is bound by launching its few hundred small kernels, not by
the GPU. For one (cache rows, schedule) every step has fixed shapes: step s feeds the tokens
decoded at step s-1 (a fixed count) into the cache at a fixed offset and queries a fixed number of
targets. :class:`CapturedSteps` keeps, per such plan, one preallocated cache and, per step, static
input buffers and the step's forward pass (:meth:`ARPG.extend` then :meth:`ARPG.query`, the same
code as the eager path) in one of three modes:

* ``"graph"`` (CUDA): each step captured as a ``torch.cuda.CUDAGraph`` the first time it runs
  (that first run is eager, on a side stream, and gives the step's result), then replayed;
* ``"compile"``: each step through ``torch.compile`` with static shapes (``mode="reduce-overhead"``
  on CUDA); on a CPU it works but compiles slowly, so it is for tests and experiments;
* ``"static"``: the fixed-shape buffers and kept caches with nothing captured (what the other
  two replay, runnable anywhere).

Sampling, guidance and the order policy stay eager (:mod:`arpg.sampling`): a step's random draws
never enter a graph. Use it as ``generate(..., stepper=CapturedSteps(model))`` or set
``Pipeline.stepper``. A plan in use by one decode is not shared: a concurrent decode of the same
plan runs eagerly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .model import ARPG, KVCache
from .sampling import EagerSteps, StepSession
from .validation import check_choice, check_int

MODES = ("graph", "compile", "static")
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def default_mode(device: torch.device) -> str:
    """``"graph"`` on CUDA, ``"static"`` elsewhere (compiling on a CPU takes minutes per step shape)."""
    return "graph" if device.type == "cuda" else "static"


def _step_fn(model: ARPG, cache: KVCache, start: int, causal: bool) -> StepFn:
    """One step's forward pass on ``cache`` from offset ``start``: the eager code, shapes fixed by its inputs."""

    def step(ids: torch.Tensor, freqs_in: torch.Tensor, freqs_q: torch.Tensor) -> torch.Tensor:
        cache.length = start
        model.extend(cache, ids, freqs_in, causal=causal)
        return model.query(cache, freqs_q)

    return step


class _Step:
    """A step of a plan: its static inputs and how it runs (eagerly, compiled, or a replayed graph)."""

    def __init__(self, fn: StepFn, inputs: Sequence[torch.Tensor], end: int, cache: KVCache) -> None:
        self.fn, self.inputs, self.end, self.cache = fn, [t.clone() for t in inputs], end, cache
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: torch.Tensor | None = None

    def load(self, inputs: Sequence[torch.Tensor]) -> None:
        for buf, x in zip(self.inputs, inputs):
            buf.copy_(x)

    def run(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """This step's logits for ``inputs`` (copied into the static buffers first)."""
        self.load(inputs)
        if self.graph is None:
            return self.fn(*self.inputs)
        self.graph.replay()
        self.cache.length = self.end
        assert self.out is not None
        return self.out

    def capture(self, pool: Any) -> torch.Tensor:
        """Run once eagerly on a side stream (the result of this call), then capture the step."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            first = self.fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        first.record_stream(torch.cuda.current_stream())  # made on the side stream, read on this one
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):  # recorded, not run: the caches keep the eager run's values
            self.out = self.fn(*self.inputs)
        self.graph = graph
        return first


@dataclass(eq=False)
class _Plan:
    """What one (cache rows, cached length, counts) keeps between decodes."""

    cache: KVCache
    steps: dict[tuple, _Step] = field(default_factory=dict)
    busy: bool = False
    pool: Any = None


class _CapturedSession(StepSession):
    """One decode on a plan's kept cache; new steps are built (and captured) as they first run."""

    def __init__(self, owner: CapturedSteps, plan: _Plan) -> None:
        super().__init__(owner.model, plan.cache)
        self.owner, self.plan = owner, plan
        plan.cache.length = 0

    def forward(
        self, s: int, ids: torch.Tensor, freqs_in: torch.Tensor, freqs_q: torch.Tensor, causal: bool
    ) -> torch.Tensor:
        inputs, start = (ids, freqs_in, freqs_q), self.cache.length
        key = (s, start, causal, *(tuple(t.shape) for t in inputs))
        step = self.plan.steps.get(key)
        if step is not None:
            return step.run(inputs)
        step = _Step(_step_fn(self.model, self.cache, start, causal), inputs, start + ids.shape[1], self.cache)
        self.plan.steps[key] = step
        return self.owner.first_run(step, self.plan)

    def close(self) -> None:
        self.plan.busy = False


class CapturedSteps(EagerSteps):
    """Decoding steps with fixed shapes per plan, kept and captured (see the module's docstring).

    mode: one of :data:`MODES` (default :func:`default_mode`); max_plans: how many plans (distinct
    batch sizes and schedules) keep their caches and graphs, least recently used dropped first.
    """

    def __init__(self, model: ARPG, mode: str | None = None, max_plans: int = 4) -> None:
        super().__init__(model)
        self.mode = check_choice("capture mode", mode or default_mode(model.device), MODES)
        if self.mode == "graph" and model.device.type != "cuda":
            raise ValueError("capture mode 'graph' needs the model on a CUDA device")
        self.max_plans = check_int("max_plans", max_plans, 1, 64)
        self._plans: OrderedDict[tuple, _Plan] = OrderedDict()
        self._lock = threading.Lock()
        if self.mode == "compile":  # one compiled graph per step shape: many more than dynamo's default
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 512)
            torch._dynamo.config.accumulated_recompile_limit = max(
                torch._dynamo.config.accumulated_recompile_limit, 4096
            )

    def open(self, rows: int, max_len: int, counts: Sequence[int]) -> StepSession:
        """The plan's kept cache and steps; an eager session when a decode of the same plan is running."""
        key = (rows, max_len, tuple(counts))
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                plan = _Plan(self.model.new_cache(rows, max_len))
                self._plans[key] = plan
                self._evict()
            self._plans.move_to_end(key)
            if plan.busy:
                return StepSession(self.model, self.model.new_cache(rows, max_len))
            plan.busy = True
        return _CapturedSession(self, plan)

    def _evict(self) -> None:
        idle = [k for k, p in self._plans.items() if not p.busy]
        for k in idle[: max(0, len(self._plans) - self.max_plans)]:
            del self._plans[k]

    def first_run(self, step: _Step, plan: _Plan) -> torch.Tensor:
        """A new step's first run: compile it, or capture it as a graph, or keep it eager."""
        if self.mode == "compile":
            step.fn = torch.compile(step.fn, dynamic=False, mode="reduce-overhead" if self._cuda else None)
        if self.mode != "graph":
            return step.run(step.inputs)
        if plan.pool is None:
            plan.pool = torch.cuda.graph_pool_handle()  # one memory pool for the steps of a plan
        return step.capture(plan.pool)

    @property
    def _cuda(self) -> bool:
        return self.model.device.type == "cuda"

    @property
    def plans(self) -> int:
        """How many plans are kept."""
        return len(self._plans)
