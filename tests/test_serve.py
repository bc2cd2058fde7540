"""Request batching (arpg.serve): batched requests get what they would get alone, their step
streams, and cancellation that leaves the others running."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from arpg import serve
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline
from arpg.sampling import generate
from arpg.serve import Batcher, BatchSettings, Cancelled

OPTS = SamplingOptions(steps=5, cfg_scale=3.0, top_p=0.9, order="random")
REQUESTS = [([3, 3, 1], 11), ([7], 5), ([0, 9], 99)]  # (labels, seed) of three visitors


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.random()  # float32 on the CPU: batch-invariant kernels


def alone(pipe: Pipeline, labels: list[int], seed: int, opts: SamplingOptions = OPTS) -> tuple[torch.Tensor, list]:
    """Tokens and the per-step stream of one request decoded by itself."""
    steps: list[torch.Tensor] = []
    res = generate(
        pipe.model, labels, opts, generator=pipe.generator(seed), callback=lambda s, n, t: steps.append(t.clone())
    )
    return res.tokens, steps


def submit_all(batcher: Batcher, requests, opts: SamplingOptions = OPTS, callbacks=None) -> list[serve.Ticket]:
    callbacks = callbacks or [None] * len(requests)
    return [batcher.submit(lab, opts, seed=seed, callback=cb) for (lab, seed), cb in zip(requests, callbacks)]


def full_batch(requests) -> BatchSettings:
    """Settings under which the requests go as one batch when the last arrives (no timing involved)."""
    return BatchSettings(wait_ms=10_000, max_batch=sum(len(lab) for lab, _ in requests))


def test_batched_requests_get_their_tokens_and_step_streams_alone(pipe):
    streams: list[list[torch.Tensor]] = [[] for _ in REQUESTS]
    callbacks = [lambda s, n, t, out=out: out.append(t.clone()) for out in streams]
    batcher = Batcher(pipe.model, full_batch(REQUESTS))
    tickets = submit_all(batcher, REQUESTS, callbacks=callbacks)
    results = [t.result(timeout=60) for t in tickets]
    assert batcher.batches == [6]  # one decode for the three requests
    for (labels, seed), res, stream in zip(REQUESTS, results, streams):
        tokens, steps = alone(pipe, labels, seed)
        assert torch.equal(res.tokens, tokens)  # bit-identical in float32
        assert len(stream) == len(steps) == OPTS.steps
        assert all(torch.equal(a, b) for a, b in zip(stream, steps))
        assert res.trace.order.shape == (16,) and res.trace.step_of.shape == (4, 4)
    assert batcher.join(timeout=30)


def test_a_cancelled_request_is_dropped_at_the_next_step_and_the_others_go_on(pipe):
    batcher = Batcher(pipe.model, full_batch(REQUESTS))
    rows: list[int] = []
    hook = pipe.model.head.register_forward_hook(lambda m, i, o: rows.append(o.shape[0]))
    seen: list[int] = []
    tickets: list[serve.Ticket] = []

    def first_cancels_at_step_1(s: int, n: int, t: torch.Tensor) -> None:
        seen.append(s)
        if s == 1:
            tickets[0].cancel()  # an event, as a page that leaves sets it

    try:
        tickets.extend(submit_all(batcher, REQUESTS, callbacks=[first_cancels_at_step_1, None, None]))
        with pytest.raises(Cancelled):
            tickets[0].result(timeout=60)
        rest = [t.result(timeout=60) for t in tickets[1:]]
    finally:
        hook.remove()
    assert seen == [0, 1]  # no step after the cancellation reaches it
    assert rows == [12, 12, 6, 6, 6]  # 2 branches x 6 images, then x 3 once it has left
    for (labels, seed), res in zip(REQUESTS[1:], rest):
        assert torch.equal(res.tokens, alone(pipe, labels, seed)[0])


def test_a_callback_that_raises_fails_its_request_only(pipe):
    class PageLeft(Exception):
        pass

    def leave(s: int, n: int, t: torch.Tensor) -> None:
        if s == 2:
            raise PageLeft()

    batcher = Batcher(pipe.model, full_batch(REQUESTS))
    tickets = submit_all(batcher, REQUESTS, callbacks=[None, leave, None])
    with pytest.raises(PageLeft):
        tickets[1].result(timeout=60)
    for i in (0, 2):
        assert torch.equal(tickets[i].result(timeout=60).tokens, alone(pipe, *REQUESTS[i])[0])


def test_requests_that_cannot_share_a_decode_are_decoded_apart(pipe):
    other = OPTS.replace(steps=4)
    batcher = Batcher(pipe.model, BatchSettings(wait_ms=10_000, max_batch=3))
    # max_batch 3: the first request (3 images) fills a batch; the next two differ in steps
    a = batcher.submit([1, 2, 3], OPTS, seed=1)
    b = batcher.submit([4], other, seed=2)
    c = batcher.submit([5], OPTS, seed=3)
    assert torch.equal(a.result(timeout=60).tokens, alone(pipe, [1, 2, 3], 1)[0])
    b.cancel(), c.cancel()  # each waits for companions that never come: cancelling ends the wait
    with pytest.raises(Cancelled):
        b.result(timeout=60)
    assert batcher.batches == [3]
    with pytest.raises(ValueError, match="cannot be batched"):
        batcher.submit([1], OPTS.replace(order="confidence"), seed=1)
    with pytest.raises(ValueError, match="labels"):
        batcher.submit([99], OPTS, seed=1)  # checked at once, never inside a batch


def test_the_app_entry_point_gives_pipeline_generate_outputs(pipe):
    settings = BatchSettings(wait_ms=1, max_batch=8)
    out = serve.generate(pipe, [2, 5], OPTS, seed=42, settings=settings)
    ref = pipe.generate([2, 5], OPTS, seed=42)
    assert np.array_equal(out.images, ref.images) and torch.equal(out.tokens, ref.tokens)
    assert out.seed == 42 and out.labels == [2, 5] and out.trace.forward_passes == ref.trace.forward_passes
    conf = serve.generate(pipe, [2], OPTS.replace(order="confidence"), seed=1, settings=settings)  # not batchable
    assert np.array_equal(conf.images, pipe.generate([2], OPTS.replace(order="confidence"), seed=1).images)


def test_concurrent_callers_share_one_batcher_per_model(pipe):
    settings = BatchSettings(wait_ms=10_000, max_batch=4)
    outs: dict[int, object] = {}
    batcher = serve.batcher_for(pipe, settings)  # held here, so the callers find this one

    def call(i: int) -> None:
        outs[i] = serve.generate(pipe, [i], OPTS, seed=i, settings=settings)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert serve.batcher_for(pipe, settings) is batcher and batcher.batches == [4]  # the four went as one decode
    for i in range(4):
        assert torch.equal(outs[i].tokens, pipe.generate([i], OPTS, seed=i).tokens)


def test_settings_from_the_environment():
    assert serve.settings_from_env({}) is None  # off unless asked for
    assert serve.settings_from_env({"ARPG_BATCH_WAIT_MS": "0"}) is None
    assert serve.settings_from_env({"ARPG_BATCH_WAIT_MS": "25", "ARPG_MAX_BATCH": "1"}) is None
    assert serve.settings_from_env({"ARPG_BATCH_WAIT_MS": "25"}) == BatchSettings(25.0, serve.DEFAULT_MAX_BATCH)
    assert serve.settings_from_env({"ARPG_BATCH_WAIT_MS": "40", "ARPG_MAX_BATCH": "32"}) == BatchSettings(40.0, 32)
    with pytest.raises(ValueError, match="ARPG_MAX_BATCH must be a whole number"):
        serve.settings_from_env({"ARPG_BATCH_WAIT_MS": "25", "ARPG_MAX_BATCH": "lots"})
    with pytest.raises(ValueError, match="ARPG_BATCH_WAIT_MS must be"):
        serve.settings_from_env({"ARPG_BATCH_WAIT_MS": "-3"})
    assert serve.concurrent_requests(BatchSettings(25, 16)) == serve.MAX_CONCURRENT
    assert serve.concurrent_requests(BatchSettings(25, 4)) == 4 and serve.concurrent_requests(None) is None


@pytest.mark.slow
def test_bf16_batched_images_are_judged_as_alone():
    """bf16 kernels pick other blockings for other row counts, so a batched image is not the same
    bits as alone: the judge must read the same classes (the sampled images are draws of the same
    distribution, not copies)."""
    from arpg.judge import judge_images

    p16 = Pipeline.shipped(dtype=torch.bfloat16)
    opts = p16.defaults
    requests = [([d] * 2, 100 + d) for d in range(10)]
    batcher = Batcher(p16.model, full_batch(requests))
    batched = [p16.decode(t.result(timeout=300).tokens) for t in submit_all(batcher, requests, opts)]
    lone = [p16.decode(alone(p16, lab, seed, opts)[0]) for lab, seed in requests]
    truth = np.repeat(np.arange(10), 2)
    got = judge_images(p16.judge, np.concatenate(batched))[0]
    ref = judge_images(p16.judge, np.concatenate(lone))[0]
    assert (got == ref).mean() >= 0.9 and (got == truth).mean() >= (ref == truth).mean() - 0.1


def test_a_request_batched_alone_is_the_same_bits_in_bf16():
    """With no companion the decode has the rows of a call alone, so even bf16 gives the same tokens."""
    p16 = Pipeline.random()
    p16.model.to(torch.bfloat16)
    out = serve.generate(p16, [4, 4, 8], OPTS, seed=3, settings=BatchSettings(wait_ms=1, max_batch=8))
    assert torch.equal(out.tokens, p16.generate([4, 4, 8], OPTS, seed=3).tokens)
