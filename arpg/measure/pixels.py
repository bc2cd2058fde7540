"""Pixel arithmetic the benchmarks share: square windows of an image, downscaling, PSNR, bicubic upscaling.

Images are ``uint8`` arrays ``(N, H, W, 3)`` in 0-255, as the data sets render them and a pipeline decodes them.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

WINDOW, STRIDE = 64, 32  # the judged windows (px): the judges read 64x64 images
#: How a result larger than the judge's input is brought down to it: the mean of each pixel box
#: (:func:`box_downscale`), or PIL's Lanczos filter (:func:`lanczos_downscale`).
DOWNSCALES = ("box", "lanczos")


def window_starts(height: int, width: int, size: int = WINDOW, stride: int = STRIDE) -> list[tuple[int, int]]:
    """(top, left) of every ``size`` square window of a ``height`` x ``width`` image, at ``stride`` px
    across and down, in raster order."""
    return [(y, x) for y in range(0, height - size + 1, stride) for x in range(0, width - size + 1, stride)]


def windows_of(images: np.ndarray, size: int = WINDOW, stride: int = STRIDE) -> np.ndarray:
    """The windows of :func:`window_starts` of (N, H, W, 3) images, image by image: (N * k, size, size, 3)."""
    starts = window_starts(images.shape[1], images.shape[2], size, stride)
    wins = [images[:, y : y + size, x : x + size] for y, x in starts]
    return np.stack(wins, axis=1).reshape(-1, size, size, images.shape[-1])


def box_downscale(images: np.ndarray, factor: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H/factor, W/factor, 3) uint8, each pixel the mean of its factor x factor box."""
    n, h, w, c = images.shape
    boxes = images.reshape(n, h // factor, factor, w // factor, factor, c).astype(np.float64)
    return np.round(boxes.mean(axis=(2, 4))).astype(np.uint8)


def resampled(images: np.ndarray, height: int, width: int, how: int = Image.LANCZOS) -> np.ndarray:
    """(N, h, w, 3) uint8 -> (N, height, width, 3) uint8 through PIL's filter ``how``, image by image."""
    return np.stack([np.asarray(Image.fromarray(x).resize((width, height), how)) for x in images])


def lanczos_downscale(images: np.ndarray, factor: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H/factor, W/factor, 3) uint8 through PIL's Lanczos filter."""
    return resampled(images, images.shape[1] // factor, images.shape[2] // factor)


def downscale(images: np.ndarray, factor: int, how: str = "box") -> np.ndarray:
    """``images`` brought down by ``factor`` the way ``how`` (:data:`DOWNSCALES`) names."""
    if how not in DOWNSCALES:
        raise ValueError(f"downscale: one of {', '.join(DOWNSCALES)}; got {how!r}")
    return box_downscale(images, factor) if how == "box" else lanczos_downscale(images, factor)


def bicubic_upscale(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w, 3) uint8 -> (N, height, width, 3) uint8 through PIL's bicubic filter: the plain upscale."""
    return resampled(images, height, width, Image.BICUBIC)


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB) of uint8 images a and b, (N, H, W, 3) each: (N,)."""
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(1)
    return 10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))
