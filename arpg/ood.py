"""Is an input image far from what a model knows?  A measured rule for the digits models.

The shipped digits model learnt glyphs in two flat colours.  A photo goes wrong in two ways,
and :func:`features` measures both on the image as the model sees it
(:func:`arpg.images.prepare_image`):

* ``psnr``: how well the model's own tokens can hold the image: the PSNR (dB) of a tokenizer
  round trip (encode, decode).  Detail the tokens cannot hold is what comes back as a smear;
* ``blend``: the share of pixels that are neither of the image's two dominant colours but a
  mix of them (more than :data:`BLEND_MARGIN` of each, along the line between the two colours
  found by 2-means): a glyph has them only on its edge, a grey photo or a smooth gradient
  everywhere.

**The rule: far when psnr < 20.5 dB or blend > 0.5** (:func:`assess`).  Measured on the shipped
model, on held-out and generated digits (in the domain) and on landscapes, colour fields and photo
crops (out of it): docs/reliability.md ("Far from the model's data") has the false positives, the
share flagged, the misses, and the signals measured and left out (the judge's top softmax
probability, the Mahalanobis distance of its features); ``tests/test_ood.py`` repeats a smaller
version.  Only models with a judge and the ten digit classes get a verdict (:func:`has_rule`): the
thresholds belong to that data and tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .images import ImageSource, prepare_image
from .pipeline import Pipeline

__all__ = [
    "MIN_PSNR_DB",
    "MAX_BLEND",
    "BLEND_MARGIN",
    "DIGIT_CLASSES",
    "Verdict",
    "blend_share",
    "round_trip_psnr",
    "features",
    "has_rule",
    "assess",
]

MIN_PSNR_DB = 20.5  # far below this tokenizer round-trip PSNR ...
MAX_BLEND = 0.5  # ... or above this share of pixels mixing the two dominant colours
BLEND_MARGIN = 0.2  # a pixel within this fraction of the line's length from an end counts as that colour
#: The classes of the data set the rule was measured on.
DIGIT_CLASSES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass(frozen=True)
class Verdict:
    """How far an image is from the model's data: the rule's two measures and its answer."""

    far: bool
    psnr: float  # dB, tokenizer round trip
    blend: float  # share of pixels mixing the two dominant colours

    @property
    def reason(self) -> str:
        """In words, what makes the image unlike the data (or that nothing does)."""
        if self.psnr < MIN_PSNR_DB:
            return f"its tokens hold little of its detail ({self.psnr:.1f} dB after a round trip)"
        if self.blend > MAX_BLEND:
            return f"{self.blend:.0%} of its pixels are shades between two colours"
        return "two flat colours, like the training images"


def _two_colours(px: np.ndarray, iters: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The two dominant colours of ``px`` (N, 3) float: 2-means from the two most distant pixels."""
    c1 = px[np.argmax(((px - px.mean(0)) ** 2).sum(1))]
    c2 = px[np.argmax(((px - c1) ** 2).sum(1))]
    for _ in range(iters):
        near1 = ((px - c1) ** 2).sum(1) <= ((px - c2) ** 2).sum(1)
        if near1.all() or not near1.any():
            break
        c1, c2 = px[near1].mean(0), px[~near1].mean(0)
    return c1, c2


def blend_share(image: np.ndarray) -> float:
    """The share of pixels of an RGB uint8 image (H, W, 3) that mix its two dominant colours.

    Positions along the line between the two colours are scaled so that the 2nd and 98th
    percentiles are 0 and 1 (the pure colours, robust to a few outliers); a pixel blends when
    its position is more than :data:`BLEND_MARGIN` from both ends.
    """
    px = np.asarray(image).reshape(-1, 3).astype(np.float64)
    c1, c2 = _two_colours(px)
    d = c2 - c1
    t = (px - c1) @ d / max(float(d @ d), 1e-6)
    lo, hi = np.quantile(t, [0.02, 0.98])
    if hi - lo < 1e-6:  # one flat colour
        return 0.0
    u = (t - lo) / (hi - lo)
    return float(((u > BLEND_MARGIN) & (u < 1 - BLEND_MARGIN)).mean())


def round_trip_psnr(pipe: Pipeline, image: np.ndarray) -> float:
    """PSNR (dB) of an RGB uint8 image (H, W, 3) against its tokenizer round trip through ``pipe``."""
    rec = pipe.decode(pipe.encode(image[None]))[0]
    mse = float(((rec.astype(np.float64) - image.astype(np.float64)) ** 2).mean())
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def features(pipe: Pipeline, image: np.ndarray) -> Verdict:
    """The rule applied to an RGB uint8 image (H, W, 3) already at ``pipe``'s working size."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    psnr, blend = round_trip_psnr(pipe, image), blend_share(image)
    return Verdict(psnr < MIN_PSNR_DB or blend > MAX_BLEND, psnr, blend)


def has_rule(pipe: Pipeline) -> bool:
    """Whether the rule was measured for ``pipe``'s data: a judge and the ten digit classes."""
    return getattr(pipe, "judge", None) is not None and tuple(pipe.class_names) == DIGIT_CLASSES


def assess(pipe: Pipeline, image: ImageSource) -> Verdict | None:
    """How far ``image`` (any source :func:`arpg.images.prepare_image` reads) is from ``pipe``'s
    data, seen at the size the model works at; None when there is no rule for it (:func:`has_rule`)."""
    if not has_rule(pipe):
        return None
    return features(pipe, prepare_image(image, pipe.factor, pipe.grid[0]))
