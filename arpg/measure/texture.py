"""Texture features that see blur, and their Frechet distance.

A judge trained to tell ten classes apart learns features that ignore blur and seams: a blurred
scene is still a scene of its class.  These features describe texture instead: for each of
:data:`LEVELS` scales of the luminance (a Gaussian pyramid, halving each time), the band-pass detail
(the scale minus its blur) as its log mean magnitude, log standard deviation and log kurtosis; the
log gradient energy along four orientations; and log quantiles of the local contrast (the standard
deviation of 4x4 blocks).  Logs make a halving of detail one step whatever the image's contrast, so
the Frechet distance (:func:`arpg.judge.frechet_distance`) of two sets weighs every scale alike.

Images are ``uint8`` arrays ``(N, H, W, 3)`` (H and W at least ``4 * 2 ** (LEVELS - 1)``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..judge import frechet_distance
from .sharpness import luminance

LEVELS = 3  # scales: the image, its half, its quarter
BLOCK = 4  # side of the blocks whose contrast is taken
QUANTILES = (0.1, 0.5, 0.9)  # of the blocks' contrast
EPS = 1e-3  # floor under the logs (luminance in 0-1): flat areas do not run to minus infinity
_KERNEL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16.0  # binomial, about a Gaussian of 1 px
FEATURES_PER_LEVEL = 3 + 4 + len(QUANTILES)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A separable binomial blur of ``(N, 1, H, W)``, edges replicated."""
    k = _KERNEL.to(x.dtype)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), k.view(1, 1, 1, 5))
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), k.view(1, 1, 5, 1))


def _level_features(lum: torch.Tensor) -> list[torch.Tensor]:
    """The :data:`FEATURES_PER_LEVEL` features ``(N,)`` each of one scale ``(N, 1, H, W)``."""
    band = (lum - _blur(lum)).flatten(1)
    var = band.var(1)
    feats = [band.abs().mean(1), var.sqrt(), (band**4).mean(1) / (var**2 + EPS**4)]
    gx = (lum[..., :, 1:] - lum[..., :, :-1])[..., :-1, :]
    gy = (lum[..., 1:, :] - lum[..., :-1, :])[..., :, :-1]
    diag = 2**-0.5
    feats += [g.abs().flatten(1).mean(1) for g in (gx, gy, diag * (gx + gy), diag * (gx - gy))]
    blocks = F.avg_pool2d(lum**2, BLOCK) - F.avg_pool2d(lum, BLOCK) ** 2
    contrast = blocks.clamp(min=0).sqrt().flatten(1)
    q = torch.tensor(QUANTILES, dtype=lum.dtype)
    feats += list(torch.quantile(contrast, q, dim=1))
    return feats


@torch.no_grad()
def texture_features(images: np.ndarray, batch: int = 500) -> np.ndarray:
    """``(N, LEVELS * FEATURES_PER_LEVEL)`` float64 texture features of uint8 RGB images (see the module)."""
    lum_all = luminance(images) / 255.0
    small = 4 * 2 ** (LEVELS - 1)
    if min(lum_all.shape[1:]) < small:
        raise ValueError(f"texture features need images of at least {small}x{small} px, got {lum_all.shape[1:]}")
    out = []
    for i in range(0, len(lum_all), batch):
        lum = torch.from_numpy(lum_all[i : i + batch])[:, None]
        feats: list[torch.Tensor] = []
        for level in range(LEVELS):
            if level:
                lum = F.avg_pool2d(_blur(lum), 2)
            feats += _level_features(lum)
        out.append(torch.log(torch.stack(feats, 1) + EPS).numpy())
    return np.concatenate(out) if out else np.zeros((0, LEVELS * FEATURES_PER_LEVEL))


def texture_frechet(made: np.ndarray, real: np.ndarray) -> float:
    """The Frechet distance of the :func:`texture_features` of two sets of images (any counts, each >= 2)."""
    return frechet_distance(texture_features(made), texture_features(real))
