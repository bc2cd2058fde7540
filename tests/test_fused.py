"""Fused and prepacked linears (arpg.fused; ARPG.fuse, ARPG.prepack): same logits, same tokens, the released keys."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from arpg.checkpoints import load_arpg, save_checkpoint
from arpg.config import ARPGConfig
from arpg.fused import FusedLinear, Linear, prepack_supported
from arpg.model import ARPG
from arpg.sampling import generate

DATA = Path(__file__).parent / "data"
TOL = {torch.float32: 1e-5, torch.bfloat16: 5e-2}


def tiny(seed: int = 0, dtype: torch.dtype = torch.float32) -> ARPG:
    torch.manual_seed(seed)
    m = ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2)
    torch.nn.init.normal_(m.head.weight, 0, 0.2)  # non-trivial logits
    return m.to(dtype).eval()


def pair(dtype: torch.dtype = torch.float32) -> tuple[ARPG, ARPG]:
    """(unfused, fused) with the same weights."""
    m = tiny(dtype=dtype)
    return m, copy.deepcopy(m).fuse()


def released_keys(name: str) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for line in (DATA / name).read_text().splitlines():
        if line.strip():
            key, shape = line.split(" ", 1)
            out.append((key, tuple(int(d) for d in shape.strip("()").split(",") if d.strip())))
    return out


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)  # same keys, same order
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def test_fuse_replaces_the_projections():
    _, f = pair()
    names = {n for n, m in f.named_modules() if isinstance(m, FusedLinear)}
    cfg = f.cfg
    assert len(names) == 2 * cfg.n_self_layers + cfg.n_cross_layers + 1
    assert {
        "layers.self_dec.0.attn.qkv",
        "layers.self_dec.0.ffn.w13",
        "layers.cross_dec.0.ffn.w13",
        "layers.kv",
    } <= names
    assert not hasattr(f.layers.self_dec[0].attn, "to_q") and f.fused
    assert sum(p.numel() for p in f.parameters()) == sum(p.numel() for p in tiny().parameters())


@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("counts", [None, [3, 5, 8]])
def test_forward_logits_equal(dtype, counts):
    m, f = pair(dtype)
    tokens = torch.randint(0, 32, (3, 16))
    labels = torch.tensor([0, 4, 10])
    order = torch.stack([torch.randperm(16) for _ in range(3)])
    a, b = m(tokens, labels, order, counts=counts), f(tokens, labels, order, counts=counts)
    torch.testing.assert_close(b, a, atol=TOL[dtype], rtol=TOL[dtype])


@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cache_interface_equal(dtype):
    m, f = pair(dtype)
    table = m.rope(4, 4)
    order = torch.randperm(16)
    tokens = torch.randint(0, 32, (2, 16))
    caches = [x.new_cache(2, 16) for x in (m, f)]
    ids, freqs, done = m.class_tokens(torch.tensor([1, 10]))[:, None], table[:1], 0
    for step, n in enumerate([2, 4, 10]):
        nxt = order[done : done + n]
        outs = []
        for model, cache in zip((m, f), caches):
            model.extend(cache, ids, freqs, causal=step == 0)
            outs.append(model.query(cache, table[nxt + 1]))
        torch.testing.assert_close(outs[1], outs[0], atol=TOL[dtype], rtol=TOL[dtype])
        ids, freqs, done = tokens[:, nxt], table[nxt + 1], done + n
    L = caches[0].length  # entries past it are uninitialised
    for a, b in zip([caches[0].k, caches[0].v, *caches[0].self_k], [caches[1].k, caches[1].v, *caches[1].self_k]):
        torch.testing.assert_close(b[:, :, :L], a[:, :, :L], atol=TOL[dtype], rtol=TOL[dtype])


def test_greedy_tokens_identical_fp32():
    m, f = pair()
    kw = dict(steps=5, cfg_scale=3.0, top_k=1, generator=0)
    a, b = generate(m, [1, 3, 10], **kw), generate(f, [1, 3, 10], **kw)
    assert torch.equal(a.tokens, b.tokens)


def test_fuse_is_idempotent_and_unfuse_restores():
    m, f = pair()
    before = {k: v.clone() for k, v in f.state_dict().items()}
    structure = repr(f)
    assert f.fuse() is f and repr(f) == structure
    assert_same_state(f.state_dict(), before)
    assert f.unfuse() is f and not f.fused and f.unfuse() is f
    assert repr(f) == repr(m)
    assert_same_state(f.state_dict(), m.state_dict())


def test_state_dict_is_the_unfused_one():
    m, f = pair()
    assert_same_state(f.state_dict(), m.state_dict())
    kept = f.state_dict(keep_vars=True)
    assert list(kept) == list(m.state_dict())


@pytest.mark.parametrize("preset,keys", [("ARPG-L", "arpg-l_keys.txt"), ("ARPG-XL", "arpg-xl_keys.txt")])
def test_fused_meta_model_has_released_keys(preset, keys):
    with torch.device("meta"):
        f = ARPG(ARPGConfig.from_name(preset)).fuse()
    assert [(k, tuple(v.shape)) for k, v in f.state_dict().items()] == released_keys(keys)


@torch.no_grad()
def test_released_state_dict_loads_into_fused_model():
    m, _ = pair()
    sd = m.state_dict()
    strict = tiny(seed=5).fuse()
    res = strict.load_state_dict(sd, strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    with torch.device("meta"):
        meta = ARPG(m.cfg).fuse()
    meta.load_state_dict(sd, assign=True)
    assert not any(p.is_meta for p in meta.parameters())
    for model in (strict, meta):
        assert model.fused
        assert_same_state(model.state_dict(), sd)
    tokens, labels, order = torch.randint(0, 32, (1, 16)), torch.tensor([2]), torch.randperm(16)[None]
    torch.testing.assert_close(meta.eval()(tokens, labels, order), m(tokens, labels, order), atol=1e-5, rtol=1e-5)


def test_missing_part_is_reported_by_strict_load():
    m, f = pair()
    sd = m.state_dict()
    del sd["layers.self_dec.0.attn.to_k.weight"]
    with pytest.raises(RuntimeError, match="to_k|qkv"):
        copy.deepcopy(f).load_state_dict(sd, strict=True)


def test_checkpoint_round_trip(tmp_path):
    m, f = pair()
    path = tmp_path / "fused.safetensors"
    save_checkpoint(f, path, m.cfg.to_dict())
    loaded = load_arpg(path)
    assert not loaded.fused
    assert_same_state(loaded.state_dict(), m.state_dict())
    assert_same_state(loaded.fuse().state_dict(), m.state_dict())


# -- prepacked weights (CPU, oneDNN) ----------------------------------------------------------
needs_prepack = pytest.mark.skipif(not prepack_supported(), reason="this PyTorch has no oneDNN prepacked linear")


def packed_linears(model: ARPG) -> list[Linear]:
    return [m for m in model.modules() if isinstance(m, Linear)]


@needs_prepack
@torch.no_grad()
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_prepacked_logits_equal(dtype):
    m, f = pair(dtype)
    f.prepack()
    assert all(lin.packed for lin in packed_linears(f))
    tokens, labels = torch.randint(0, 32, (2, 16)), torch.tensor([3, 10])
    order = torch.stack([torch.randperm(16) for _ in range(2)])
    torch.testing.assert_close(f(tokens, labels, order), m(tokens, labels, order), atol=TOL[dtype], rtol=TOL[dtype])
    a = generate(m, [1, 3], steps=4, cfg_scale=3.0, generator=0, keep_logits=True).trace.logits
    b = generate(f, [1, 3], steps=4, cfg_scale=3.0, generator=0, keep_logits=True).trace.logits
    torch.testing.assert_close(b[0], a[0], atol=TOL[dtype], rtol=TOL[dtype])


@needs_prepack
@torch.no_grad()
def test_prepacked_copy_stays_out_of_files_and_copies(tmp_path):
    m, f = pair()
    f.prepack()
    assert_same_state(f.state_dict(), m.state_dict())
    assert not any(lin.packed for lin in packed_linears(copy.deepcopy(f)))
    path = tmp_path / "model.pt"
    torch.save(f, path)
    assert not any(lin.packed for lin in packed_linears(torch.load(path, weights_only=False)))
    assert f.unpack() is f and not any(lin.packed for lin in packed_linears(f))


@needs_prepack
@torch.no_grad()
def test_stale_packed_copy_is_never_used():
    _, f = pair()
    f.prepack()
    other = tiny(seed=7)
    f.load_state_dict(other.state_dict())  # loading packs again, from the new weights
    assert all(lin.packed for lin in packed_linears(f))
    tokens, labels, order = torch.randint(0, 32, (1, 16)), torch.tensor([2]), torch.randperm(16)[None]
    torch.testing.assert_close(f(tokens, labels, order), other(tokens, labels, order), atol=1e-5, rtol=1e-5)
    f.to(torch.bfloat16)  # new weight tensors: the fp32 copies no longer match and are ignored
    assert not any(lin.packed for lin in packed_linears(f))
    torch.testing.assert_close(f(tokens, labels, order), other.to(torch.bfloat16)(tokens, labels, order))
    f.prepack()
    f.head.weight.add_(1.0)  # an in-place change, too
    assert not f.head.packed


def test_prepack_is_a_no_op_off_the_cpu():
    with torch.device("meta"):
        m = ARPG(ARPGConfig.from_name("ARPG-tiny")).fuse()
    assert m.prepack() is m
    assert not any(lin.packed for lin in packed_linears(m))
