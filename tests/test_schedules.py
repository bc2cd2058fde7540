"""Tests for arpg.schedules (tokens-per-step and CFG schedules)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arpg.schedules import (
    CFG_SCHEDULES,
    TOKEN_SCHEDULES,
    cfg_scales,
    fixed_counts,
    raw_token_counts,
    token_counts,
)

ARCCOS_256_32 = [6, 5, 5, 5, 5, 5, 5, 6, 5, 5, 6, 5, 6, 5, 6, 6, 6, 6, 6, 7, 6, 7, 7, 8, 8, 8, 9, 10, 11, 14, 17, 40]


def test_exported_names() -> None:
    assert TOKEN_SCHEDULES == ("arccos", "cosine", "linear")
    assert CFG_SCHEDULES == ("linear", "constant")


def test_arccos_256_32_matches_released_code() -> None:
    assert token_counts(256, 32) == ARCCOS_256_32
    assert token_counts(256, 32, "arccos") == ARCCOS_256_32
    assert raw_token_counts(256, 32, "arccos") == ARCCOS_256_32


@pytest.mark.parametrize("schedule", TOKEN_SCHEDULES)
def test_repair_is_noop_when_raw_formula_is_positive(schedule: str) -> None:
    n = 256
    for steps in range(1, n + 1):
        raw = raw_token_counts(n, steps, schedule)
        assert sum(raw) == n and len(raw) == steps
        if min(raw) > 0:
            assert token_counts(n, steps, schedule) == raw
        else:
            assert schedule == "linear"  # arccos/cosine are all-positive for n=256


def test_arccos_256_all_steps_raw_positive() -> None:
    for steps in range(1, 257):
        assert min(raw_token_counts(256, steps, "arccos")) >= 1


def test_raw_linear_degenerate_case_is_repaired() -> None:
    raw = raw_token_counts(10, 10, "linear")  # float rounding: (1 - 3/10) * 10 < 7
    assert 0 in raw and sum(raw) == 10
    assert token_counts(10, 10, "linear") == [1] * 10


def test_steps_equal_n_is_one_per_step() -> None:
    for schedule in TOKEN_SCHEDULES:
        for n in (1, 2, 7, 10, 64, 256):
            assert token_counts(n, n, schedule) == [1] * n


def test_single_step_decodes_everything() -> None:
    for schedule in TOKEN_SCHEDULES:
        assert token_counts(256, 1, schedule) == [256]


def test_cosine_and_linear_sanity() -> None:
    lin = token_counts(256, 8, "linear")
    assert lin == [32] * 8
    cos = token_counts(256, 8, "cosine")
    assert sum(cos) == 256 and len(cos) == 8
    # cosine decodes few tokens first and more later
    assert cos[0] < cos[-1]
    assert cos == sorted(cos)
    # arccos front-loads less than cosine ends: last step of arccos is the largest
    arc = token_counts(256, 8, "arccos")
    assert arc[-1] == max(arc)


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
@settings(max_examples=300, deadline=None)
@given(data=st.data(), schedule=st.sampled_from(TOKEN_SCHEDULES))
def test_counts_positive_sum_and_length(data: st.DataObject, schedule: str) -> None:
    n = data.draw(st.integers(1, 600), label="n")
    steps = data.draw(st.integers(1, n), label="steps")
    counts = token_counts(n, steps, schedule)
    assert len(counts) == steps
    assert sum(counts) == n
    assert all(isinstance(c, int) and c >= 1 for c in counts)


def test_counts_exhaustive_small() -> None:
    for schedule in TOKEN_SCHEDULES:
        for n in range(1, 61):
            for steps in range(1, n + 1):
                counts = token_counts(n, steps, schedule)
                assert len(counts) == steps and sum(counts) == n and min(counts) >= 1


def test_fixed_schedule() -> None:
    assert token_counts(10, 999, "k=4") == [4, 4, 2]  # steps ignored
    assert token_counts(8, 1, "k=4") == [4, 4]
    assert token_counts(3, 3, "k=5") == [3]
    assert fixed_counts(256, 1) == [1] * 256
    assert fixed_counts(10, 3) == [3, 3, 3, 1]
    for n in (1, 5, 17, 256):
        for k in (1, 2, 3, 16, 300):
            c = fixed_counts(n, k)
            assert sum(c) == n and len(c) == math.ceil(n / k) and min(c) >= 1


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 1), r"n must be >= 1"),
        ((-3, 1), r"n must be >= 1"),
        ((10, 0), r"steps must be in \[1, n\] = \[1, 10\]"),
        ((10, 11), r"steps must be in \[1, n\] = \[1, 10\]"),
        ((10.0, 2), r"n must be an integer"),
        ((10, 2.5), r"steps must be an integer"),
        ((True, 1), r"n must be an integer"),
        ((10, "2"), r"steps must be an integer"),
    ],
)
def test_token_counts_bad_inputs(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        token_counts(*args)


def test_token_counts_bad_schedule() -> None:
    with pytest.raises(ValueError, match=r"'arccos', 'cosine', 'linear' or 'k=<int>'"):
        token_counts(10, 2, "sqrt")
    with pytest.raises(ValueError, match=r"schedule must be a string"):
        token_counts(10, 2, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"k \(tokens per step.*must be >= 1, got 0"):
        token_counts(10, 2, "k=0")
    with pytest.raises(ValueError, match=r"must be >= 1, got -2"):
        token_counts(10, 2, "k=-2")
    with pytest.raises(ValueError, match=r"needs an integer"):
        token_counts(10, 2, "k=abc")
    with pytest.raises(ValueError, match=r"n must be >= 1"):
        token_counts(0, 2, "k=2")
    with pytest.raises(ValueError, match=r"k \(tokens per step"):
        fixed_counts(10, 0)
    with pytest.raises(ValueError, match=r"raw_token_counts"):
        raw_token_counts(10, 2, "k=2")


def test_cfg_linear() -> None:
    counts = token_counts(256, 32)
    w = cfg_scales(counts, 4.0)
    assert len(w) == 32
    assert w[-1] == 4.0
    assert all(a < b for a, b in zip(w, w[1:]))
    assert w[0] == pytest.approx(1 + 3.0 * 6 / 256)
    assert cfg_scales([1, 1, 2], 3.0, "linear") == pytest.approx([1.5, 2.0, 3.0])
    # exact last value even where float arithmetic would round
    assert cfg_scales([2, 3], 0.1)[-1] == 0.1


def test_cfg_constant() -> None:
    assert cfg_scales([4, 4, 2], 2.5, "constant") == [2.5, 2.5, 2.5]


def test_cfg_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"'linear', 'constant'"):
        cfg_scales([1, 2], 2.0, "cosine")
    with pytest.raises(ValueError, match=r"non-empty"):
        cfg_scales([], 2.0)
    with pytest.raises(ValueError, match=r"counts\[1\] must be >= 1"):
        cfg_scales([3, 0], 2.0)
    with pytest.raises(ValueError, match=r"counts\[0\] must be an integer"):
        cfg_scales([1.5], 2.0)
    with pytest.raises(ValueError, match=r"scale must be finite"):
        cfg_scales([1], float("nan"))
    with pytest.raises(ValueError, match=r"scale must be a real number"):
        cfg_scales([1], "4")  # type: ignore[arg-type]
