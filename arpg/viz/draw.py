"""Drawing basics shared by :mod:`arpg.viz`: palette, fonts, text fitting, array/PIL conversion.

matplotlib is imported lazily inside the functions that need it, always through
:class:`matplotlib.figure.Figure` and the Agg canvas (never pyplot), so importing this
module stays light.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageFont

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = [
    "BACKGROUND",
    "TEXT_COLOUR",
    "CHECKER_DARK",
    "CHECKER_LIGHT",
    "UNDECODED",
    "CONTEXT",
    "GRID_LINE",
    "HIGHLIGHT",
    "colormap_lut",
    "font",
    "text_width",
    "fit_text",
    "to_rgb_array",
    "to_pil",
    "check_step_of",
    "figure_to_image",
    "new_figure",
]

# -- palette ---------------------------------------------------------------------------------------

BACKGROUND: tuple[int, int, int] = (22, 24, 30)
"""Background of the animation frames (dark, reads well in Gradio)."""
TEXT_COLOUR: tuple[int, int, int] = (230, 232, 238)
CHECKER_DARK: tuple[int, int, int] = (112, 112, 112)
CHECKER_LIGHT: tuple[int, int, int] = (134, 134, 134)
UNDECODED: tuple[int, int, int] = (33, 35, 44)
CONTEXT: tuple[int, int, int] = (196, 196, 196)
GRID_LINE: tuple[int, int, int] = (14, 15, 19)
HIGHLIGHT: tuple[int, int, int] = (255, 255, 255)


@lru_cache(maxsize=8)
def colormap_lut(name: str = "viridis", n: int = 256) -> np.ndarray:
    """A ``(n, 3)`` uint8 lookup table of the matplotlib colormap ``name``."""
    from matplotlib import colormaps  # heavy, optional at import time

    cmap = colormaps[name].resampled(n)
    lut = cmap(np.linspace(0.0, 1.0, n))[:, :3]
    return np.round(lut * 255).astype(np.uint8)


# -- text ------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """PIL's default font at ``size`` px (bitmap fallback on old Pillow)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def text_width(text: str, face: Any) -> int:
    """Width in pixels of ``text`` drawn with the font ``face``."""
    left, _, right, _ = face.getbbox(text)
    return int(math.ceil(right - left))


def fit_text(text: str, max_width: int, size: int, min_size: int = 9) -> tuple[str, Any]:
    """Shrink the font (then ellipsize) until ``text`` fits ``max_width`` px; returns (text, font)."""
    for s in range(size, min_size - 1, -1):
        face = font(s)
        if text_width(text, face) <= max_width:
            return text, face
    face = font(min_size)
    while len(text) > 1 and text_width(text + "…", face) > max_width:
        text = text[:-1]
    return text + "…", face


# -- conversion and checks -------------------------------------------------------------------------


def to_rgb_array(image: np.ndarray | Image.Image) -> np.ndarray:
    """``image`` as a ``(H, W, 3)`` uint8 array (copy-free when possible).

    Accepts PIL images, grey ``(H, W)`` / ``(H, W, 1)`` and RGBA arrays, and float arrays
    (in 0..1 when their maximum is at most 1, else 0..255).
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got shape {arr.shape}")
    return arr


def to_pil(image: np.ndarray | Image.Image) -> Image.Image:
    """``image`` as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    return Image.fromarray(to_rgb_array(image), "RGB")


def check_step_of(step_of: np.ndarray) -> np.ndarray:
    """Validate a ``(rows, cols)`` integer step map (values >= -1) and return it as int64."""
    arr = np.asarray(step_of)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"step_of must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"step_of must be integer, got {arr.dtype}")
    if arr.min() < -1:
        raise ValueError("step_of values must be >= -1")
    return arr.astype(np.int64)


# -- matplotlib figures ----------------------------------------------------------------------------


def figure_to_image(fig: Figure, dpi: float | None = None) -> Image.Image:
    """Render a matplotlib :class:`~matplotlib.figure.Figure` to an RGB PIL image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy, optional at import time

    if dpi is not None:
        fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return Image.fromarray(np.ascontiguousarray(rgba[:, :, :3]), "RGB")


def new_figure(width_in: float, height_in: float, dpi: float = 100) -> Figure:
    """A pyplot-free Figure of ``width_in`` x ``height_in`` inches with constrained layout."""
    from matplotlib.figure import Figure  # heavy, optional at import time

    return Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
