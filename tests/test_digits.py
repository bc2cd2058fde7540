"""The digits data set: deterministic draws, real contrast, forced labels, two styles of one draw."""

import numpy as np
import pytest

from arpg.data import digits


def test_deterministic_and_independent_of_batching():
    a, la = digits.sample(range(10))
    b, lb = digits.sample(range(5, 10))
    assert np.array_equal(a[5:], b) and np.array_equal(la[5:], lb)
    c, _ = digits.sample(range(10), seed=digits.HELDOUT_SEED)
    assert not np.array_equal(a, c)


def test_images_and_labels():
    x, y = digits.sample(range(200))
    assert x.shape == (200, 64, 64, 3) and x.dtype == np.uint8
    assert set(y.tolist()) == set(range(10))
    # glyph and background differ: every image has real contrast
    assert (x.reshape(200, -1, 3).std(axis=1).max(axis=1) > 20).all()


def test_forced_labels_and_batches():
    x, y = digits.sample([3, 4], labels=np.array([7, 7]))
    assert y.tolist() == [7, 7]
    it = digits.batches(4)
    b1, _ = next(it)
    b2, _ = next(it)
    assert np.array_equal(np.concatenate([b1, b2]), digits.sample(range(8))[0])


def _glyph_stats(imgs):
    """Per image: glyph pixel fraction and distance of the glyph's centre of mass from the middle."""
    corner = imgs[:, :1, :1].astype(np.float32)  # the background (no glyph reaches the corner)
    fg = np.abs(imgs.astype(np.float32) - corner).sum(-1) > 60
    ys, xs = np.mgrid[:64, :64]
    n = fg.sum((1, 2))
    cy, cx = (fg * ys).sum((1, 2)) / n, (fg * xs).sum((1, 2)) / n
    return n / 64**2, np.hypot(cy - 31.5, cx - 31.5)


def test_styles_share_draws_and_differ_in_geometry():
    wide, lw = digits.sample(range(300), seed=3)
    cen, lc = digits.sample(range(300), seed=3, style="centred")
    assert np.array_equal(lw, lc)  # same labels, fonts and colours; only the geometry differs
    assert np.array_equal(wide[:, 0, 0], cen[:, 0, 0])
    area_w, off_w = _glyph_stats(wide)
    area_c, off_c = _glyph_stats(cen)
    assert off_c.mean() < 0.6 * off_w.mean()
    assert area_c.mean() > area_w.mean()
    assert np.array_equal(digits.sample(range(4), seed=3, style="wide")[0], wide[:4])  # the default is "wide"


def test_unknown_style_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown data style 'tiny'.*centred"):
        digits.sample(range(2), style="tiny")
