"""The blur measure: a blurred image reads less sharp than the original, noise more; shapes checked."""

from __future__ import annotations

import numpy as np
import pytest

from arpg.measure.sharpness import luminance, sharpness, sharpness_ratio


def _checker(n: int = 2, size: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    board = (((yy // 4) + (xx // 4)) % 2 * 255).astype(np.uint8)
    return np.repeat(np.stack([board] * 3, -1)[None], n, axis=0)


def _box_blur(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float64)
    out = x.copy()
    out[:, 1:-1, 1:-1] = (
        sum(x[:, 1 + dy : x.shape[1] - 1 + dy, 1 + dx : x.shape[2] - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        / 9
    )
    return out.round().astype(np.uint8)


def test_blur_lowers_the_ratio_and_identity_is_one() -> None:
    real = _checker()
    assert sharpness_ratio(real, real) == pytest.approx(1.0)
    assert sharpness_ratio(_box_blur(real), real) < 0.7


def test_noise_raises_sharpness() -> None:
    flat = np.full((1, 16, 16, 3), 128, np.uint8)
    noisy = (flat + np.random.default_rng(0).integers(-20, 21, flat.shape)).astype(np.uint8)
    assert sharpness(flat)[0] == 0.0
    assert sharpness(noisy)[0] > 5.0


def test_bad_shapes_and_constant_truth_are_refused() -> None:
    with pytest.raises(ValueError, match="RGB"):
        luminance(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="shapes differ"):
        sharpness_ratio(_checker(1), _checker(2))
    with pytest.raises(ValueError, match="no detail"):
        sharpness_ratio(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 8, 8, 3), np.uint8))
