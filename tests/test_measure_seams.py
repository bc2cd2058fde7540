"""The seam score: a step where pasted pixels meet reads above 1, the truth itself 1, a blend spreads the step."""

from __future__ import annotations

import numpy as np
import pytest

from arpg.measure.seams import join_pairs, seam_profile, seam_score, seam_scores


def _ramp(n: int = 3, h: int = 16, w: int = 32) -> np.ndarray:
    """Smooth images: a horizontal luminance ramp with a little texture, (n, h, w, 3) uint8."""
    rng = np.random.default_rng(0)
    x = np.linspace(40, 200, w)[None, None, :] + rng.normal(0, 3, (n, h, w))
    return np.repeat(np.clip(x, 0, 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def _right_of(x: int, h: int = 16, w: int = 32) -> np.ndarray:
    new = np.zeros((h, w), bool)
    new[:, x:] = True
    return new


def test_join_pairs_cross_the_border_in_both_directions() -> None:
    kept, new = join_pairs(_right_of(20, 4, 32))
    assert len(kept) == 4 and (kept % 32 == 19).all() and (new % 32 == 20).all()
    box = np.zeros((8, 8), bool)
    box[2:5, 3:6] = True  # a 3x3 region: 12 pairs, every new pixel on the border is a new side
    kept, new = join_pairs(box)
    assert len(kept) == 12 and box.reshape(-1)[new].all() and not box.reshape(-1)[kept].any()
    kept, new = join_pairs(_right_of(20, 4, 32), shift=-3)  # moved into the kept side
    assert (kept % 32 == 16).all() and (new % 32 == 17).all()
    assert len(join_pairs(_right_of(31, 4, 32), shift=1)[0]) == 0  # off the image


def test_the_truth_scores_one_and_a_pasted_step_scores_more() -> None:
    truth = _ramp()
    assert seam_score(truth, truth, _right_of(16)) == pytest.approx(1.0)
    pasted = truth.copy()
    pasted[:, :, 16:] = np.clip(pasted[:, :, 16:].astype(int) + 30, 0, 255).astype(np.uint8)  # a step of 30
    assert seam_score(pasted, truth, _right_of(16)) > 3
    profile = seam_profile(pasted, truth, _right_of(16), reach=3)
    assert sorted(profile) == [-3, -2, -1, 0, 1, 2, 3] and profile[-2] == pytest.approx(1.0)


def test_a_step_spread_over_a_band_scores_far_below_the_same_step_at_once() -> None:
    truth = _ramp()
    at_once, spread = truth.astype(float), truth.astype(float)
    at_once[:, :, 16:] += 30.0
    spread[:, :, 12:] += np.minimum(np.arange(20) + 1, 5)[None, None, :, None] * 6.0  # 30 over 5 columns
    made = [np.clip(x, 0, 255).round().astype(np.uint8) for x in (at_once, spread)]
    step, band = (seam_scores(m, truth, _right_of(16), reach=6) for m in made)
    assert band["seam_peak"] < step["seam"] / 2  # no column steps as much as the pasted one
    assert 1.3 < band["seam"] <= band["seam_peak"]  # but the band is still seen


def test_several_joins_and_bad_input() -> None:
    truth = _ramp()
    both = seam_score(truth, truth, [_right_of(8), _right_of(24)])
    assert both == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        seam_score(truth, truth[:1], _right_of(8))
    with pytest.raises(ValueError, match="join's mask"):
        seam_score(truth, truth, np.zeros((4, 4), bool))
    flat = np.full((1, 16, 32, 3), 90, np.uint8)
    with pytest.raises(ValueError, match="no step"):
        seam_score(flat, flat, _right_of(8))
