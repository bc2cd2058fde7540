"""The RandAR class-conditional GPT (arXiv 2412.01827; released code: ziqipang/RandAR,
``RandAR/model/randar_gpt.py``, class ``RandARTransformer``).

RandAR is LlamaGen's decoder-only transformer trained on tokens in a random order.  Before each
image token it reads a *position instruction*: one learnt vector (``pos_instruct_embeddings``,
(1, dim)) split into heads and turned by the 2D RoPE of the cell to generate next, so the model
knows where the next token goes.  For an order o_0, o_1, ... the sequence is

    [class, q(o_0), x(o_0), q(o_1), x(o_1), ..., q(o_{N-1}), x(o_{N-1})]

and the output at each instruction q(o_i) predicts the token of cell o_i.  RoPE rows: zeros for
the class token (its rotated queries and keys are zero, as in LlamaGen), the row of cell o_i for
both q(o_i) and x(o_i).

Everything but the instruction is LlamaGen's, key for key (the class table with its null row,
``layers.i.attention.wqkv``/``wo``, the SwiGLU, the norms, the bias-free head), so :class:`RandAR`
extends :class:`arpg.llamagen.LlamaGen` and adds the one parameter.  The decode loop (random order,
several tokens per step) lives in :mod:`arpg.randar_sampling`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .config import RandARConfig
from .llamagen import LlamaGen
from .rope import rope_complex, rotate


def interleave(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, n, ...) and (B, n, ...) -> (B, 2n, ...) as a_0, b_0, a_1, b_1, ..."""
    return torch.stack([a, b], dim=2).flatten(1, 2)


class RandAR(LlamaGen):
    def __init__(self, cfg: RandARConfig):
        super().__init__(cfg)
        self.pos_instruct_embeddings = nn.Parameter(torch.zeros(1, cfg.dim))

    def cell_freqs(self, order: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """order (B, n) raster cells -> (B, n, hs/2, 2) their RoPE rows (cos, sin)."""
        return self.rope(rows, cols)[order.to(self.device) + 1]

    def instructions(self, freqs: torch.Tensor) -> torch.Tensor:
        """The position-instruction tokens of cells with RoPE rows ``freqs`` (B, n, hs/2, 2) -> (B, n, C)."""
        B, n = freqs.shape[:2]
        heads = self.pos_instruct_embeddings.view(1, 1, self.cfg.n_head, self.cfg.head_dim).expand(B, n, -1, -1)
        return rotate(heads, rope_complex(freqs, self.device)).flatten(2)

    def forward(
        self, tokens: torch.Tensor, labels: torch.Tensor, order: torch.Tensor, grid: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Teacher-forced logits.

        tokens (B, N) long in raster order; labels (B,) long (class id, or num_classes for null);
        order (B, N) long, a permutation of the cells per row; grid (rows, cols) with rows*cols = N,
        default the model's square.  Returns (B, N, V) float32: logits[b, i] predicts
        tokens[b, order[b, i]] from the class and the tokens of order[b, :i].
        """
        B, N = tokens.shape
        rows, cols = grid or (self.cfg.grid_size, self.cfg.grid_size)
        if rows * cols != N:
            raise ValueError(f"{N} tokens do not fill a {rows}x{cols} grid; pass grid=(rows, cols)")
        freqs = self.cell_freqs(order, rows, cols)  # (B, N, hs/2, 2)
        seq = interleave(self.instructions(freqs), self.tok_embeddings(tokens.gather(1, order)))  # (B, 2N, C)
        x = torch.cat([self.cls_embedding(labels), seq], dim=1)  # (B, 1 + 2N, C)
        class_row = torch.zeros_like(freqs[:, :1])
        fc = rope_complex(torch.cat([class_row, freqs.repeat_interleave(2, dim=1)], dim=1))  # (B, 1 + 2N, hs/2)
        for layer in self.layers:
            x = layer(x, fc)
        return self._logits(x[:, 1::2])  # the outputs at the instructions
