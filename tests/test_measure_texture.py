"""Texture features see blur where the judge's do not: blurring real images raises their Frechet distance
many times more than the judge's (on the shipped models' judges and data)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from arpg.data import digits, scenes
from arpg.judge import frechet_distance, judge_images, load_judge
from arpg.measure.sharpness import relative_sharpness, sharpness_ratio
from arpg.measure.texture import FEATURES_PER_LEVEL, LEVELS, texture_features, texture_frechet
from arpg.pipeline import SHIPPED_DIR
from arpg.zoo import MODELS

SCENES_DIR = MODELS["scenes"].folder


def _blur(images: np.ndarray, radius: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(x).filter(ImageFilter.GaussianBlur(radius))) for x in images])


def test_features_shape_and_refusals() -> None:
    imgs = np.random.default_rng(0).integers(0, 256, (3, 32, 40, 3), dtype=np.uint8)
    f = texture_features(imgs, batch=2)
    assert f.shape == (3, LEVELS * FEATURES_PER_LEVEL) and np.isfinite(f).all()
    assert np.isfinite(texture_features(np.zeros((2, 16, 16, 3), np.uint8))).all()  # flat: floored logs
    with pytest.raises(ValueError, match="at least"):
        texture_features(np.zeros((2, 8, 8, 3), np.uint8))


def test_relative_sharpness_is_the_paired_ratio_for_equal_counts() -> None:
    imgs = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    soft = _blur(imgs, 1.0)
    assert relative_sharpness(soft, imgs) == pytest.approx(sharpness_ratio(soft, imgs))
    assert relative_sharpness(soft[:1], imgs) < 0.8  # counts may differ


@pytest.mark.slow  # renders and judges 800 images
@pytest.mark.parametrize("data", ["digits", "scenes"])
def test_blur_moves_the_texture_distance_far_more_than_the_judges(data: str) -> None:
    if data == "digits":
        module, judge_path, kw = digits, SHIPPED_DIR / "judge.safetensors", {"style": digits.GENERATOR_STYLE}
    else:
        module, judge_path, kw = scenes, SCENES_DIR / "judge.safetensors", {}
    a = module.sample(range(400), seed=module.HELDOUT_SEED, **kw)[0]
    b = module.sample(range(400), seed=module.HELDOUT_SEED + 11, **kw)[0]
    blurred = _blur(b, 1.0)
    tex_same, tex_blur = texture_frechet(a, b), texture_frechet(a, blurred)
    judge = load_judge(judge_path)
    fa = judge_images(judge, a)[1]
    judge_same, judge_blur = (frechet_distance(fa, judge_images(judge, x)[1]) for x in (b, blurred))
    assert tex_blur > 15 * tex_same  # a blur of 1 px is plain to the texture features
    assert tex_blur / tex_same > 4 * judge_blur / judge_same  # and far less so to the judge's
