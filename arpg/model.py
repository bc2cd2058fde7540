"""The ARPG transformer (arXiv 2503.10568; released code: hp-l33/ARPG).

Two stacks share one K/V:

* the **self stack** is a causal transformer over the content sequence
  ``[class, x_o1, x_o2, ...]``, each token rotated by the RoPE of its own cell;
* after it, ``K = RoPE(to_k(norm(x)))`` and ``V = to_v(norm(x))`` are computed
  once (the shared KV cache);
* the **cross stack** runs data-independent queries (the ``[MASK]`` embedding)
  rotated by the RoPE of the *target* cell they predict, attending only to K/V.

Module and parameter names match the released checkpoints exactly.  The decode
loop lives in :mod:`arpg.sampling`; this file only offers the forward pass and a
small cache interface (:meth:`ARPG.new_cache`, :meth:`ARPG.extend`,
:meth:`ARPG.query`).  For inference, :meth:`ARPG.fuse` and :meth:`ARPG.prepack`
(:mod:`arpg.fused`) change how the linears run, never the state-dict keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ARPGConfig
from .fused import Fusable, FusedLinear, Linear
from .rope import rope_complex, rope_table, rotate


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x * rsqrt(mean(x^2) + eps), computed in fp32, cast back to x's dtype, times the weight."""
        return F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).type_as(x) * self.weight


# -- layers ---------------------------------------------------------------------------------
class FeedForward(Fusable):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    FUSE = (("w13", ("w1", "w3")),)

    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.w1 = Linear(cfg.dim, cfg.ffn_dim)
        self.w3 = Linear(cfg.dim, cfg.ffn_dim)
        self.w2 = Linear(cfg.ffn_dim, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_fused("w13"):
            a, b = self.w13(x).chunk(2, dim=-1)
        else:
            a, b = self.w1(x), self.w3(x)
        return self.w2(F.silu(a) * b)


def _heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, T, nh, hs)."""
    return x.view(*x.shape[:2], n_head, -1)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
    """q (B, nh, Tq, hs), k/v (B, nh, Tk, hs) -> (B, Tq, nh*hs)."""
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    return out.transpose(1, 2).flatten(2)


class Attention(Fusable):
    """Self-attention of the first stack."""

    FUSE = (("qkv", ("to_q", "to_k", "to_v")),)

    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.to_q = Linear(cfg.dim, cfg.dim)
        self.to_k = Linear(cfg.dim, cfg.dim)
        self.to_v = Linear(cfg.dim, cfg.dim)
        self.proj = Linear(cfg.dim, cfg.dim)

    def _qkv(self, x: torch.Tensor, fc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) -> rotated q, rotated k, v, each (B, T, nh, hs)."""
        if self.is_fused("qkv"):
            qkv = self.qkv(x).unflatten(-1, (3, self.n_head, -1))  # (B, T, 3, nh, hs)
            q, k = rotate(qkv[:, :, :2], fc).unbind(2)  # one rotation for q and k
            return q, k, qkv[:, :, 2]
        q = rotate(_heads(self.to_q(x), self.n_head), fc)
        k = rotate(_heads(self.to_k(x), self.n_head), fc)
        return q, k, _heads(self.to_v(x), self.n_head)

    def forward(
        self,
        x: torch.Tensor,
        fc: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """x (B, T, C), fc (1|B, T, hs/2) complex RoPE -> (B, T, C)."""
        q, k, v = (t.transpose(1, 2) for t in self._qkv(x, fc))  # (B, nh, T, hs)
        if cache is not None:  # append in place, attend to everything so far (unless ``mask`` says otherwise)
            end = start + x.shape[1]
            cache[0][:, :, start:end] = k
            cache[1][:, :, start:end] = v
            k, v = cache[0][:, :, :end], cache[1][:, :, :end]
        return self.proj(_attend(q, k, v, mask, causal))


class CrossAttention(nn.Module):
    """Target-aware queries attending to the shared K/V."""

    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.to_q = Linear(cfg.dim, cfg.dim)
        self.proj = Linear(cfg.dim, cfg.dim)

    def forward(
        self,
        x: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        fc: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        q = rotate(_heads(self.to_q(x), self.n_head), fc).transpose(1, 2)
        return self.proj(_attend(q, k, v, mask, causal))


class SelfDecoder(nn.Module):
    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.attn = Attention(cfg)
        self.ffn = FeedForward(cfg)
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, fc: torch.Tensor, **attn_kw: Any) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), fc, **attn_kw)
        return x + self.ffn(self.ffn_norm(x))


class CrossDecoder(nn.Module):
    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.attn = CrossAttention(cfg)
        self.ffn = FeedForward(cfg)
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, fc: torch.Tensor, **attn_kw: Any
    ) -> torch.Tensor:
        q = q + self.attn(self.attn_norm(q), k, v, fc, **attn_kw)
        return q + self.ffn(self.ffn_norm(q))


class TwoStack(Fusable):
    """Holds the weights of both stacks and the shared K/V projection (key prefix ``layers.``)."""

    FUSE = (("kv", ("to_k", "to_v")),)

    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.self_dec = nn.ModuleList(SelfDecoder(cfg) for _ in range(cfg.n_self_layers))
        self.cross_dec = nn.ModuleList(CrossDecoder(cfg) for _ in range(cfg.n_cross_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.to_k = Linear(cfg.dim, cfg.dim)
        self.to_v = Linear(cfg.dim, cfg.dim)

    def shared_kv(self, x: torch.Tensor, fc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Content hidden states (B, T, C), complex RoPE fc (1|B, T, hs/2) -> K (rotated), V, each (B, nh, T, hs)."""
        h = self.norm(x)
        if self.is_fused("kv"):
            kv = self.kv(h).unflatten(-1, (2, self.n_head, -1))  # (B, T, 2, nh, hs)
            k, v = rotate(kv[:, :, 0], fc), kv[:, :, 1]
        else:
            k, v = rotate(_heads(self.to_k(h), self.n_head), fc), _heads(self.to_v(h), self.n_head)
        return k.transpose(1, 2), v.transpose(1, 2)


@dataclass
class KVCache:
    """Caches for one decode call, allocated once at their final size.

    ``self_k[i]``/``self_v[i]`` serve self layer i; ``k``/``v`` are the shared cache read
    by every cross layer.  All are (B, nh, max_len, hs); ``length`` entries are filled.
    """

    self_k: list[torch.Tensor]
    self_v: list[torch.Tensor]
    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    @property
    def nbytes(self) -> int:
        ts = [*self.self_k, *self.self_v, self.k, self.v]
        return sum(t.numel() * t.element_size() for t in ts)

    @property
    def max_len(self) -> int:
        return self.k.shape[2]


def block_masks(counts: list[int], device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of the block-causal teacher-forced pass.

    ``counts[s]`` tokens are decoded at step s (sum N).  Content is ``[class, t_0..t_{N-2}]``
    (length N) and there are N queries.  Content token j belongs to block 0 (class) or
    1 + the step that decoded it; it sees every content token of its block and earlier ones.
    Query i (decoded at step s) sees content blocks 0..s.  All ones -> plain causal masks.
    Returns (self_mask (N, N), cross_mask (N, N)), bool, True = attend.
    """
    step = torch.repeat_interleave(
        torch.arange(len(counts), device=device), torch.tensor(counts, device=device)
    )  # (N,) step of target i
    block = torch.cat([torch.zeros(1, dtype=torch.long, device=device), step[:-1] + 1])  # (N,)
    self_mask = block[None, :] <= block[:, None]
    cross_mask = block[None, :] <= step[:, None]
    return self_mask, cross_mask


class ARPG(nn.Module):
    def __init__(self, cfg: ARPGConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = nn.Embedding(cfg.n_embeddings, cfg.dim)
        self.layers = TwoStack(cfg)
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.head = Linear(cfg.dim, cfg.vocab_size)

    # -- helpers -----------------------------------------------------------------
    def init_weights(self, std: float = 0.02) -> ARPG:
        """Initialisation used for training from scratch (normal(0, std), zero head)."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, std)
        nn.init.zeros_(self.head.weight)
        return self

    def fuse(self) -> ARPG:
        """Run q/k/v of each self layer, w1/w3 of each feed-forward and the shared to_k/to_v as
        one matmul each (the same logits, fewer and larger matmuls).  Idempotent; returns self.
        ``state_dict()`` keys and shapes stay the released ones and released state dicts still load."""
        for m in list(self.modules()):
            if isinstance(m, Fusable):
                m.fuse()
        return self

    def unfuse(self) -> ARPG:
        """Undo :meth:`fuse` (separate linears again). Idempotent; returns self."""
        for m in list(self.modules()):
            if isinstance(m, Fusable):
                m.unfuse()
        return self

    def prepack(self, rows: int = 16) -> ARPG:
        """On a CPU, pack every linear's weight once for oneDNN (for matmuls of about ``rows`` rows):
        faster matmuls at decoding's few rows per step (docs/benchmarks/README.md, "Speed options"), logits
        equal within the dtype's rounding, the weights' memory twice.  Call it after the last dtype/device
        change (a packed copy that no longer matches its weight is ignored).  No-op elsewhere; returns self."""
        for m in self.modules():
            if isinstance(m, Linear):
                m.prepack(rows)
        return self

    def unpack(self) -> ARPG:
        """Drop the packed copies of :meth:`prepack`; returns self."""
        for m in self.modules():
            if isinstance(m, Linear):
                m.unpack()
        return self

    @property
    def fused(self) -> bool:
        """Whether :meth:`fuse` is in effect."""
        return any(isinstance(m, FusedLinear) for m in self.modules())

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.head.weight.dtype

    def rope(self, rows: int, cols: int) -> torch.Tensor:
        """RoPE table for a rows x cols grid on the model's device: (1 + rows*cols, hs/2, 2)."""
        return rope_table(rows, cols, self.cfg.head_dim, self.cfg.rope_base).to(self.device)

    def class_tokens(self, labels: torch.Tensor) -> torch.Tensor:
        """labels (B,) in 0..C (C = null) -> embedding ids (B,)."""
        return labels + self.cfg.vocab_size + 1

    def _queries(self, batch: int, n: int) -> torch.Tensor:
        return self.embeddings.weight[self.cfg.mask_id].expand(batch, n, -1)

    def _logits(self, q: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(q)).float()

    # -- teacher-forced pass -------------------------------------------------------
    def forward(
        self,
        tokens: torch.Tensor,
        labels: torch.Tensor,
        order: torch.Tensor,
        counts: list[int] | None = None,
        grid: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits.

        tokens (B, N) long in raster order; labels (B,) long (class id, or num_classes for
        null); order (B, N) long, a permutation per row.  ``counts`` (tokens per step, sum N)
        switches to the block-causal masks of parallel decoding; None = one token per step.
        Returns (B, N, V) float32: logits[b, i] predicts tokens[b, order[b, i]].
        """
        B, N = tokens.shape
        rows, cols = grid or _square(N)
        table = self.rope(rows, cols)
        tgt = tokens.gather(1, order)  # (B, N)
        content = torch.cat([self.class_tokens(labels)[:, None], tgt[:, :-1]], dim=1)
        zero = torch.zeros(B, 1, dtype=torch.long, device=tokens.device)
        content_fc = rope_complex(table[torch.cat([zero, order[:, :-1] + 1], dim=1)])  # (B, N, hs/2) complex
        query_fc = rope_complex(table[order + 1])
        if counts is None:
            self_mask = cross_mask = None
            causal = True
        else:
            if sum(counts) != N:
                raise ValueError(f"counts must sum to {N}, got {sum(counts)}")
            self_mask, cross_mask = block_masks(counts, tokens.device)
            causal = False
        x = self.embeddings(content)
        for layer in self.layers.self_dec:
            x = layer(x, content_fc, mask=self_mask, causal=causal)
        k, v = self.layers.shared_kv(x, content_fc)
        q = self._queries(B, N)
        for layer in self.layers.cross_dec:
            q = layer(q, k, v, query_fc, mask=cross_mask, causal=causal)
        return self._logits(q)

    # -- cached interface for sampling --------------------------------------------
    def new_cache(self, batch: int, max_len: int) -> KVCache:
        """Allocate every cache of one decode call at its final size (weights' device/dtype)."""
        shape = (batch, self.cfg.n_head, max_len, self.cfg.head_dim)
        # Uninitialised: entries past ``length`` are never read.
        z = lambda: torch.empty(shape, device=self.device, dtype=self.dtype)  # noqa: E731
        n = self.cfg.n_self_layers
        return KVCache([z() for _ in range(n)], [z() for _ in range(n)], z(), z())

    def extend(self, cache: KVCache, ids: torch.Tensor, freqs: torch.Tensor, causal: bool = False) -> None:
        """Feed content tokens through the self stack and append them to the caches.

        ids (B, n) embedding ids (codes, or class ids from :meth:`class_tokens`);
        freqs (n, hs/2, 2) or (B|1, n, hs/2, 2): RoPE rows of their own cells.  The n tokens see
        everything cached and each other (block attention: the tokens of one decoding step), or,
        with ``causal``, each sees only those before it (a prefill, exactly as in training).
        """
        start, n = cache.length, ids.shape[1]
        if start + n > cache.max_len:
            raise ValueError(f"cache overflow: {start} + {n} > {cache.max_len}")
        mask = None
        if causal:  # new token i sees the cache and new tokens 0..i (one mask for every layer)
            new = start + torch.arange(n, device=self.device)
            mask = torch.arange(start + n, device=self.device)[None] <= new[:, None]
        fc = rope_complex(freqs, self.device)  # once for every layer
        x = self.embeddings(ids)
        for i, layer in enumerate(self.layers.self_dec):
            x = layer(x, fc, mask=mask, cache=(cache.self_k[i], cache.self_v[i]), start=start)
        k, v = self.layers.shared_kv(x, fc)
        cache.k[:, :, start : start + n] = k
        cache.v[:, :, start : start + n] = v
        cache.length = start + n

    def query(self, cache: KVCache, freqs: torch.Tensor) -> torch.Tensor:
        """Logits for target cells with RoPE ``freqs`` (m, hs/2, 2), or (B|1, m, hs/2, 2) per
        cache row, given the cache: (B, m, V) fp32."""
        L = cache.length
        k, v = cache.k[:, :, :L], cache.v[:, :, :L]
        fc = rope_complex(freqs, self.device)
        q = self._queries(k.shape[0], freqs.shape[-3])
        for layer in self.layers.cross_dec:
            q = layer(q, k, v, fc)
        return self._logits(q)


def _square(n: int) -> tuple[int, int]:
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"{n} tokens is not a square grid; pass grid=(rows, cols)")
    return side, side
