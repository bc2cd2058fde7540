"""Tests for arpg.orders (decoding orders over a token grid)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from arpg.config import ARPGConfig
from arpg.model import ARPG
from arpg.orders import (
    ADAPTIVE_ORDERS,
    ORDER_NAMES,
    SAMPLER_ORDERS,
    ConfidenceOrder,
    FixedOrder,
    check_permutation,
    checkerboard,
    make_order,
    make_policy,
    order_policy,
    random_order,
    raster,
    spiral_in,
    spiral_out,
    zcurve,
)

GRIDS = [(1, 1), (1, 7), (7, 1), (2, 2), (2, 5), (5, 3), (3, 5), (4, 4), (6, 9), (16, 16), (24, 24), (13, 32)]


def _is_perm(t: torch.Tensor, n: int) -> bool:
    return (
        t.dtype == torch.long and t.dim() == 1 and t.numel() == n and torch.equal(torch.sort(t).values, torch.arange(n))
    )


def test_order_names() -> None:
    assert ORDER_NAMES == ("random", "raster", "spiral-in", "spiral-out", "z-curve", "alternate", "halton", "lpd")


@pytest.mark.parametrize("rows, cols", GRIDS)
@pytest.mark.parametrize("name", ORDER_NAMES)
def test_every_order_is_a_permutation(name: str, rows: int, cols: int) -> None:
    g = torch.Generator().manual_seed(0)
    order = make_order(name, rows, cols, generator=g)
    assert _is_perm(order, rows * cols)
    assert torch.equal(check_permutation(order, rows * cols), order)


def test_raster() -> None:
    assert raster(2, 3).tolist() == [0, 1, 2, 3, 4, 5]


def test_spiral_in_3x3() -> None:
    assert spiral_in(3, 3).tolist() == [0, 1, 2, 5, 8, 7, 6, 3, 4]


def test_spiral_in_non_square() -> None:
    assert spiral_in(1, 4).tolist() == [0, 1, 2, 3]
    assert spiral_in(4, 1).tolist() == [0, 1, 2, 3]
    # 3x4: 0 1 2 3 / 4 5 6 7 / 8 9 10 11
    assert spiral_in(3, 4).tolist() == [0, 1, 2, 3, 7, 11, 10, 9, 8, 4, 5, 6]
    # 4x3: 0 1 2 / 3 4 5 / 6 7 8 / 9 10 11
    assert spiral_in(4, 3).tolist() == [0, 1, 2, 5, 8, 11, 10, 9, 6, 3, 4, 7]


def test_spiral_out_is_reverse() -> None:
    for rows, cols in GRIDS:
        assert spiral_out(rows, cols).tolist() == spiral_in(rows, cols).tolist()[::-1]
    assert spiral_out(3, 3).tolist()[0] == 4


def test_zcurve() -> None:
    z = zcurve(4, 4).tolist()
    assert z[:8] == [0, 1, 4, 5, 2, 3, 6, 7]
    assert z == [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    # non power of two: 3x3 is the 4x4 Z order with out-of-grid cells dropped
    assert zcurve(3, 3).tolist() == [0, 1, 3, 4, 2, 5, 6, 7, 8]
    assert zcurve(1, 5).tolist() == [0, 1, 2, 3, 4]
    assert zcurve(5, 1).tolist() == [0, 1, 2, 3, 4]


def test_checkerboard() -> None:
    assert checkerboard(2, 3).tolist() == [0, 2, 4, 1, 3, 5]
    assert checkerboard(3, 3).tolist() == [0, 2, 4, 6, 8, 1, 3, 5, 7]
    assert checkerboard(1, 1).tolist() == [0]
    assert torch.equal(make_order("alternate", 4, 4), checkerboard(4, 4))


def test_random_order_reproducible() -> None:
    a = random_order(16, 16, torch.Generator().manual_seed(123))
    b = random_order(16, 16, torch.Generator().manual_seed(123))
    c = random_order(16, 16, torch.Generator().manual_seed(124))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(make_order("random", 16, 16, torch.Generator().manual_seed(123)), a)
    assert _is_perm(random_order(3, 5), 15)


def test_make_order_aliases() -> None:
    assert torch.equal(make_order("Spiral_In", 3, 3), spiral_in(3, 3))
    assert torch.equal(make_order("zcurve", 4, 4), zcurve(4, 4))
    assert torch.equal(make_order("checkerboard", 4, 4), checkerboard(4, 4))


def test_make_order_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"unknown order name 'hilbert'.*'random'.*'alternate'"):
        make_order("hilbert", 4, 4)
    with pytest.raises(ValueError, match=r"name must be a string"):
        make_order(3, 4, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"rows must be >= 1"):
        make_order("raster", 0, 4)
    with pytest.raises(ValueError, match=r"cols must be >= 1"):
        make_order("spiral-in", 4, -1)
    with pytest.raises(ValueError, match=r"rows must be an integer"):
        make_order("z-curve", 4.0, 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"cols must be >= 1"):
        random_order(2, 0)


def test_check_permutation_accepts() -> None:
    out = check_permutation([2, 0, 1], 3)
    assert out.dtype == torch.long and out.tolist() == [2, 0, 1]
    out = check_permutation(torch.tensor([1, 0], dtype=torch.int32), 2)
    assert out.dtype == torch.long and out.tolist() == [1, 0]
    assert check_permutation(np.array([0, 2, 1]), 3).tolist() == [0, 2, 1]
    assert check_permutation((0,), 1).tolist() == [0]


@pytest.mark.parametrize(
    "order, n, match",
    [
        ([0, 1], 3, r"user_order must have length 3"),
        ([0, 1, 1], 3, r"duplicates \[1\], missing \[2\]"),
        ([0, 1, 3], 3, r"values must be in \[0, 2\], found out-of-range \[3\]"),
        ([-1, 0, 1], 3, r"out-of-range \[-1\]"),
        ([[0, 1], [2, 3]], 4, r"must be 1-D.*shape \(2, 2\)"),
        ([0.0, 1.0], 2, r"must contain integers.*float"),
        ([True, False], 2, r"must contain integers.*bool"),
        ("abc", 3, r"user_order must be a 1-D sequence of ints"),
        ([[0], [1, 2]], 3, r"user_order must be a 1-D sequence of ints"),
        ([], 2, r"must have length 2"),
    ],
)
def test_check_permutation_rejects(order: object, n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_permutation(order, n, name="user_order")


def test_check_permutation_bad_n() -> None:
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        check_permutation([0], 0)


def test_fixed_policy_lists_the_free_cells_in_order_per_image_or_shared() -> None:
    free = torch.ones(12, dtype=torch.bool)
    free[[0, 5, 6]] = False
    pol = make_policy("spiral-in", 3, 4, free, [None])
    assert isinstance(pol, FixedOrder) and pol.order.shape == (1, 9)
    assert pol.order[0].tolist() == [c for c in spiral_in(3, 4).tolist() if free[c]]
    assert torch.equal(pol.targets(2, 3), pol.order[:, 2:5])
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    per = make_policy("random", 3, 4, free, gens, per_image=True)
    alone = make_policy("random", 3, 4, free, [torch.Generator().manual_seed(2)])
    assert per.order.shape == (2, 9) and torch.equal(per.order[1], alone.order[0])
    assert sorted(per.order[0].tolist()) == free.nonzero().flatten().tolist()


def test_confidence_policy_keeps_the_most_likely_samples() -> None:
    assert "confidence" in SAMPLER_ORDERS and "confidence" not in ORDER_NAMES
    free = torch.tensor([True, False, True, True])
    pol = make_policy("confidence", 2, 2, free, [None])
    assert isinstance(pol, ConfidenceOrder) and pol.targets(0, 1).tolist() == [[0, 2, 3]]
    logits = torch.tensor([[[0.0, 0.0], [5.0, 0.0], [0.0, 1.0]]])  # (B=1, q=3, V=2)
    keep = pol.choose(pol.targets(0, 1), logits, torch.tensor([[0, 0, 1]]), 0, 1, temperature=1.0)
    assert keep.tolist() == [1] and pol.order[0, 0] == 2 and pol.targets(1, 2).tolist() == [[0, 3]]
    with pytest.raises(ValueError, match="shared generator"):
        make_policy("confidence", 2, 2, free, [None, None], per_image=True)


# -- what each policy declares, and that the decode loop, cost and sample-many go by it -----------
def test_order_policy_names_the_class_of_every_order() -> None:
    assert set(ADAPTIVE_ORDERS) == set(SAMPLER_ORDERS) - set(ORDER_NAMES)
    for name in ORDER_NAMES:
        assert order_policy(name) is FixedOrder
    for order in ([0, 1, 2, 3], torch.arange(4), np.arange(4), "no-such-order", None):
        assert order_policy(order) is FixedOrder  # permutations, and names refused later by make_order
    for name, cls in ADAPTIVE_ORDERS.items():
        assert order_policy(name) is cls and cls.adaptive and cls.label and cls.summary
    assert order_policy("confidence") is ConfidenceOrder and ConfidenceOrder.label == "confidence-first"
    assert ConfidenceOrder.batch_shared and ConfidenceOrder.queries_remaining
    assert not (FixedOrder.adaptive or FixedOrder.batch_shared or FixedOrder.queries_remaining)


def test_step_queries_are_the_decoded_or_the_remaining_cells() -> None:
    assert FixedOrder.step_queries(10, 3) == 3 and FixedOrder.queries([3, 4, 3]) == 10
    assert ConfidenceOrder.step_queries(10, 3) == 10 and ConfidenceOrder.queries([3, 4, 3]) == 10 + 7 + 3


@pytest.mark.parametrize("name", SAMPLER_ORDERS)
def test_the_decode_loop_queries_what_the_policy_declares(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from arpg import sampling
    from arpg.config import ARPGConfig
    from arpg.model import ARPG

    asked: list[int] = []

    def recording(*args, **kwargs):  # the loop's own policy, the cells each step queries counted
        policy = make_policy(*args, **kwargs)
        own = policy.targets

        def targets(done: int, n: int) -> torch.Tensor:
            cells = own(done, n)
            asked.append(cells.shape[1])
            return cells

        policy.targets = targets
        return policy

    monkeypatch.setattr(sampling, "make_policy", recording)
    torch.manual_seed(0)
    model = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.3).eval()
    known = torch.zeros(4, 4, dtype=torch.bool)
    known[0, :3] = True  # 13 free cells
    ctx = sampling.Context(torch.zeros(4, 4, dtype=torch.long), known)
    res = sampling.generate(model, [1, 2], steps=4, order=name, generator=0, context=ctx)
    counts, cls = res.trace.counts, order_policy(name)
    remaining = [13 - sum(counts[:s]) for s in range(len(counts))]
    assert asked == [cls.step_queries(r, n) for r, n in zip(remaining, counts)]
    assert res.trace.queries == cls.queries(counts) == sum(asked)
    assert asked == (remaining if name in ADAPTIVE_ORDERS else counts)


@pytest.mark.parametrize("name", SAMPLER_ORDERS)
def test_cost_estimate_and_serving_ask_the_policy(name: str) -> None:
    from arpg.cost import for_options
    from arpg.measure.estimate import tokens_through
    from arpg.options import SamplingOptions
    from arpg.schedules import token_counts
    from arpg.serve import batchable

    opts = SamplingOptions(steps=5, order=name)
    cls = order_policy(name)
    assert for_options(opts, 16).queries == cls.queries(token_counts(16, 5, opts.schedule))
    assert tokens_through(16, 5, name) == 16 + (16 * 6 / 2 if cls.queries_remaining else 16)
    assert batchable(opts) is not cls.adaptive


@pytest.mark.parametrize("name", SAMPLER_ORDERS)
def test_sample_many_refuses_every_adaptive_order(name: str) -> None:
    from arpg.options import SamplingOptions
    from arpg.sample_many import generate_each

    message = f"sample-many takes --order {', '.join(ORDER_NAMES)}, got {name!r}"
    if order_policy(name).adaptive:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            generate_each(None, [1], [torch.Generator()], SamplingOptions(order=name))
    else:
        assert name in ORDER_NAMES  # every fixed name is one sample-many takes


# -- the Halton and LPD orders ---------------------------------------------------------------------
def test_the_halton_order_visits_the_2d_halton_points_in_turn() -> None:
    from arpg.orders import halton

    # points (1/2, 1/3), (1/4, 2/3), (3/4, 1/9), ... scaled to the grid
    assert halton(4, 4).tolist() == [9, 6, 12, 1, 11, 4, 14, 3, 8, 5, 0, 7, 13, 2, 15, 10]
    for rows, cols in [(16, 16), (3, 7), (1, 5), (24, 16)]:
        order = halton(rows, cols)
        assert sorted(order.tolist()) == list(range(rows * cols))
    first = [divmod(int(c), 16) for c in halton(16, 16)[:32]]  # a prefix spreads: 32 cells in all 16 4x4 blocks
    assert len({(r // 4, c // 4) for r, c in first}) == 16
    assert min(abs(a[0] - b[0]) + abs(a[1] - b[1]) for i, a in enumerate(first[:16]) for b in first[i + 1 : 16]) >= 2
    assert torch.equal(make_order("halton", 16, 16), halton(16, 16))


def _adjacent(a: int, b: int, cols: int) -> bool:
    return abs(a // cols - b // cols) <= 1 and abs(a % cols - b % cols) <= 1


def test_lpd_decodes_next_to_what_is_known_and_never_two_neighbours_in_a_step() -> None:
    from arpg.orders import lpd_order

    counts = [1, 2, 4, 8, 16, 32, 64, 129]
    order = lpd_order(16, 16, counts, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(256))
    assert torch.equal(order, lpd_order(16, 16, counts, torch.Generator().manual_seed(0)))  # reproducible
    assert not torch.equal(order, lpd_order(16, 16, counts, torch.Generator().manual_seed(1)))
    start = 0
    for n in counts[:6]:  # while the grid is sparse, a step's cells never touch each other
        group = order[start : start + n].tolist()
        assert not any(_adjacent(a, b, 16) for i, a in enumerate(group) for b in group[i + 1 :]), n
        start += n
    free = torch.ones(64, dtype=torch.bool)
    free[:8] = False  # the top row is known: the first step decodes next to it, 3 or 4 cells apart from each other
    for seed in range(5):
        ctx = lpd_order(8, 8, [4] * 14, torch.Generator().manual_seed(seed), free)
        assert sorted(ctx.tolist()) == list(range(8, 64)) and sum(8 <= c < 16 for c in ctx[:4].tolist()) >= 3
    with pytest.raises(ValueError, match="add up to the 56 cells"):
        lpd_order(8, 8, [4] * 13, None, free)


@pytest.mark.parametrize("order", ["halton", "lpd"])
def test_the_new_orders_decode_in_generate_and_per_image(order: str) -> None:
    from arpg.sampling import generate

    model = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2).eval()
    res = generate(model, [1, 2], steps=6, order=order, generator=[3, 4], cfg_scale=1.0)
    alone = generate(model, [2], steps=6, order=order, generator=[4], cfg_scale=1.0)
    assert torch.equal(res.tokens[1:], alone.tokens) and (res.tokens >= 0).all()
    assert order_policy(order) is FixedOrder and not order_policy(order).adaptive
