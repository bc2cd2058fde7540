"""A task's plan, told before it runs (:func:`arpg.tasks.plan`, :mod:`arpg.tasks.planning`): for every task and
decoding it is what the run then does (the grid of each plain decode, the result's tokens and image, what the
result records it used, the forward passes, the VQ work), worked out by the same geometry the task builds its
grids with. On the random tiny model (trained on 4x4 tokens of 4 px) and that model trained (say) on 4x4 and
4x8 grids as well, as the scenes model is on several sizes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

import arpg.tasks as package
from arpg import cost, tasks, windows
from arpg.model import ARPG
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline
from arpg.sampling import generate
from arpg.tasks import canvas, planning

OPTS = {"steps": 3, "cfg_scale": 2.0}


@pytest.fixture(scope="module")
def tiny() -> Pipeline:
    return Pipeline.random("ARPG-tiny", "VQ-tiny")


@pytest.fixture(scope="module")
def wide(tiny: Pipeline) -> Pipeline:
    cfg = replace(tiny.model.cfg, trained_grids=((4, 4), (4, 8)))
    model = ARPG(cfg)
    model.load_state_dict(tiny.model.state_dict())
    return replace(tiny, model=model.eval())


def image(h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class Seen:
    """What a run did: the grid of every plain decode and the cells its VQ calls turned into pixels / tokens."""

    def __init__(self) -> None:
        self.grids: list[tuple[int, int]] = []
        self.decoded = self.encoded = 0


@pytest.fixture()
def seen(tiny: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Spies on the plain decodes and on the tokenizer (shared by ``tiny`` and ``wide``)."""
    spy, decode, encode = Seen(), tiny.vq.decode, tiny.vq.encode

    def plain(*args: Any, **kwargs: Any) -> Any:
        spy.grids.append(tuple(kwargs["grid"]))
        return generate(*args, **kwargs)

    def vq_decode(tokens: torch.Tensor) -> Any:
        spy.decoded += tokens[0].numel()
        return decode(tokens)

    def vq_encode(x: torch.Tensor) -> Any:
        out = encode(x)
        spy.encoded += out[0].numel()
        return out

    monkeypatch.setattr(windows, "generate", plain)
    monkeypatch.setattr("arpg.pipeline.generate", plain)
    monkeypatch.setattr(tiny.vq, "decode", vq_decode)
    monkeypatch.setattr(tiny.vq, "encode", vq_encode)
    return spy


CANVAS = [
    ("outpaint", image(16, 24), {"right": 5, "top": 1}),
    ("outpaint", image(), {"left": 2, "bottom": 3, "schedule": "k=2"}),
    ("outpaint", image(), {}),  # nothing to extend
    ("outpaint", image(), {"right": 6, "window": (4, 3), "order": "confidence"}),
    ("panorama", image(), {"times": 3}),
    ("panorama", image(16, 40), {"times": 2, "side": "top"}),
    ("panorama", image(16, 24), {"times": 3, "side": "left", "steps": 5}),
    ("panorama", image(), {"times": 1}),
    ("resize", image(), {"scale": 2.0, "strategy": "lattice"}),
    ("resize", image(16, 24), {"scale": 1.5, "strategy": "reencode", "regenerate": 0.3}),
    ("resize", image(16, 32), {"scale": 1.0, "strategy": "reencode", "regenerate": 0.5, "steps": 40}),
    ("resize", image(), {"scale": 1.0, "strategy": "lattice"}),  # the grid does not grow
    ("resize", image(16, 24), {}),  # the model's settings
]


def _run(pipe: Pipeline, task: str, img: np.ndarray, settings: dict) -> tuple[tasks.TaskResult, int, int]:
    """The task's result, its forward passes and its rounds (a panorama's; 0 for the other tasks). The passes
    are counted twice: the step callback runs once per pass, and the traces (every round's) count them."""
    passes: list[int] = []
    rounds: list[tasks.TaskResult] = []
    extra = {"on_round": rounds.append} if task == "panorama" else {}
    res = getattr(tasks, task)(pipe, img, 1, seed=4, callback=lambda *a: passes.append(1), **extra, **settings)
    assert sum(r.trace.forward_passes for r in rounds or [res]) == len(passes)
    return res, len(passes), len(rounds)


def _plain_grids(plan: tasks.TaskPlan) -> list[tuple[int, int]]:
    """The grid of every plain decode the plan's decodes run: the grid, or each of its windows."""
    return [g for d in plan.decodes for g in ([d.grid] if d.window is None else [d.window] * len(d.parts))]


@pytest.mark.parametrize("which", ["tiny", "wide"])
@pytest.mark.parametrize("decoding", ["windowed", "whole"])
@pytest.mark.parametrize("case", range(len(CANVAS)))
def test_a_canvas_tasks_plan_is_what_it_runs(request: Any, seen: Seen, which: str, decoding: str, case: int) -> None:
    pipe = request.getfixturevalue(which)
    task, img, settings = CANVAS[case]
    settings = {**OPTS, **settings, "decoding": decoding}
    plan = tasks.plan(pipe, task, img, seed=4, **settings)
    res, passes, rounds = _run(pipe, task, img, settings)
    assert plan.grid == tuple(res.tokens.shape) and plan.canvas == tuple(n // 4 for n in res.image.shape[:2])
    assert plan.used == res.used and plan.steps == res.used.steps
    assert plan.forward_passes == passes and seen.grids == _plain_grids(plan)
    assert (plan.decoded, plan.encoded) == (seen.decoded, seen.encoded)
    assert len(plan.decodes) == (rounds if task == "panorama" else int(bool(plan.decodes)))
    if plan.decodes and task != "panorama":  # the result's context is the plan's
        assert plan.decodes[0].free == int((~res.known).sum())
    windows_used = None if res.used.windows is None else (res.used.windows, res.used.window)
    assert plan.windows == windows_used


@pytest.mark.parametrize("task", ["inpaint", "edit"])
def test_an_inpaintings_plan_is_what_it_runs(tiny: Pipeline, seen: Seen, task: str) -> None:
    img, mask = image(16, 24), np.zeros((16, 24), bool)
    mask[4:9, 2:7] = True
    for settings in ({"steps": 3}, {"steps": 40, "dilate": 1}, {"steps": 2, "region": "painted"}):
        seen.grids, seen.decoded, seen.encoded = [], 0, 0
        plan = tasks.plan(tiny, task, img, mask=mask, **settings)
        passes: list[int] = []
        res = getattr(tasks, task)(tiny, img, mask, 2, seed=1, callback=lambda *a, p=passes: p.append(1), **settings)
        assert (plan.grid, plan.canvas) == (tuple(res.tokens.shape),) * 2 and plan.used == res.used
        assert plan.decodes[0].free == int((~res.known).sum())
        assert plan.forward_passes == len(passes) == res.trace.forward_passes
        assert seen.grids == _plain_grids(plan) and (plan.decoded, plan.encoded) == (seen.decoded, seen.encoded)
    bound = tasks.plan(tiny, task, (16, 24), steps=40)  # no mask: every cell
    assert bound.decodes[0].free == 24 and bound.steps == 24
    with pytest.raises(ValueError, match="needs the image itself"):
        tasks.plan(tiny, task, (16, 24), mask=mask)


def test_a_reencode_without_its_seed_is_planned_as_a_bound(tiny: Pipeline) -> None:
    """The cells a re-encode decodes again are drawn from its seed: without it, their count is known, not
    their places, and every window counts every cell it reaches first."""
    img, settings = image(16, 32), {"scale": 2.0, "strategy": "reencode", "regenerate": 0.25, "steps": 3}
    exact = tasks.plan(tiny, "resize", img, seed=4, **settings)
    bound = tasks.plan(tiny, "resize", img, **settings)
    assert bound.decodes[0].free == exact.decodes[0].free == 32
    assert bound.forward_passes >= exact.forward_passes and bound.windows[0] >= exact.windows[0]
    assert sum(bound.decodes[0].parts) == 8 * 16


def test_a_plan_needs_only_the_images_shape_and_checks_as_the_task_does(tiny: Pipeline) -> None:
    img = image(20, 37)  # 4 x 7 cells once at the native height
    for task, settings in (("outpaint", {"left": 2}), ("panorama", {"times": 2}), ("resize", {"scale": 2.0})):
        assert tasks.plan(tiny, task, img, **settings) == tasks.plan(tiny, task, img.shape, **settings)
    assert tasks.plan(tiny, "outpaint", (20, 37), right=1).canvas == (4, 8)
    bad_settings = [("outpaint", bad) for bad in ({"left": -1}, {"top": 1.5}, {"steps": 0}, {"decoding": "tiled"})]
    bad_settings += [("outpaint", {"right": 2000}), ("panorama", {"times": 9}), ("panorama", {"side": "up"})]
    for task, bad in [*bad_settings, ("panorama", {"times": 8, "max_cells": 100}), ("resize", {"scale": 5})]:
        with pytest.raises(ValueError) as planned:
            tasks.plan(tiny, task, img, **bad)
        with pytest.raises(ValueError) as ran:
            getattr(tasks, task)(tiny, img, 1, seed=0, **bad)
        assert str(planned.value) == str(ran.value), bad
    with pytest.raises(ValueError, match="task must be one of"):
        tasks.plan(tiny, "generate", img)


def test_the_tasks_grow_their_grids_with_the_planners_geometry(tiny: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """One source of the geometry: a panorama's rounds changed in :mod:`arpg.tasks.canvas` change the run and
    the plan alike."""
    monkeypatch.setattr(canvas, "panorama_rounds", lambda length, times, step, trained: [(length, 1)] * 3)
    for decoding in ("whole", "windowed"):
        settings = {"times": 2, "steps": 2, "decoding": decoding}
        plan = tasks.plan(tiny, "panorama", image(), **settings)
        res, passes, rounds = _run(tiny, "panorama", image(), settings)
        assert len(plan.decodes) == rounds == 3 and plan.forward_passes == passes == 3 * 2
        assert plan.grid == tuple(res.tokens.shape) and plan.used == res.used
        assert tuple(res.image.shape[:2]) == (16, 28)  # the rounds, not times, grew it: 4 + 3 cells


def test_check_request_prices_the_tasks_own_plan(tiny: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cost.COST_ENV, raising=False)
    opts = SamplingOptions(steps=3, cfg_scale=2.0)
    img = image(16, 24)
    for task, settings in (("outpaint", {"right": 3}), ("panorama", {"times": 3}), ("resize", {}), ("inpaint", {})):
        want = cost.plan_cost(tasks.plan(tiny, task, img.shape, opts, **settings))
        assert cost.check_request(tiny, task, opts, img, **settings) == want, task
        grid = (4, 6)
        if task != "inpaint":
            settings = {**settings, "decoding": tiny.decodings[task]}
        if task == "resize":
            settings = {k: getattr(tiny.resize_defaults, k) for k in ("scale", "strategy", "regenerate")}
        window = list(tiny.model.cfg.trained_sizes)
        assert cost.task_cost(task, opts, grid, window=window, **settings) == want, task


def test_the_package_exports_what_its_importers_use_and_nothing_private() -> None:
    public = {
        *("DEFAULT_DECODING", "MAX_CELLS", "RESIZE_STRATEGIES", "SIDES", "TaskResult", "Used", "cells_from_mask"),
        *("check_cells", "decoding_for", "edit", "fit_steps", "inpaint", "lattice_context", "outpaint", "panorama"),
        *("place", "resize", "resize_settings", "Decode", "TaskPlan", "plan"),
    }
    assert set(package.__all__) == public and all(hasattr(package, n) for n in public)
    assert not [n for n in vars(package) if n.startswith("_") and not n.startswith("__")]
    assert planning.plan is tasks.plan and canvas.SIDES == tasks.SIDES
    with pytest.raises(ImportError):
        __import__("arpg.task_core")
