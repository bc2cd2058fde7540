"""Edit regions grown from a stroke, colour-matched blending (arpg.masks), and what they do for
the tasks on the shipped model (a few digits; 100 trials in scripts/bench_tasks.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from arpg import masks, tasks
from arpg.data import digits

BG, FG = (200, 180, 40), (60, 60, 160)


def two_blobs() -> np.ndarray:
    """A 32x32 image: two separate squares of the foreground colour on a plain background."""
    img = np.full((32, 32, 3), BG, np.uint8)
    img[4:12, 4:12] = FG
    img[20:28, 18:30] = FG
    return img


def test_foreground_and_background() -> None:
    img = two_blobs()
    assert np.allclose(masks.background_colour(img), BG)
    fg = masks.foreground(img)
    assert fg.sum() == 64 + 96 and fg[8, 8] and not fg[0, 0]


def test_shapes_under_keeps_only_the_touched_shape() -> None:
    img = two_blobs()
    stroke = np.zeros((32, 32), bool)
    stroke[24, 16:20] = True  # touches the second square only
    shape = masks.shapes_under(masks.foreground(img), stroke)
    assert shape.sum() == 96 and shape[20:28, 18:30].all() and not shape[4:12, 4:12].any()
    assert not masks.shapes_under(masks.foreground(img), np.zeros((32, 32), bool)).any()


def test_widen_grows_by_whole_pixels() -> None:
    m = np.zeros((9, 9), bool)
    m[4, 4] = True
    assert masks.widen(m, 2).sum() == 25 and masks.widen(m, 0).sum() == 1
    assert not masks.widen(np.zeros((9, 9), bool), 3).any()


@pytest.mark.parametrize("how", masks.EDIT_REGIONS)
def test_edit_regions_always_contain_the_stroke(how: str) -> None:
    img = two_blobs()
    stroke = np.zeros((32, 32), bool)
    stroke[24, 16:20] = True
    region = masks.edit_region(img, stroke, how, margin=2)
    assert (region >= stroke).all()
    if how == "painted":
        assert np.array_equal(region, stroke)
    if how == "box":  # the box of the stroke and the square, 2 px around
        assert region[18:30, 14:32].all() and region.sum() == 12 * 18
    if how == "shape":
        assert region[20:28, 18:30].all() and not region[4:12, 4:12].any()
    if how == "dilate":
        assert region.sum() == 5 * 8


def test_edit_region_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="box, shape, dilate, painted"):
        masks.edit_region(two_blobs(), np.ones((32, 32), bool), "grow")


def test_is_edit() -> None:
    assert masks.is_edit(3, 8) and not masks.is_edit(3, 3) and not masks.is_edit(None, 8)


def test_match_colours_undoes_a_colour_shift() -> None:
    img = two_blobs()
    raw = np.clip(img.astype(int) + (25, -20, 15), 0, 255).astype(np.uint8)  # a tokenizer's colour error
    kept = np.zeros((32, 32), bool)
    kept[:, :16] = True
    fixed = masks.match_colours(raw, img, kept)
    assert np.abs(fixed - img).max() < 2
    assert np.array_equal(masks.match_colours(raw, img, np.zeros((32, 32), bool)), raw.astype(float))


def test_blend_leaves_no_band_where_the_decode_changed_colour() -> None:
    """Regenerated pixels whose colours are off (as the tokenizer's are) are pasted without a band."""
    img = np.full((16, 16, 3), BG, np.uint8)
    raw = np.clip(img.astype(int) + (30, 30, -30), 0, 255).astype(np.uint8)
    cells = torch.zeros(4, 4, dtype=torch.bool)
    cells[:, 2:] = True
    pix = np.zeros((16, 16), bool)
    pix[:, 8:] = True
    out = masks.blend(img, raw, cells, pix, 4)
    assert np.abs(out.astype(int) - img).max() <= 1
    assert np.array_equal(out[:, : 8 - masks.SEAM_BAND], img[:, : 8 - masks.SEAM_BAND])  # beyond the seam band
    w = masks.seam_weights(pix, 2)
    assert w.shape == (16, 16) and w[:, 8:].min() == 1 and w[:, :6].max() == 0 and 0 < w[:, 6:8].min() < 1


def _texture(h: int = 16, w: int = 32, seed: int = 0) -> np.ndarray:
    """A smooth grey ramp with fine detail (+-4 levels a pixel), (h, w, 3) uint8."""
    detail = np.random.default_rng(seed).integers(-4, 5, (h, w))
    grey = np.linspace(60, 180, w)[None, :] + detail
    return np.repeat(grey.round().astype(np.uint8)[..., None], 3, axis=-1)


def _cross_step(img: np.ndarray, x: int) -> float:
    """The mean absolute luminance step between columns x - 1 and x."""
    return float(np.abs(img[:, x].astype(float) - img[:, x - 1].astype(float)).mean())


def test_seam_blend_keeps_pixels_beyond_the_band_and_softens_the_step() -> None:
    """A decode blurred and brighter than the original (as a tokenizer's) meets it without a step."""
    original = _texture()
    soft = np.asarray(Image.fromarray(original).filter(ImageFilter.BoxBlur(1)), np.int64) + 40
    decoded = np.clip(soft, 0, 255).astype(np.uint8)
    new = np.zeros((16, 32), bool)
    new[:, 16:] = True
    b = masks.SEAM_BAND
    out = masks.seam_blend(original, decoded, new)
    assert np.array_equal(out[:, : 16 - b], original[:, : 16 - b])  # beyond the band: the original
    assert np.array_equal(out[:, 16:], decoded[:, 16:])  # the new part: the decode
    hard = np.where(new[..., None], decoded, original)
    worst = max(_cross_step(out, x) for x in range(16 - b, 17))
    assert worst < 0.6 * _cross_step(hard, 16)  # no column steps as the pasted join did
    w = masks.seam_weights(new)
    assert (np.diff(w[0, 16 - b - 1 : 17]) > 0).all()  # a ramp across the band


def test_paste_into_softens_the_join_of_an_outpaint() -> None:
    """Before the band, the input was pasted back as it was and met its blurred, brighter extension with a step."""
    canvas = _texture(16, 32)
    image = canvas[:, :16]
    wave = 40 * np.sin(np.arange(16) * np.pi / 4)[:, None, None]  # off by row: no colour map undoes it
    raw = np.clip(np.asarray(Image.fromarray(canvas).filter(ImageFilter.BoxBlur(1)), np.int64) + wave, 0, 255)
    out = masks.paste_into(raw.astype(np.uint8), image, 0, 0)
    kept = np.zeros((16, 32), bool)
    kept[:, :16] = True
    hard = np.rint(masks.match_colours(raw.astype(np.uint8), np.where(kept[..., None], canvas, 0), kept))
    hard[:, :16] = image
    assert np.array_equal(out[:, :8], image[:, :8])  # far from the join: the input as it was
    assert max(_cross_step(out, x) for x in range(8, 17)) < 0.6 * _cross_step(hard.astype(np.uint8), 16)


def test_a_colour_map_fitted_on_background_leaves_a_new_glyph_alone() -> None:
    """An edit over a whole glyph keeps only background cells: a map fitted there pulled a red glyph to green."""
    rng = np.random.default_rng(0)
    image = np.full((32, 32, 3), (40, 160, 60), np.uint8)  # a plain green background (the glyph is regenerated)
    raw = np.clip(image.astype(int) + (8, -6, 5) + rng.normal(0, 6, image.shape), 0, 255)  # decoded: off, noisy
    raw[10:22, 12:20] = (200, 30, 40)  # the new glyph, red
    raw = raw.round().astype(np.uint8)
    kept = np.ones((32, 32), bool)
    kept[6:26, 8:24] = False  # the regenerated box: background all around it
    out = masks.match_colours(raw, image, kept)
    assert np.abs(out[10:22, 12:20] - raw[10:22, 12:20]).max() < 12  # the glyph keeps its colour
    bg = ~kept & ~np.pad(np.ones((12, 8), bool), ((10, 10), (12, 12)))
    assert np.linalg.norm(out[bg].mean(0) - image[bg].mean(0)) < 3  # the background is still matched
    assert masks.colour_coverage(np.array([[0.8, 0.1, 0.15]]), raw[kept] / 255.0)[0] == 0.0


# -- on the shipped model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    from arpg.pipeline import Pipeline

    return Pipeline.shipped()


def _stroke(img: np.ndarray) -> np.ndarray:
    """A horizontal stroke 4 px wide across the middle of the glyph."""
    ys, xs = np.nonzero(masks.foreground(img))
    m = np.zeros(img.shape[:2], bool)
    cy = (ys.min() + ys.max()) // 2
    m[cy - 2 : cy + 2, xs.min() : xs.max() + 1] = True
    return m


@pytest.mark.slow  # over 0.5 s: the fast tier stays under a minute
def test_a_thin_stroke_edits_the_class(shipped) -> None:
    """Before regions grew, a stroke across a digit with another class kept the old digit (0 of 100)."""
    from arpg.judge import judge_images

    imgs, labels = digits.sample(range(5), seed=digits.HELDOUT_SEED + 21, style=digits.GENERATOR_STYLE)
    targets = (labels + 3) % 10
    outs = [tasks.edit(shipped, imgs[i], _stroke(imgs[i]), int(targets[i]), seed=i, steps=8).image for i in range(5)]
    pred, _ = judge_images(shipped.judge, np.stack(outs))
    assert (pred == targets).sum() >= 4


def _background_shift(out: np.ndarray, img: np.ndarray, region: np.ndarray) -> float:
    both = region & ~masks.foreground(img) & ~masks.foreground(out)
    return float(np.linalg.norm((out[both].astype(float) - img[both]).mean(0)))


def test_same_class_inpainting_leaves_no_colour_band(shipped) -> None:
    """The background of the regenerated half keeps the input's colour; pasted as decoded (before
    colours were matched), it was off by several times more."""
    imgs, labels = digits.sample(range(4), seed=digits.HELDOUT_SEED + 21, style=digits.GENERATOR_STYLE)
    shifts, unmatched = [], []
    for i in range(4):
        m = np.zeros((64, 64), bool)
        m[32:] = True
        r = tasks.inpaint(shipped, imgs[i], m, int(labels[i]), seed=i, steps=8)
        w = masks.seam_weights(m)[..., None]
        shifts.append(_background_shift(r.image, imgs[i], m))
        unmatched.append(_background_shift((imgs[i] * (1 - w) + r.raw * w + 0.5).astype(np.uint8), imgs[i], m))
    assert np.mean(shifts) < 6 and np.mean(shifts) < np.mean(unmatched) / 2


def _contrast(image: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> float:
    """The length of the mean RGB difference between the ``fg`` and the ``bg`` pixels of ``image``."""
    return float(np.linalg.norm(image[fg].astype(float).mean(0) - image[bg].astype(float).mean(0)))


@pytest.mark.slow  # four edits on the shipped model
def test_an_edit_over_the_whole_glyph_keeps_the_new_glyphs_colours(shipped) -> None:
    """The region covers the glyph, so only background is kept: the colour map, fitted there, washed the new
    glyph towards the background (its contrast to it fell to 0.25-0.7 of the decode's)."""
    imgs, labels = digits.sample(range(4), seed=digits.HELDOUT_SEED + 21, style=digits.GENERATOR_STYLE)
    for i in range(4):
        ys, xs = np.nonzero(masks.foreground(imgs[i]))
        box = np.zeros((64, 64), bool)
        box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
        r = tasks.edit(shipped, imgs[i], box, (int(labels[i]) + 5) % 10, seed=i, steps=8)
        region = masks.edit_region(imgs[i], box)
        assert (region.mean()) > 0.5  # a large region: most of the image
        fg, bg = region & masks.foreground(r.raw), region & ~masks.foreground(r.raw)
        assert _contrast(r.image, fg, bg) > 0.85 * _contrast(r.raw, fg, bg)
