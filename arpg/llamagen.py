"""The LlamaGen class-conditional GPT (arXiv 2406.06525; released code: FoundationVision/LlamaGen,
``autoregressive/models/gpt.py``, class ``Transformer``).

A plain causal transformer over ``[class, x_0, x_1, ..., x_{N-2}]`` in raster order: the output
at position i predicts raster cell i.  Compared with ARPG there is one stack, no target queries
and no shared K/V; the pieces both families share (RMSNorm, the SwiGLU feed-forward, the 2D RoPE
table, the bias-free linears) come from :mod:`arpg.model`, :mod:`arpg.rope` and :mod:`arpg.fused`.

What makes the weights load exactly (the state-dict keys are upstream's):

* ``cls_embedding.embedding_table`` has ``num_classes + 1`` rows: upstream trains with label
  dropout and keeps one extra row for the dropped label, and that row (id ``num_classes``) is
  the unconditional branch of classifier-free guidance;
* ``layers.i.attention.wqkv`` stacks q, k and v (in that order) in one weight, ``wo`` projects back;
* RoPE: :func:`arpg.rope.rope_table` is upstream's ``precompute_freqs_cis_2d`` with one class
  token: row 0 (the class token) is all zeros, so its rotated queries and keys are zero; row
  ``1 + r*cols + c`` is cell (r, c), rows turning the first half of the rotary pairs and columns
  the second, pairs interleaved;
* queries and keys are not normalised, the head (``output``) has no bias, RMSNorm eps 1e-5.

The decode loop lives in :mod:`arpg.llamagen_sampling`; this file offers the teacher-forced
forward pass and a small cache interface (:meth:`LlamaGen.new_cache`, :meth:`LlamaGen.extend`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import LlamaGenConfig
from .fused import Linear
from .model import FeedForward, RMSNorm
from .rope import rope_complex, rope_table, rotate


class ClassEmbedding(nn.Module):
    """The class table (key prefix ``cls_embedding.``): ids 0..C-1 are classes, id C the null class."""

    def __init__(self, cfg: LlamaGenConfig):
        super().__init__()
        self.embedding_table = nn.Embedding(cfg.num_classes + 1, cfg.dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """labels (B,) long in 0..C -> (B, 1, C_dim): the one class token of each sequence."""
        return self.embedding_table(labels)[:, None]


class Attention(nn.Module):
    """Causal self-attention with q, k and v from one stacked projection (``wqkv``)."""

    def __init__(self, cfg: LlamaGenConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.wqkv = Linear(cfg.dim, 3 * cfg.dim)
        self.wo = Linear(cfg.dim, cfg.dim)

    def forward(
        self,
        x: torch.Tensor,
        fc: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int = 0,
    ) -> torch.Tensor:
        """x (B, T, C), fc (1|B, T, hs/2) complex RoPE -> (B, T, C).

        Without ``cache``: plain causal attention over the T tokens.  With it: the T new tokens are
        written at ``start`` of the (B, nh, max_len, hs) caches and attend to everything before them
        and, causally, to each other.
        """
        qkv = self.wqkv(x).unflatten(-1, (3, self.n_head, -1))  # (B, T, 3, nh, hs)
        q, k = rotate(qkv[:, :, :2], fc).unbind(2)  # one rotation for q and k
        q, k, v = (t.transpose(1, 2) for t in (q, k, qkv[:, :, 2]))  # (B, nh, T, hs)
        mask, causal = None, cache is None
        if cache is not None:
            end = start + x.shape[1]
            cache[0][:, :, start:end] = k
            cache[1][:, :, start:end] = v
            k, v = cache[0][:, :, :end], cache[1][:, :, :end]
            if x.shape[1] > 1:  # new token i sees the cache and new tokens 0..i
                new = torch.arange(start, end, device=x.device)
                mask = torch.arange(end, device=x.device)[None] <= new[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.wo(out.transpose(1, 2).flatten(2))


class Block(nn.Module):
    """Pre-norm transformer block: attention then SwiGLU, each with a residual."""

    def __init__(self, cfg: LlamaGenConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.feed_forward = FeedForward(cfg)  # SwiGLU w2(silu(w1 x) * w3 x), upstream's key names
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, fc: torch.Tensor, **attn_kw: Any) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), fc, **attn_kw)
        return x + self.feed_forward(self.ffn_norm(x))


@dataclass
class LlamaGenCache:
    """K/V caches of one decode call, allocated once at their final size: ``k[i]``/``v[i]`` serve
    layer i, each (B, nh, max_len, hs); ``length`` entries are filled."""

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    length: int = 0

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in [*self.k, *self.v])

    @property
    def max_len(self) -> int:
        return self.k[0].shape[2]


class LlamaGen(nn.Module):
    def __init__(self, cfg: LlamaGenConfig):
        super().__init__()
        self.cfg = cfg
        self.cls_embedding = ClassEmbedding(cfg)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = Linear(cfg.dim, cfg.vocab_size)

    # -- helpers -----------------------------------------------------------------
    def fuse(self) -> LlamaGen:
        """Run w1/w3 of each feed-forward as one matmul (q/k/v already are one); keys unchanged. Returns self."""
        for block in self.layers:
            block.feed_forward.fuse()
        return self

    def prepack(self, rows: int = 16) -> LlamaGen:
        """On a CPU, pack every linear's weight for oneDNN (see :meth:`arpg.model.ARPG.prepack`). Returns self."""
        for linear in [m for m in self.modules() if isinstance(m, Linear)]:
            linear.prepack(rows)
        return self

    @property
    def device(self) -> torch.device:
        return self.output.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.output.weight.dtype

    def rope(self, rows: int, cols: int) -> torch.Tensor:
        """RoPE table for a rows x cols grid on the model's device: (1 + rows*cols, hs/2, 2), row 0 the class."""
        return rope_table(rows, cols, self.cfg.head_dim, self.cfg.rope_base).to(self.device)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.output(self.norm(h)).float()

    # -- teacher-forced pass -------------------------------------------------------
    def forward(self, tokens: torch.Tensor, labels: torch.Tensor, grid: tuple[int, int] | None = None) -> torch.Tensor:
        """Teacher-forced logits.

        tokens (B, N) long in raster order; labels (B,) long (class id, or num_classes for null);
        grid (rows, cols) with rows*cols = N, default the model's square.  Returns (B, N, V) float32:
        logits[b, i] predicts tokens[b, i] from the class and tokens[b, :i].
        """
        B, N = tokens.shape
        rows, cols = grid or (self.cfg.grid_size, self.cfg.grid_size)
        if rows * cols != N:
            raise ValueError(f"{N} tokens do not fill a {rows}x{cols} grid; pass grid=(rows, cols)")
        fc = rope_complex(self.rope(rows, cols)[:N])  # (1, N, hs/2): class, then cells 0..N-2
        x = torch.cat([self.cls_embedding(labels), self.tok_embeddings(tokens[:, :-1])], dim=1)  # (B, N, C)
        for layer in self.layers:
            x = layer(x, fc)
        return self._logits(x)

    # -- cached interface for sampling --------------------------------------------
    def new_cache(self, batch: int, max_len: int) -> LlamaGenCache:
        """Allocate every layer's cache of one decode call at its final size (weights' device/dtype)."""
        shape = (batch, self.cfg.n_head, max_len, self.cfg.head_dim)
        # Uninitialised: entries past ``length`` are never read.
        n = self.cfg.n_layer
        return LlamaGenCache(
            [torch.empty(shape, device=self.device, dtype=self.dtype) for _ in range(n)],
            [torch.empty(shape, device=self.device, dtype=self.dtype) for _ in range(n)],
        )

    def extend(self, cache: LlamaGenCache, x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        """Feed embedded inputs x (B, n, C) (:class:`ClassEmbedding` or ``tok_embeddings``) at RoPE
        rows ``freqs`` (n, hs/2, 2), causally after everything cached; appends them to the cache.
        Returns (B, n, V) fp32 logits: output i predicts the cell after input i."""
        start, n = cache.length, x.shape[1]
        if start + n > cache.max_len:
            raise ValueError(f"cache overflow: {start} + {n} > {cache.max_len}")
        fc = rope_complex(freqs, self.device)  # once for every layer
        for i, layer in enumerate(self.layers):
            x = layer(x, fc, cache=(cache.k[i], cache.v[i]), start=start)
        cache.length = start + n
        return self._logits(x)
