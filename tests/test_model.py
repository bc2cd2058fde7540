import pytest
import torch

from arpg.config import ARPGConfig
from arpg.model import ARPG, block_masks


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = ARPGConfig.from_name("ARPG-tiny")
    if kw:
        cfg = ARPGConfig(**{**cfg.__dict__, **kw})
    m = ARPG(cfg).init_weights(0.2)
    torch.nn.init.normal_(m.head.weight, 0, 0.2)  # non-trivial logits
    return m.eval()


def cached_logits(model, tokens, label, order, counts, rows, cols):
    """Feed tokens through the cache, `counts[s]` per step, collect the logits of each step."""
    table = model.rope(rows, cols)
    N = tokens.shape[1]
    cache = model.new_cache(tokens.shape[0], N)
    prev_ids = model.class_tokens(label)[:, None]
    prev_freqs = table[:1]
    out, done = [], 0
    for n in counts:
        nxt = order[done : done + n]
        model.extend(cache, prev_ids, prev_freqs)
        out.append(model.query(cache, table[nxt + 1]))
        prev_ids, prev_freqs = tokens[:, nxt], table[nxt + 1]
        done += n
    return torch.cat(out, dim=1)


@torch.no_grad()
def test_cache_one_per_step_equals_teacher_forced():
    m = tiny()
    N = 16
    tokens = torch.randint(0, 32, (2, N))
    label = torch.tensor([1, 10])  # 10 == null class
    order = torch.randperm(N)
    full = m(tokens, label, order.expand(2, N))
    cached = cached_logits(m, tokens, label, order, [1] * N, 4, 4)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)


@torch.no_grad()
@pytest.mark.parametrize("counts", [[3, 5, 8], [16], [1, 1, 2, 4, 8], [10, 6]])
def test_cache_blocks_equal_block_causal_recompute(counts):
    m = tiny(1)
    N = 16
    tokens = torch.randint(0, 32, (3, N))
    label = torch.tensor([0, 2, 3])
    order = torch.randperm(N)
    full = m(tokens, label, order.expand(3, N), counts=counts)
    cached = cached_logits(m, tokens, label, order, counts, 4, 4)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)


def test_block_masks_reduce_to_causal():
    s, c = block_masks([1] * 5)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    assert torch.equal(s, causal) and torch.equal(c, causal)


@torch.no_grad()
def test_non_square_grid_same_weights():
    m = tiny(2)
    rows, cols = 3, 6
    N = rows * cols
    tokens = torch.randint(0, 32, (1, N))
    order = torch.randperm(N)
    full = m(tokens, torch.tensor([2]), order[None], grid=(rows, cols))
    cached = cached_logits(m, tokens, torch.tensor([2]), order, [1] * N, rows, cols)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)
    assert full.shape == (1, N, 32)
