"""Reconstruction losses that weigh detail, available offline: image gradients at several scales, and
distances between the convolutional features of a frozen network trained here (the data set's judge).

Plain pixel losses average every plausible detail away; a loss on image gradients makes edges
count as much as flat areas, and a feature loss (LPIPS-style: channel-normalised features of each
block, squared differences averaged over space) compares local texture rather than pixels.
Images are (B, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..judge import Judge


def _grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def edge_loss(made: torch.Tensor, truth: torch.Tensor, scales: int = 3) -> torch.Tensor:
    """Mean L1 distance of the horizontal and vertical differences of ``made`` and ``truth``, averaged
    over ``scales`` resolutions (each a 2x average-pool of the one before)."""
    total = made.new_zeros(())
    for s in range(scales):
        if s:
            made, truth = F.avg_pool2d(made, 2, ceil_mode=True), F.avg_pool2d(truth, 2, ceil_mode=True)
        for a, b in zip(_grads(made), _grads(truth), strict=True):
            total = total + (a - b).abs().mean()
    return total / scales


class FeatureLoss(nn.Module):
    """LPIPS-style distance in the features of a frozen :class:`~arpg.judge.Judge`: for each of its
    blocks, the squared difference of channel-normalised features, averaged over space and batch, then
    over blocks.  The judge stays in eval mode and is never trained (its parameters need no gradient)."""

    def __init__(self, judge: Judge):
        super().__init__()
        self.blocks = judge.body
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureLoss:
        return super().train(False)  # the batch-norm statistics are the judge's, always

    def forward(self, made: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
        total = made.new_zeros(())
        a, b = made, truth
        for block in self.blocks:
            a, b = block(a), block(b)
            na = a / (a.norm(dim=1, keepdim=True) + 1e-8)
            nb = b / (b.norm(dim=1, keepdim=True) + 1e-8)
            total = total + (na - nb).pow(2).sum(1).mean()
        return total / len(self.blocks)
