"""The FLOP, cache and parameter formulas against what the model allocates and torch counts."""

from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from arpg.config import ARPGConfig
from arpg.measure.bench import random_model
from arpg.measure.formulas import cache_bytes, cache_length, decode_flops, kv_saving, param_count
from arpg.model import ARPG
from arpg.sampling import Context, generate


@pytest.fixture(scope="module")
def tiny() -> ARPG:
    return random_model("ARPG-tiny", seed=0)


@pytest.mark.parametrize(
    "steps,cfg_scale,dtype",
    [(1, 4.0, torch.float32), (3, 4.0, torch.float32), (16, 1.0, torch.float32), (5, 2.0, torch.bfloat16)],
)
def test_cache_formula_matches_allocated_bytes(steps, cfg_scale, dtype):
    model = random_model("ARPG-tiny", dtype=dtype)
    cfg, B = model.cfg, 3
    tr = generate(model, [0, 1, 2], steps=steps, cfg_scale=cfg_scale, generator=1).trace
    b_eff = B * (2 if cfg_scale != 1.0 else 1)
    length = cache_length(sum(tr.counts), tr.counts)
    elem = torch.empty((), dtype=dtype).element_size()
    assert cache_bytes(cfg, b_eff, length, elem) == tr.kv_cache_bytes
    assert cache_bytes(cfg, b_eff, length, elem, per_layer=True) > tr.kv_cache_bytes


def test_cache_formula_with_context(tiny):
    known = torch.zeros(4, 4, dtype=torch.bool)
    known[0] = True
    ctx = Context(torch.zeros(4, 4, dtype=torch.long), known)
    tr = generate(tiny, [1, 2], steps=3, generator=0, context=ctx).trace
    length = cache_length(sum(tr.counts), tr.counts, n_context=4)
    assert cache_bytes(tiny.cfg, 4, length, 4) == tr.kv_cache_bytes


def test_released_sizes_save_kv_bytes():
    for name in ("ARPG-L", "ARPG-XL", "ARPG-XXL"):
        cfg = ARPGConfig.from_name(name)
        ours = cache_bytes(cfg, 2, 256, 2)
        per_layer = cache_bytes(cfg, 2, 256, 2, per_layer=True)
        assert 1 - ours / per_layer == pytest.approx(kv_saving(cfg))
        assert kv_saving(cfg) >= 0.45, name  # ARPG-L: 1 - 26/48 = 45.8%


@pytest.mark.parametrize("steps,order,cfg_scale", [(4, "random", 4.0), (16, "raster", 4.0), (3, "random", 1.0)])
def test_flop_formula_matches_torch_flop_counter(tiny, steps, order, cfg_scale):
    # the math SDPA backend runs attention as bmm, which the counter sees
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        tr = generate(tiny, [1, 2, 3], steps=steps, order=order, cfg_scale=cfg_scale, generator=0).trace
    b_eff = 3 * (2 if cfg_scale != 1.0 else 1)
    assert decode_flops(tiny.cfg, tr.counts, b_eff) == counter.get_total_flops()


@pytest.mark.parametrize("name", ["ARPG-tiny", "ARPG-digits"])
def test_param_count_equals_the_model(name):
    cfg = ARPGConfig.from_name(name)
    with torch.device("meta"):
        n = sum(p.numel() for p in ARPG(cfg).parameters())
    assert param_count(cfg) == n
