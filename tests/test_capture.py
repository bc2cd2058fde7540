"""Fixed-shape, kept and captured decoding steps (arpg.capture) give the eager path's tokens."""

from __future__ import annotations

import pytest
import torch

from arpg.capture import CapturedSteps
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline
from arpg.sampling import generate

OPTS = SamplingOptions(steps=5, cfg_scale=3.0, top_p=0.9)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.random()


def tokens(pipe: Pipeline, labels, seed, stepper=None, opts: SamplingOptions = OPTS, **kw) -> torch.Tensor:
    gen = [pipe.generator(s) for s in seed] if isinstance(seed, list) else pipe.generator(seed)
    return generate(pipe.model, labels, opts, generator=gen, stepper=stepper, **kw).tokens


def test_static_steps_equal_eager_and_keep_their_cache_between_calls(pipe):
    steps = CapturedSteps(pipe.model, "static")
    for labels, seed in [([1, 2], 0), ([3, 4], 1), ([5, 6], 2)]:  # one plan, used three times
        assert torch.equal(tokens(pipe, labels, seed, steps), tokens(pipe, labels, seed))
    assert steps.plans == 1
    plan = next(iter(steps._plans.values()))
    assert len(plan.steps) == OPTS.steps and not plan.busy  # one step object per step, released at the end
    per_image = tokens(pipe, [1, 2, 3], [7, 8, 9], steps)  # another batch: another plan
    assert torch.equal(per_image, tokens(pipe, [1, 2, 3], [7, 8, 9])) and steps.plans == 2


def test_plans_are_bounded_and_a_busy_plan_is_not_shared(pipe):
    steps = CapturedSteps(pipe.model, "static", max_plans=2)
    for b in (1, 2, 3):
        tokens(pipe, list(range(b)), 0, steps)
    assert steps.plans == 2
    first = steps.open(4, 10, [4, 4, 4, 4])
    second = steps.open(4, 10, [4, 4, 4, 4])  # the same plan while the first decode runs
    assert second.cache is not first.cache and type(second).__name__ == "StepSession"
    first.close()
    assert steps.open(4, 10, [4, 4, 4, 4]).cache is first.cache


def test_the_pipeline_option_and_a_bad_mode(pipe):
    ref = pipe.generate([3, 3], OPTS, seed=5)
    pipe.stepper = CapturedSteps(pipe.model, "static")
    try:
        assert torch.equal(pipe.generate([3, 3], OPTS, seed=5).tokens, ref.tokens)
    finally:
        pipe.stepper = None
    with pytest.raises(ValueError, match="capture mode must be one of"):
        CapturedSteps(pipe.model, "fast")
    with pytest.raises(ValueError, match="needs the model on a CUDA device"):
        CapturedSteps(pipe.model, "graph")


@pytest.mark.slow
def test_compiled_steps_give_the_eager_tokens(pipe):
    """torch.compile on this CPU: minutes for the first step shape, so two steps only."""
    opts = OPTS.replace(steps=2)
    steps = CapturedSteps(pipe.model, "compile")
    assert torch.equal(tokens(pipe, [1, 7], 3, steps, opts), tokens(pipe, [1, 7], 3, opts=opts))
    assert torch.equal(tokens(pipe, [2, 8], 4, steps, opts), tokens(pipe, [2, 8], 4, opts=opts))  # compiled reused


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_graph_steps_give_the_eager_tokens_on_cuda():
    pipe = Pipeline.random()
    pipe.model.cuda()
    steps = CapturedSteps(pipe.model, "graph")
    for seed in (0, 1):  # the first call captures, the second replays
        assert torch.equal(tokens(pipe, [1, 7], seed, steps), tokens(pipe, [1, 7], seed))
