"""2D rotary position embeddings (RoPE) for ARPG.

Layout as in the released ARPG code: with head_dim 64 there are 16 inverse
frequencies ``1 / base ** (arange(0, 32, 2) / 32)``; rotary pairs 0..15 turn with
the row index and pairs 16..31 with the column index; pairs are interleaved
``(x[2i], x[2i+1])``.  Table row 0 belongs to the class token and is all zeros
(cos = sin = 0), so the class token's rotated queries and keys are zero.

Tables are computed, never stored in the state_dict, so one set of weights works
on any (rows, cols) grid.  A forward pass turns its rows of the table into complex
numbers once (:func:`rope_complex`) and every layer rotates with them (:func:`rotate`).
"""

from __future__ import annotations

import torch


def _inv_freq(head_dim: int, base: float) -> torch.Tensor:
    half = head_dim // 2
    return 1.0 / (base ** (torch.arange(0, half, 2)[: half // 2].float() / half))  # (head_dim // 4,)


def rope_for_cells(rows: torch.Tensor, cols: torch.Tensor, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """cos/sin for cells at (rows[i], cols[i]).

    Returns (n, head_dim // 2, 2) float32 with [..., 0] = cos and [..., 1] = sin.
    """
    inv = _inv_freq(head_dim, base)
    ang = torch.cat([torch.outer(rows.float(), inv), torch.outer(cols.float(), inv)], dim=-1)  # (n, hd/2)
    return torch.stack([torch.cos(ang), torch.sin(ang)], dim=-1)


def rope_table(rows: int, cols: int, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """Full table for a rows x cols grid: (1 + rows * cols, head_dim // 2, 2) float32.

    Index 0 is the class token (zeros); index 1 + r * cols + c is cell (r, c).
    """
    r = torch.arange(rows).repeat_interleave(cols)
    c = torch.arange(cols).repeat(rows)
    cells = rope_for_cells(r, c, head_dim, base)
    return torch.cat([torch.zeros(1, head_dim // 2, 2), cells], dim=0)


def rope_complex(freqs: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """Table rows (T, D/2, 2) or (B, T, D/2, 2) -> (1|B, T, D/2) complex64 ``cos + i sin``, on ``device``."""
    if freqs.dim() == 3:
        freqs = freqs.unsqueeze(0)
    return torch.view_as_complex(freqs.to(device=device, dtype=torch.float32).contiguous())


def rotate(x: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of ``x`` (B, T, ..., D) by ``fc`` (1|B, T, D/2) complex.

    The dims between T and D (heads, or q/k and heads) share one rotation.  Computed in
    fp32, returned in x's dtype and contiguous.
    """
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (B, T, ..., D/2)
    fc = fc.view(*fc.shape[:2], *([1] * (x.dim() - 3)), fc.shape[-1])
    return torch.view_as_real(xc * fc).flatten(-2).type_as(x)


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of ``x``.

    x: (B, T, H, D); freqs: (T, D // 2, 2) or (B, T, D // 2, 2). Computed in fp32,
    returned in x's dtype.
    """
    return rotate(x, rope_complex(freqs, x.device))
