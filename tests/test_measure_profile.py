"""`bench --profile`: one generate call timed by part, operators by kind, linear FLOPs counted."""

from __future__ import annotations

import pytest
import torch

from arpg.config import ARPGConfig
from arpg.measure.formulas import linear_params
from arpg.measure.profile import KINDS, OTHER, PARTS, REST, format_profile, profile_generate
from arpg.model import ARPG
from arpg.options import SamplingOptions
from arpg.schedules import token_counts


@pytest.fixture(scope="module")
def tiny() -> ARPG:
    torch.manual_seed(0)
    return ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2).eval()


@pytest.mark.parametrize("fused", [False, True])
def test_profile_counts_the_linear_flops_of_the_formula(tiny: ARPG, fused: bool) -> None:
    model = ARPG(tiny.cfg).eval()
    model.load_state_dict(tiny.state_dict())
    if fused:
        model.fuse()
    opts = SamplingOptions(steps=4, cfg_scale=2.0)
    res = profile_generate(model, [1, 2, 3], opts)
    counts = token_counts(model.cfg.grid_size**2, 4, opts.schedule)
    p_fed, p_query = linear_params(model.cfg)
    fed = [1, *counts[:-1]]  # the class token first, then each step's new tokens
    expected = 2 * 3 * (2 * p_fed * sum(fed) + 2 * p_query * sum(counts))  # 3 images x 2 guidance rows
    assert res["linear_gflop"] * 1e9 == pytest.approx(expected, rel=1e-9)
    assert set(res["operators_s"]) == {*KINDS, OTHER} and res["operators_s"]["matmul"] > 0
    assert res["linear_gflops_per_s"] > 0 and set(res["parts_s"]) == {*PARTS, REST}
    res |= {"peak_dtype": "float32", "peak_gflops": 2 * res["linear_gflops_per_s"]}
    assert "= 50% of the float32 matmul peak" in format_profile("tiny", res)
