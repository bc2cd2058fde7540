"""A small CNN classifier ("judge") for the digits data set.

It measures generated images: class accuracy, and a Frechet distance between its
128-d penultimate features of generated and real images (the FID recipe, with this
judge in place of Inception).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from .images import ImageSource, prepare_image


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Judge(nn.Module):
    """(B, 3, 64, 64) in [-1, 1] -> logits (B, 10); ``features`` gives the 128-d embedding."""

    feature_dim = 128

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(_block(3, 32), _block(32, 64), _block(64, 128), _block(128, 128))
        self.fc = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, 128): the body's output averaged over space."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def load_judge(path: str | Path) -> Judge:
    """A :class:`Judge` from a ``.safetensors`` file (strict: every key and shape must match), in eval mode."""
    judge = Judge()
    judge.load_state_dict(load_file(str(path)), strict=True)
    return judge.eval()


@torch.no_grad()
def judge_images(judge: Judge, images_u8: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W, 3) -> (predicted labels (N,), features (N, 128) float64)."""
    judge.eval()
    preds, feats = [], []
    for i in range(0, len(images_u8), batch):
        x = torch.from_numpy(np.ascontiguousarray(images_u8[i : i + batch])).permute(0, 3, 1, 2).float() / 127.5 - 1
        if x.shape[-1] != 64 or x.shape[-2] != 64:
            x = F.interpolate(x, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        f = judge.features(x)
        preds.append(judge.fc(f).argmax(-1).numpy())
        feats.append(f.double().numpy())
    return np.concatenate(preds), np.concatenate(feats)


class JudgedModel(Protocol):
    """What :func:`image_class` reads of a pipeline: :class:`arpg.pipeline.Pipeline` has these parts, and as
    that module imports this one, this one names the parts rather than importing it (no import cycle)."""

    @property
    def judge(self) -> nn.Module | None: ...

    @property
    def factor(self) -> int: ...

    @property
    def grid(self) -> tuple[int, int]: ...


def image_class(pipe: JudgedModel, image: ImageSource) -> int | None:
    """The class ``pipe``'s judge reads in ``image`` (prepared as the tasks prepare it), None for a
    model without a judge. With :func:`arpg.masks.is_edit` it decides whether an inpainting with a
    class is an edit: the Inpaint tab and ``arpg inpaint`` both ask it."""
    if getattr(pipe, "judge", None) is None:
        return None
    img = prepare_image(image, pipe.factor, pipe.grid[0])
    return int(judge_images(pipe.judge, np.array(img)[None])[0][0])


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (N, D) and b (M, D).

    Fewer samples than dimensions give a singular covariance: SciPy's warning about it is
    silenced (the square root is still defined; small samples bias the distance upwards)."""
    from scipy import linalg  # only the distance needs SciPy: keep it out of the pipeline's import time

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():
        eps = 1e-6 * np.eye(len(s1))
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
