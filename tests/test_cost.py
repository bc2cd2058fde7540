"""The cost of a request (:mod:`arpg.cost`): the estimate counts exactly the forward passes and
queries a decode runs, task geometry included, and the ceiling refuses with cheaper settings."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from arpg import cost, tasks
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline

SHIPPED_GRID = (16, 16)  # the shipped model's native grid


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.random("ARPG-tiny", "VQ-tiny")  # 4x4 grid, 4 px per token


def image(w: int = 16, h: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_the_formula() -> None:
    c = cost.estimate(256, 32, batch=4, queries=256)
    assert c.units == 4 * 2 * (32 * 256 + cost.QUERY_WEIGHT * 256) + cost.PASS_WEIGHT * 32  # passes: once per batch
    assert cost.estimate(256, 32, guidance=False).units == 32 * 256 + cost.QUERY_WEIGHT * 256 + cost.PASS_WEIGHT * 32
    assert "256 cells x 32 forward passes x 4 images x 2 with guidance" in c.describe()
    with pytest.raises(ValueError, match="cells"):
        cost.estimate(0, 1)


@pytest.mark.parametrize(
    "order, schedule, steps",
    [
        ("random", "arccos", 5),
        ("raster", "linear", 16),
        ("confidence", "arccos", 6),
        ("confidence", "k=3", 1),
        ("spiral-in", "cosine", 3),
    ],
)
@pytest.mark.parametrize("cfg_scale", [1.0, 3.0])
def test_the_estimate_counts_what_a_decode_runs(
    pipe: Pipeline, order: str, schedule: str, steps: int, cfg_scale: float
) -> None:
    options = SamplingOptions(steps=steps, schedule=schedule, order=order, cfg_scale=cfg_scale)
    out = pipe.generate([1, 2], options, seed=0)
    c = cost.for_options(options, 16, batch=2)
    assert (c.forward_passes, c.queries) == (out.trace.forward_passes, out.trace.queries)
    assert c.guidance == (cfg_scale != 1.0)


def _passes(run) -> int:
    """Forward passes of a task: its step callback is called once per pass."""
    calls = []
    run(lambda step, n, tokens: calls.append(step))
    return len(calls)


@pytest.mark.parametrize("order", ["random", "confidence"])
def test_task_geometry_matches_the_tasks(pipe: Pipeline, order: str) -> None:
    """Whole-canvas decoding: the estimate is exactly the decode's geometry."""
    opts = SamplingOptions(steps=3, order=order, cfg_scale=2.0)
    img = image(24, 16)  # 4 x 6 cells
    grid = (4, 6)
    res = tasks.outpaint(pipe, img, 1, opts, left=1, top=2, seed=0, decoding="whole")
    c = cost.task_cost("outpaint", opts, grid, left=1, top=2, decoding="whole")
    assert (c.cells, c.forward_passes, c.queries) == (res.known.numel(), res.trace.forward_passes, res.trace.queries)
    res = tasks.resize(pipe, img, 1, opts, scale=1.5, strategy="lattice", seed=0, decoding="whole")
    c = cost.task_cost("resize", opts, grid, scale=1.5, strategy="lattice", decoding="whole")
    assert (c.cells, c.forward_passes, c.queries) == (res.known.numel(), res.trace.forward_passes, res.trace.queries)
    for side in ("right", "bottom"):
        rounds: list = []
        passes = _passes(
            lambda cb, s=side, r=rounds: tasks.panorama(
                pipe, img, 1, opts, times=3, side=s, seed=0, callback=cb, on_round=r.append, decoding="whole"
            )
        )
        c = cost.task_cost("panorama", opts, grid, times=3, side=side, decoding="whole")
        assert (c.forward_passes, c.cells) == (passes, rounds[0].known.numel()), side
        assert c.queries == sum(r.trace.queries for r in rounds), side
    c = cost.task_cost("generate", opts, (4, 4), batch=3)
    out = pipe.generate([1, 2, 3], opts, seed=0)
    assert (c.forward_passes, c.queries, c.batch) == (out.trace.forward_passes, out.trace.queries, 3)


@pytest.mark.parametrize("order", ["random", "confidence"])
def test_windowed_decoding_is_bounded_by_the_estimate(pipe: Pipeline, order: str) -> None:
    """In windows of the trained size, the estimate (every window a full decode) bounds the decode."""
    opts = SamplingOptions(steps=3, order=order, cfg_scale=2.0)
    img, grid, window = image(24, 16), (4, 6), list(pipe.model.cfg.trained_sizes)
    for task, params in (("outpaint", dict(left=1, top=2)), ("resize", dict(scale=2.0))):
        res = getattr(tasks, task)(pipe, img, 1, opts, seed=0, decoding="windowed", **params)
        c = cost.task_cost(task, opts, grid, window=window, decoding="windowed", **params)
        assert c.forward_passes >= res.trace.forward_passes and c.queries >= res.trace.queries, task
        assert c.forward_passes > cost.task_cost(task, opts, grid, decoding="whole", **params).forward_passes
    for side in ("right", "bottom"):
        passes = _passes(
            lambda cb, s=side: tasks.panorama(
                pipe, img, 1, opts, times=3, side=s, seed=0, callback=cb, decoding="windowed"
            )
        )
        c = cost.task_cost("panorama", opts, grid, times=3, side=side, window=window, decoding="windowed")
        assert c.forward_passes >= passes, side


def test_inpaint_is_bounded_by_the_whole_grid(pipe: Pipeline) -> None:
    opts = SamplingOptions(steps=4)
    mask = np.zeros((16, 16), bool)
    mask[:, 8:] = True
    res = tasks.inpaint(pipe, image(), mask, 1, opts, seed=0)
    c = cost.task_cost("inpaint", opts, (4, 4))
    assert c.forward_passes >= res.trace.forward_passes and c.queries >= res.trace.queries


def test_the_ceiling_refuses_with_cheaper_settings_that_fit() -> None:
    """The request the load test found most expensive (207 s): resize x4 of the shipped model's
    grid, 256 steps, confidence-first."""
    heavy = SamplingOptions(steps=256, order="confidence", cfg_scale=3.0)
    with pytest.raises(ValueError, match="too expensive") as err:
        cost.check_task_cost("resize", heavy, SHIPPED_GRID, scale=4.0, ceiling=cost.CPU_MAX_COST)
    text = str(err.value)
    assert "4096 cells x 256 forward passes x 2 with guidance" in text
    assert f"limit of {cost.CPU_MAX_COST / 1e6:.1f} M" in text
    steps = int(re.search(r"at most (\d+) steps", text).group(1))
    assert "the random order instead of confidence-first" in text  # 256 random steps on 4096 cells fit
    random = heavy.replace(order="random")
    assert cost.task_cost("resize", random, SHIPPED_GRID, scale=4.0).units <= cost.CPU_MAX_COST
    assert cost.task_cost("resize", heavy.replace(steps=steps), SHIPPED_GRID, scale=4.0).units <= cost.CPU_MAX_COST
    assert cost.task_cost("resize", heavy.replace(steps=steps + 1), SHIPPED_GRID, scale=4.0).units > cost.CPU_MAX_COST


def test_a_cheaper_order_or_batch_is_named_when_it_fits() -> None:
    opts = SamplingOptions(steps=64, order="confidence", cfg_scale=3.0)
    with pytest.raises(ValueError, match="the random order instead of confidence-first") as err:
        cost.check_cost(opts, 1024, batch=2, ceiling=1_700_000)
    fewer = int(re.search(r"at most (\d+) images", str(err.value)).group(1))
    assert fewer == 1 and cost.for_options(opts, 1024, batch=fewer).units <= 1_700_000


@pytest.mark.parametrize(
    "task, batch, params",
    [
        ("generate", 4, {}),
        ("resize", 1, {"scale": 2.0}),
        ("outpaint", 1, {"right": 8}),
        ("panorama", 1, {"times": 8}),
        ("inpaint", 1, {}),
    ],
)
def test_the_apps_usual_requests_fit_under_the_cpu_ceiling(task: str, batch: int, params: dict) -> None:
    opts = SamplingOptions(steps=32, cfg_scale=3.0)
    assert cost.check_task_cost(task, opts, SHIPPED_GRID, batch, ceiling=cost.CPU_MAX_COST, **params).units > 0


def test_the_ceiling_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cost.COST_ENV, raising=False)
    assert cost.max_cost() == cost.max_cost("cpu") == cost.CPU_MAX_COST
    assert cost.max_cost("cuda:0") == cost.GPU_MAX_COST > cost.CPU_MAX_COST
    monkeypatch.setenv(cost.COST_ENV, "50_000_000")
    assert cost.max_cost() == cost.max_cost("cuda") == 50_000_000
    heavy = SamplingOptions(steps=256, order="confidence")
    assert cost.check_task_cost("resize", heavy, SHIPPED_GRID, scale=4.0).units < 50_000_000
    monkeypatch.setenv(cost.COST_ENV, "lots")
    with pytest.raises(ValueError, match="ARPG_MAX_COST must be a whole number, got 'lots'"):
        cost.max_cost()


def test_check_request_takes_the_grid_from_the_image_and_the_ceiling_from_the_device(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(cost.COST_ENV, raising=False)
    opts = SamplingOptions(steps=3)
    for img in (image(24, 16), Image.fromarray(image(48, 32))):  # 4 x 6 cells once at the native height
        want = cost.task_cost("outpaint", opts, (4, 6), window=list(pipe.model.cfg.trained_sizes), right=2)
        assert cost.check_request(pipe, "outpaint", opts, img, right=2) == want  # windowed, the default
    assert cost.check_request(pipe, "generate", opts, batch=2) == cost.task_cost("generate", opts, (4, 4), 2)
    monkeypatch.setenv(cost.COST_ENV, "1000")
    with pytest.raises(ValueError, match="too expensive .* over the limit of 1,000"):
        cost.check_request(pipe, "generate", opts, batch=2)
