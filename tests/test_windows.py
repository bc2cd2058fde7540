"""Windowed decoding on a tiny random model (trained size 4x4): the plan, each cell decoded once, context kept,
windows within the trained size, seeds, and the exact reduction to one plain generate call."""

import pytest
import torch

from arpg import windows
from arpg.config import ARPGConfig
from arpg.model import ARPG
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline
from arpg.sampling import Context, generate
from arpg.windows import Window, generate_canvas, generate_windowed, pick_window, plan_windows

OPTS = SamplingOptions(steps=3, cfg_scale=2.0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.3)
    torch.nn.init.normal_(m.head.weight, 0, 0.3)
    return m.eval()


def left_context(rows, cols, known_cols, seed=0):
    tokens = torch.randint(0, 32, (rows, cols), generator=torch.Generator().manual_seed(seed))
    known = torch.zeros(rows, cols, dtype=torch.bool)
    known[:, :known_cols] = True
    return Context(tokens, known)


def test_plan_right_outpaint_and_panorama_run_left_to_right():
    known = torch.zeros(16, 24, dtype=torch.bool)
    known[:, :16] = True
    assert plan_windows(16, 24, (16, 16), known=known) == [Window(0, 8, 16, 16)]
    known = torch.zeros(16, 64, dtype=torch.bool)
    known[:, :16] = True
    assert [w.left for w in plan_windows(16, 64, (16, 16), known=known)] == [8, 16, 24, 32, 40, 48]
    known = torch.zeros(16, 40, dtype=torch.bool)
    known[:, -16:] = True  # a left outpaint runs right to left
    assert [w.left for w in plan_windows(16, 40, (16, 16), known=known)] == [16, 8, 0]


def test_plan_covers_every_cell_with_windows_of_the_trained_size():
    known = torch.zeros(32, 32, dtype=torch.bool)
    known[::2, ::2] = True  # a resize lattice
    plan = plan_windows(32, 32, (16, 16), overlap=(8, 4), known=known)
    covered = known.clone()
    for w in plan:
        assert (w.rows, w.cols) == (16, 16)
        assert not covered[w.cells].all()  # no window without work
        covered[w.cells] = True
    assert covered.all()
    assert plan_windows(6, 40, (16, 16))[0] == Window(0, 0, 6, 16)  # clipped to a short canvas
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(16, 40, (16, 16), overlap=16)


def test_pick_window_prefers_the_trained_size_covering_most():
    cfg = ARPGConfig.from_name("ARPG-tiny")
    assert pick_window(16, 64, cfg=cfg) == (4, 4)
    assert pick_window(16, 64, [(16, 16), (16, 32), (24, 24)]) == (16, 32)
    assert pick_window(24, 24, [(16, 16), (16, 32), (24, 24)]) == (24, 24)
    assert pick_window(8, 8, (16, 16)) == (8, 8)


def test_every_cell_decoded_once_and_context_unchanged(model):
    ctx = left_context(4, 11, 4)
    res = generate_windowed(model, [1, 2], OPTS, grid=(4, 11), context=ctx, generator=0)
    free = ~ctx.known
    assert res.tokens.shape == (2, 4, 11)
    assert torch.equal(res.tokens[:, ctx.known], ctx.tokens[ctx.known].expand(2, -1))
    assert ((res.tokens >= 0) & (res.tokens < 32)).all()
    t = res.trace
    assert (t.rows, t.cols) == (4, 11)
    assert sorted(t.order.tolist()) == free.flatten().nonzero().flatten().tolist()
    assert sum(t.counts) == int(free.sum()) and len(t.cfg) == len(t.counts)
    assert ((t.step_of >= 0) == free).all()
    assert sorted(set(t.step_of[free].tolist())) == list(range(len(t.counts)))
    assert t.forward_passes == len(t.counts)


def test_every_window_within_the_trained_size(model, monkeypatch):
    grids = []

    def spy(*args, **kwargs):
        grids.append(kwargs["grid"])
        return generate(*args, **kwargs)

    monkeypatch.setattr(windows, "generate", spy)
    known = torch.zeros(9, 10, dtype=torch.bool)
    known[::2, ::2] = True
    ctx = Context(torch.zeros(9, 10, dtype=torch.long), known)
    res = generate_windowed(model, [3], OPTS, grid=(9, 10), context=ctx, generator=1)
    assert len(grids) > 1 and all(r <= 4 and c <= 4 for r, c in grids)
    assert ((res.trace.step_of >= 0) == ~known).all()


def test_seeded_reproducibility(model):
    a = generate_windowed(model, [4], OPTS, grid=(4, 12), generator=7)
    b = generate_windowed(model, [4], OPTS, grid=(4, 12), generator=torch.Generator().manual_seed(7))
    c = generate_windowed(model, [4], OPTS, grid=(4, 12), generator=8)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.trace.order, b.trace.order)
    assert not torch.equal(a.tokens, c.tokens)


def test_canvas_equal_to_the_window_is_one_plain_generate(model):
    ctx = left_context(4, 4, 2)
    for context in (None, ctx):
        plain = generate(model, [5, 6], OPTS, grid=(4, 4), context=context, generator=3)
        win = generate_windowed(model, [5, 6], OPTS, grid=(4, 4), context=context, generator=3)
        assert torch.equal(plain.tokens, win.tokens)
        assert torch.equal(plain.trace.order, win.trace.order) and torch.equal(plain.trace.step_of, win.trace.step_of)


def test_per_image_generators_match_single_image_calls(model):
    both = generate_windowed(model, [1, 8], OPTS, grid=(4, 9), generator=[11, 12])
    for b, (label, seed) in enumerate(((1, 11), (8, 12))):
        alone = generate_windowed(model, [label], OPTS, grid=(4, 9), generator=[seed])
        assert torch.equal(both.tokens[b], alone.tokens[0])
    assert both.trace.order.shape[0] == 2 and both.trace.step_of.shape == (2, 4, 9)


def test_callback_snapshots_and_canvas_permutation(model):
    seen = []
    res = generate_windowed(
        model,
        [2],
        OPTS,
        grid=(6, 7),
        generator=5,
        snapshots=True,
        callback=lambda s, n, tok: seen.append((s, n, tuple(tok.shape), int((tok >= 0).sum()))),
    )
    steps = len(res.trace.counts)
    assert [s for s, *_ in seen] == list(range(steps)) and {n for _, n, *_ in seen} == {steps}
    assert all(shape == (1, 6, 7) for *_, shape, _ in seen)
    assert [k for *_, k in seen] == sorted(k for *_, k in seen) and seen[-1][-1] == 42
    assert len(res.trace.snapshots) == steps and torch.equal(res.trace.snapshots[-1], res.tokens)
    raster = generate_windowed(model, [2], OPTS, grid=(6, 7), generator=5, order="raster")
    perm = generate_windowed(model, [2], OPTS, grid=(6, 7), generator=5, order=torch.arange(42))
    assert torch.equal(raster.tokens, perm.tokens)


def test_generate_canvas_chooses_the_decoding():
    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    whole = pipe.generate([1], OPTS, seed=4)
    same = generate_canvas(pipe, [1], OPTS, seed=4, decoding="windowed")
    assert torch.equal(whole.tokens, same.tokens) and (whole.images == same.images).all()
    wide = generate_canvas(pipe, [1], OPTS, seed=4, grid=(4, 10))
    assert wide.images.shape == (1, 4 * pipe.factor, 10 * pipe.factor, 3) and wide.seed == 4
    assert torch.equal(generate_canvas(pipe, [1], OPTS, seed=4, decoding="whole").tokens, whole.tokens)
    with pytest.raises(ValueError, match="decoding must be one of"):
        generate_canvas(pipe, [1], OPTS, decoding="tiles")


def test_bad_context_is_a_clear_error(model):
    with pytest.raises(ValueError, match="context.known must have shape"):
        generate_windowed(model, [1], OPTS, grid=(4, 8), context=left_context(4, 6, 2))
    with pytest.raises(ValueError, match="nothing to decode"):
        generate_windowed(model, [1], OPTS, grid=(4, 8), context=left_context(4, 8, 8))
