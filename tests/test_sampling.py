import subprocess
import sys

import pytest
import torch

from arpg.config import ARPGConfig
from arpg.model import ARPG
from arpg.options import SamplingOptions
from arpg.sampling import Context, filter_logits, generate, method_kwargs, sample_logits
from arpg.schedules import cfg_scales, token_counts


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.3)
    torch.nn.init.normal_(m.head.weight, 0, 0.3)
    return m.eval()


@torch.no_grad()
def reference_greedy(model, labels, order, steps, schedule, cfg_scale, cfg_schedule):
    """The released sampler restated without a cache: at each step recompute the whole
    block-causal teacher-forced pass (cond and null rows) and take the argmax."""
    N = order.numel()
    B = len(labels)
    counts = token_counts(N, steps, schedule)
    ws = cfg_scales(counts, cfg_scale, cfg_schedule)
    tokens = torch.zeros(B, N, dtype=torch.long)
    lab = torch.tensor(labels)
    null = torch.full_like(lab, model.cfg.num_classes)
    done = 0
    for s, n in enumerate(counts):
        o = order.expand(B, N)
        cond = model(tokens, lab, o, counts=counts)[:, done : done + n]
        unc = model(tokens, null, o, counts=counts)[:, done : done + n]
        logits = unc + ws[s] * (cond - unc)
        tokens[:, order[done : done + n]] = logits.argmax(-1)
        done += n
    return tokens


@pytest.mark.parametrize(
    "steps,schedule,cfg_schedule,scale",
    [
        (1, "arccos", "linear", 4.0),
        (16, "arccos", "linear", 3.0),
        (5, "cosine", "constant", 2.5),
        (7, "linear", "linear", 1.5),
        (4, "arccos", "constant", 1.0),
    ],
)
def test_greedy_equals_released_algorithm(model, steps, schedule, cfg_schedule, scale):
    order = torch.randperm(16, generator=torch.Generator().manual_seed(steps))
    kw = dict(steps=steps, schedule=schedule, cfg_scale=scale, cfg_schedule=cfg_schedule, top_k=1, order=order)
    a = generate(model, [1, 3], generator=0, **kw)
    b = generate(model, [1, 3], generator=123, **kw)
    assert torch.equal(a.tokens, b.tokens)  # deterministic
    ref = reference_greedy(model, [1, 3], order, steps, schedule, scale, cfg_schedule)
    assert torch.equal(a.tokens.flatten(1), ref)


def test_step_logits_equal_full_recomputation(model):
    order = torch.randperm(16)
    res = generate(model, [0, 2], steps=6, cfg_scale=3.0, order=order, generator=1, keep_logits=True)
    toks = res.tokens.flatten(1)
    counts = res.trace.counts
    lab = torch.tensor([0, 2])
    with torch.no_grad():
        full_c = model(toks, lab, order.expand(2, 16), counts=counts)
        full_u = model(toks, torch.full_like(lab, 10), order.expand(2, 16), counts=counts)
    done = 0
    for s, n in enumerate(counts):
        step = res.trace.logits[s]
        torch.testing.assert_close(step[:2], full_c[:, done : done + n], atol=1e-4, rtol=0)
        torch.testing.assert_close(step[2:], full_u[:, done : done + n], atol=1e-4, rtol=0)
        done += n


def test_context_logits_equal_teacher_forced_pass_with_context_first(model):
    """Context is prefilled causally, as the first tokens of a training sequence: every step's
    logits equal the teacher-forced pass whose order lists the known cells first."""
    known = torch.rand(4, 4, generator=torch.Generator().manual_seed(5)) < 0.4
    ctx = torch.randint(0, 32, (4, 4), generator=torch.Generator().manual_seed(6))
    res = generate(model, [0, 2], steps=4, cfg_scale=1.0, context=Context(ctx, known), generator=1, keep_logits=True)
    K = int(known.sum())
    order = torch.cat([known.flatten().nonzero().flatten(), res.trace.order]).expand(2, 16)
    with torch.no_grad():
        full = model(res.tokens.flatten(1), torch.tensor([0, 2]), order, counts=[1] * K + res.trace.counts)
    done = K
    for s, n in enumerate(res.trace.counts):
        torch.testing.assert_close(res.trace.logits[s], full[:, done : done + n], atol=1e-4, rtol=0)
        done += n


def test_seed_reproduces_and_differs(model):
    a = generate(model, [1, 2, 3], steps=4, generator=7).tokens
    b = generate(model, [1, 2, 3], steps=4, generator=7).tokens
    c = generate(model, [1, 2, 3], steps=4, generator=8).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.slow
def test_seed_reproduces_across_processes(model, tmp_path):
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    code = (
        "import torch,sys;from arpg.config import ARPGConfig;from arpg.model import ARPG;"
        "from arpg.sampling import generate;m=ARPG(ARPGConfig.from_name('ARPG-tiny'));"
        f"m.load_state_dict(torch.load(r'{path}',weights_only=True));m.eval();"
        "print(generate(m,[1,2],steps=5,generator=11).tokens.flatten().tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    here = generate(model, [1, 2], steps=5, generator=11).tokens.flatten().tolist()
    assert out.strip() == str(here)


def test_context_kept_and_each_cell_decoded_once(model):
    known = torch.zeros(4, 4, dtype=torch.bool)
    known[:2] = True
    ctx = torch.randint(0, 32, (4, 4))
    res = generate(model, [1, 2], steps=3, context=Context(ctx, known), generator=0, snapshots=True)
    assert torch.equal(res.tokens[:, known], ctx[known].expand(2, -1))
    step_of = res.trace.step_of
    assert (step_of[known] == -1).all() and (step_of[~known] >= 0).all()
    assert sorted(res.trace.order.tolist()) == (~known).flatten().nonzero().flatten().tolist()
    assert sum(res.trace.counts) == 8 and res.trace.forward_passes == 3 == len(res.trace.snapshots)
    assert (res.tokens >= 0).all()
    # snapshots reveal exactly the cells of each step
    prev = known.clone()
    for s, snap in enumerate(res.trace.snapshots):
        now = snap[0] >= 0
        assert torch.equal(now & ~prev, step_of == s)
        prev = now


def test_forward_passes_equal_steps_and_cache_size(model):
    for steps in (1, 3, 16):
        res = generate(model, [0], steps=steps, cfg_scale=2.0, generator=0)
        assert res.trace.forward_passes == steps
        # 2 branches x (2 self layers + 1 shared) x (K, V) x length x dim 64 x fp32
        L = 1 + 16 - res.trace.counts[-1]
        assert res.trace.kv_cache_bytes == 2 * (2 + 1) * 2 * L * 64 * 4
    one = generate(model, [0], steps=4, cfg_scale=1.0, generator=0)
    two = generate(model, [0], steps=4, cfg_scale=2.0, generator=0)
    assert one.trace.kv_cache_bytes * 2 == two.trace.kv_cache_bytes


def test_non_square_grid(model):
    res = generate(model, [1], steps=4, grid=(3, 7), generator=0)
    assert res.tokens.shape == (1, 3, 7) and (res.tokens >= 0).all()


def test_raster_baseline_order(model):
    kw = method_kwargs("raster", 32, 16)
    res = generate(model, [1], generator=0, **kw)
    assert res.trace.order.tolist() == list(range(16)) and res.trace.counts == [1] * 16


def test_top_p_keeps_nucleus_and_does_not_mutate():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    before = logits.clone()
    out = filter_logits(logits, top_p=0.8)
    assert torch.equal(logits, before)
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.81)).sum() == 3
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).sum() == 1
    assert torch.isfinite(filter_logits(logits, top_k=2)).sum() == 2
    g = torch.Generator().manual_seed(0)
    draws = sample_logits(logits.expand(2000, 4), top_p=0.8, generator=g)
    assert set(draws.tolist()) == {0, 1}


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(steps=0), "steps"),
        (dict(steps=17), "steps"),
        (dict(schedule="nope"), "schedule"),
        (dict(temperature=0), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(order=[0, 0, 1]), "order"),
        (dict(order="zigzag"), "order"),
        (dict(cfg_scale=float("nan")), "cfg_scale"),
        (dict(labels=[11]), "labels"),
        (dict(labels=[-1]), "labels"),
        (dict(cfg_schedule="exp"), "schedule"),
    ],
)
def test_bad_arguments(model, kw, match):
    kw = {"labels": [1], "steps": 4, **kw}
    with pytest.raises(ValueError, match=match):
        generate(model, **kw)


def test_confidence_order_decodes_each_cell_once_and_costs_more_queries(model):
    res = generate(model, [1, 2], steps=5, order="confidence", generator=0, snapshots=True)
    assert sorted(res.trace.order.tolist()) == list(range(16))
    assert res.trace.queries > 16 and res.trace.forward_passes == 5
    step_of = res.trace.step_of.flatten()
    done = 0
    for s, n in enumerate(res.trace.counts):  # the trace order lists each step's cells in turn
        assert (step_of[res.trace.order[done : done + n]] == s).all()
        done += n
    plain = generate(model, [1, 2], steps=5, generator=0)
    assert plain.trace.queries == 16


def test_confidence_greedy_picks_most_confident_first(model):
    res = generate(model, [3], steps=16, order="confidence", top_k=1, cfg_scale=1.0, generator=0, keep_logits=True)
    # At step 0 only the class token is cached and every query sees the same single key, so
    # all cells tie; from step 1 on, the most confident remaining cell must be chosen.
    first = res.trace.order[0].item()
    remaining = [c for c in range(16) if c != first]  # step 1 queries these, in raster order
    probs = torch.softmax(res.trace.logits[1][0], dim=-1).max(-1).values
    assert res.trace.order[1].item() == remaining[int(probs.argmax())]


def test_one_generator_per_image_equals_single_calls(model):
    labels = [1, 5, 9]
    batch = generate(model, labels, steps=4, cfg_scale=2.0, generator=[10, 11, 12])
    for b, lab in enumerate(labels):
        alone = generate(model, [lab], steps=4, cfg_scale=2.0, generator=10 + b)
        assert torch.equal(batch.tokens[b], alone.tokens[0])
        assert torch.equal(batch.trace.order[b], alone.trace.order)
    assert batch.trace.step_of.shape == (3, 4, 4)
    with pytest.raises(ValueError, match="generator"):
        generate(model, labels, steps=4, generator=[1, 2])


def test_options_value_and_keyword_overrides_agree(model):
    opts = SamplingOptions(steps=5, order="z-curve", cfg_scale=2.0)
    a = generate(model, [1, 2], opts, generator=3)
    b = generate(model, [1, 2], generator=3, steps=5, order="z-curve", cfg_scale=2.0)
    c = generate(model, [1, 2], opts.replace(steps=4), generator=3, steps=5)  # overrides win over the value
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.tokens, c.tokens)
    assert a.trace.forward_passes == 5 and a.tokens.device.type == a.trace.order.device.type == "cpu"
    with pytest.raises(TypeError, match="stpes"):
        generate(model, [1], stpes=4)


# -- step attention: how the tokens fed in one step see each other --------------------------------
def test_causal_step_attention_changes_only_steps_that_feed_several_tokens() -> None:
    from arpg.config import ARPGConfig
    from arpg.model import ARPG

    model = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2).eval()
    torch.nn.init.normal_(model.head.weight, 0.0, 0.2)  # logits that depend on what each token saw
    one = dict(schedule="k=1", steps=16, cfg_scale=2.0, order="random", generator=3)  # one token fed per step
    joint = generate(model, [1], **one)
    assert torch.equal(joint.tokens, generate(model, [1], step_attention="causal", **one).tokens)
    many = dict(steps=4, cfg_scale=2.0, order="random", generator=3, keep_logits=True)  # several tokens a step
    a, b = generate(model, [1, 2], **many), generate(model, [1, 2], step_attention="causal", **many)
    assert torch.equal(a.trace.order, b.trace.order)  # the same cells in the same steps
    la, lb, counts = a.trace.logits, b.trace.logits, a.trace.counts
    assert torch.equal(la[0], lb[0]) and counts[0] > 1  # the first pass: the class token, a causal prefill anyway
    assert not torch.allclose(la[1], lb[1])  # the second feeds the first step's tokens: they saw each other or not
    with pytest.raises(ValueError, match="step_attention"):
        generate(model, [1], step_attention="sideways")
