"""Measures that see blur: the detail an image keeps, as a ratio to the true render of the same canvas.

Sharpness is the mean absolute Laplacian of the luminance (ITU-R BT.601 weights), a standard
focus measure: blur removes high frequencies, and the Laplacian is what responds to them.  Images
are ``uint8`` arrays ``(N, H, W, 3)`` (or one ``(H, W, 3)``) in the 0-255 range.
"""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def luminance(images: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` float64 luminance in 0-255 of ``(N, H, W, 3)`` (or ``(H, W, 3)``) RGB images."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected RGB images (N, H, W, 3), got shape {tuple(np.shape(images))}")
    return x @ LUMA


def laplacian(lum: np.ndarray) -> np.ndarray:
    """The 4-neighbour Laplacian of ``(N, H, W)`` luminance on the interior, ``(N, H-2, W-2)``."""
    c = lum[:, 1:-1, 1:-1]
    return lum[:, :-2, 1:-1] + lum[:, 2:, 1:-1] + lum[:, 1:-1, :-2] + lum[:, 1:-1, 2:] - 4.0 * c


def sharpness(images: np.ndarray) -> np.ndarray:
    """Per image: the mean absolute Laplacian of its luminance, ``(N,)`` float64."""
    return np.abs(laplacian(luminance(images))).mean(axis=(1, 2))


def sharpness_ratio(made: np.ndarray, truth: np.ndarray) -> float:
    """The detail ``made`` keeps against ``truth`` (same shapes): total sharpness over the true total.

    1.0 keeps all the detail of the true renders; a blurred reconstruction reads below 1; noise or
    ringing reads above it.  Summing before dividing keeps flat images (sky) from dominating.
    """
    if np.shape(made) != np.shape(truth):
        raise ValueError(f"shapes differ: {np.shape(made)} vs {np.shape(truth)}")
    return relative_sharpness(made, truth)


def relative_sharpness(made: np.ndarray, reference: np.ndarray) -> float:
    """The mean sharpness of ``made`` over that of ``reference``: images of one size, not paired (e.g.
    generated images against real ones of the same data); for paired images, :func:`sharpness_ratio`."""
    ref = float(sharpness(reference).mean())
    if ref <= 0.0:
        raise ValueError("the true images have no detail to compare against (constant images)")
    return float(sharpness(made).mean()) / ref
