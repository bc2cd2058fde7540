"""The digits data set: procedural, class-conditional images of colourful digit glyphs.

Everything comes from files the dependencies already ship: the TrueType fonts bundled
with matplotlib, rendered with Pillow.  Each image is 64x64 RGB showing one digit
(the class, 0-9) in a random font, size, rotation, shear, position and colour on a
plain background of another colour.  Draws are deterministic: image ``i`` of split ``seed`` is always
the same, whatever the batch size.

Two styles share every draw and differ only in how far the geometry may vary:
``"wide"`` (small to large glyphs, anywhere, tilted up to 20 degrees) trains the tokenizer
and the judge, so both cope with more than the generator ever makes; ``"centred"`` (large,
near-centred, mildly tilted glyphs) is what the shipped generator learns, so that its few
million parameters go into digit shapes rather than placement.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: What one image shows, in words (the app says what a class edit reshapes).
SUBJECT = "digit"
CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
IMAGE_SIZE = 64
# Seeds of the fixed splits; training draws from TRAIN_SEED, measurements from HELDOUT_SEED.
TRAIN_SEED = 0
HELDOUT_SEED = 1_000_003

_FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)
_GLYPH = 128  # side of the pre-rendered glyph masks


@dataclass(frozen=True)
class Style:
    """Ranges of the random geometry; see the module docstring."""

    height: tuple[float, float]  # glyph height as a fraction of the image side
    shift: float  # centre offset as a fraction of the room left around the glyph
    angle: float  # max rotation, degrees
    shear: float  # max shear


STYLES = {
    "wide": Style(height=(0.55, 0.85), shift=0.6, angle=20.0, shear=0.15),
    "centred": Style(height=(0.72, 0.86), shift=0.3, angle=8.0, shear=0.08),
}


# The style the shipped generator learns (ARPG phases 2 and 3 of the "digits" recipe); quality is measured on it.
GENERATOR_STYLE = "centred"


def get_style(style: str | Style) -> Style:
    """``style`` itself, or the named one of :data:`STYLES` (``ValueError`` for an unknown name)."""
    if isinstance(style, Style):
        return style
    if style not in STYLES:
        raise ValueError(f"unknown data style {style!r}; choose from {sorted(STYLES)}")
    return STYLES[style]


def font_dir() -> Path:
    """The folder of TrueType fonts bundled with matplotlib."""
    import matplotlib  # only when glyphs are first rendered: keeps matplotlib out of import time

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.lru_cache(maxsize=1)
def glyph_masks() -> np.ndarray:
    """(n_fonts, 10, 128, 128) uint8 alpha masks, each digit centred and scaled to a common height."""
    masks = []
    for name in _FONT_FILES:
        path = font_dir() / name
        if not path.exists():
            continue
        font = ImageFont.truetype(str(path), 100)
        per_font = []
        for d in range(10):
            canvas = Image.new("L", (200, 200), 0)
            ImageDraw.Draw(canvas).text((50, 20), str(d), fill=255, font=font)
            bbox = canvas.getbbox()
            glyph = canvas.crop(bbox)
            s = 96 / max(glyph.height, 1)
            glyph = glyph.resize((max(1, round(glyph.width * s)), 96), Image.BILINEAR)
            out = Image.new("L", (_GLYPH, _GLYPH), 0)
            out.paste(glyph, ((_GLYPH - glyph.width) // 2, (_GLYPH - glyph.height) // 2))
            per_font.append(np.asarray(out))
        masks.append(per_font)
    if not masks:
        raise RuntimeError(f"no fonts found under {font_dir()}")
    return np.asarray(masks, dtype=np.uint8)


# A palette of clearly distinct colours; each draw adds a small jitter.
PALETTE = np.array(
    [
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
        (0, 128, 128),
        (220, 190, 255),
        (170, 110, 40),
        (255, 250, 200),
        (128, 0, 0),
        (170, 255, 195),
        (0, 0, 128),
        (20, 20, 20),
        (245, 245, 245),
        (128, 128, 128),
    ],
    dtype=np.float32,
)


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground palette colours with a clear contrast, slightly jittered."""
    while True:
        bg, fg = PALETTE[rng.choice(len(PALETTE), 2, replace=False)]
        if abs(_luma(fg) - _luma(bg)) > 70:
            jitter = rng.uniform(-12, 12, (2, 3)).astype(np.float32)
            return np.clip(bg + jitter[0], 0, 255), np.clip(fg + jitter[1], 0, 255)


def render(label: int, rng: np.random.Generator, size: int = IMAGE_SIZE, style: str | Style = "wide") -> np.ndarray:
    """One (size, size, 3) uint8 image of digit ``label``."""
    st = get_style(style)
    masks = glyph_masks()
    glyph = Image.fromarray(masks[rng.integers(len(masks)), label])
    height = rng.uniform(*st.height) * size  # glyph height in output pixels
    angle = math.radians(rng.uniform(-st.angle, st.angle))
    shear = rng.uniform(-st.shear, st.shear)
    max_shift = (size - height) / 2
    cx = size / 2 + rng.uniform(-max_shift, max_shift) * st.shift
    cy = size / 2 + rng.uniform(-max_shift, max_shift) * st.shift
    # Inverse affine map output -> glyph coordinates (rotation, shear, scale about the centre).
    s = 96 / height
    ca, sa = math.cos(angle), math.sin(angle)
    a, b = s * ca, s * (sa + shear)
    d, e = -s * sa, s * ca
    c0 = _GLYPH / 2 - a * cx - b * cy
    f0 = _GLYPH / 2 - d * cx - e * cy
    alpha = (
        np.asarray(glyph.transform((size, size), Image.AFFINE, (a, b, c0, d, e, f0), Image.BILINEAR), dtype=np.float32)[
            ..., None
        ]
        / 255.0
    )
    bg, fg = _colours(rng)
    img = bg * (1 - alpha) + fg * alpha
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _side(size: tuple[int, int], scale: float | None) -> int:
    """The side of a square digits canvas ``size``; ``scale`` (if given) must be ``side / 64``."""
    h, w = size
    if h != w or (scale is not None and abs(scale * IMAGE_SIZE - h) > 1e-6):
        raise ValueError(f"digits images are square, {IMAGE_SIZE} * scale pixels a side; got {h}x{w} at scale {scale}")
    return int(h)


def sample(
    indices: np.ndarray | list[int],
    seed: int = TRAIN_SEED,
    labels: np.ndarray | None = None,
    style: str | Style = "wide",
    size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
    scale: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``indices`` of the split ``seed``: ((n, S, S, 3) uint8, (n,) int64 labels).

    The label of image i is drawn from its own generator unless ``labels`` forces it.  size:
    (S, S) pixels (the same glyph at any size); scale, if given, must be ``S / 64`` (the
    interface of :func:`arpg.data.scenes.sample`).
    """
    side = _side(size, scale)
    imgs, labs = [], []
    for j, i in enumerate(indices):
        rng = np.random.default_rng((seed, int(i)))
        lab = int(rng.integers(10)) if labels is None else int(labels[j])
        imgs.append(render(lab, rng, size=side, style=style))
        labs.append(lab)
    return np.stack(imgs), np.asarray(labs, dtype=np.int64)


def batches(batch_size: int, seed: int = TRAIN_SEED, start: int = 0, style: str | Style = "wide"):
    """Endless iterator of (images uint8 (B, 64, 64, 3), labels (B,)) in index order from ``start``."""
    i = start
    while True:
        yield sample(range(i, i + batch_size), seed, style=style)
        i += batch_size
