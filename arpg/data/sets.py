"""The data sets a recipe can train on, and the canvases it renders them on.

:data:`DATASETS` maps a recipe's ``data`` name to its module (:mod:`arpg.data.digits`,
:mod:`arpg.data.scenes`); both offer ``sample(indices, seed, labels=None, size=(H, W),
scale=1.0)`` (digits also a ``style``), ``CLASS_NAMES``, ``IMAGE_SIZE`` and the split seeds
``TRAIN_SEED`` / ``HELDOUT_SEED``.  A :class:`CanvasSpec` is one training canvas: pixels and
resolution; every batch is rendered on one canvas, so every batch has one token grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from ..validation import check_choice, check_int, check_number
from . import digits, scenes

#: A recipe's ``data`` name -> the module that renders it.
DATASETS: dict[str, ModuleType] = {"digits": digits, "scenes": scenes}


def dataset(name: str) -> ModuleType:
    """The module of data set ``name`` (``ValueError`` naming the choices for an unknown one)."""
    return DATASETS[check_choice("data", name, DATASETS)]


def check_style(data: str, style: str | None) -> str | None:
    """``style`` if data set ``data`` has it: a name of ``digits.STYLES`` for digits, None for scenes."""
    styles = getattr(dataset(data), "STYLES", None)
    if styles is None:
        if style is not None:
            raise ValueError(f"the {data} data set has no styles; got style {style!r}")
        return None
    return check_choice("style", style, styles)


@dataclass(frozen=True)
class CanvasSpec:
    """A training canvas: ``height`` x ``width`` pixels at ``scale`` (``64 * scale`` pixels per scene unit)."""

    height: int = 64
    width: int = 64
    scale: float = 1.0

    def __post_init__(self) -> None:
        check_int("canvas height", self.height, 1, 4096)
        check_int("canvas width", self.width, 1, 4096)
        check_number("canvas scale", self.scale, 0.0, 32.0, lo_open=True)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.height, self.width

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def grid(self, factor: int) -> tuple[int, int]:
        """The token grid (rows, cols) of a tokenizer with ``factor`` pixels per token side."""
        if self.height % factor or self.width % factor:
            raise ValueError(f"canvas {self.height}x{self.width} is not a multiple of {factor} pixels")
        return self.height // factor, self.width // factor

    @property
    def tag(self) -> str:
        """A file-name tag: "" for the default 64x64 at scale 1, else e.g. "64x96" or "96x96@1.5"."""
        if self == CanvasSpec():
            return ""
        return f"{self.height}x{self.width}" + ("" if self.scale == 1 else f"@{self.scale:g}")


#: The one canvas of a data set of single 64x64 images.
SQUARE = (CanvasSpec(),)


def images(
    data: str,
    indices: Sequence[int] | np.ndarray,
    seed: int,
    canvas: CanvasSpec = CanvasSpec(),
    style: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``indices`` of split ``seed`` of data set ``data`` on ``canvas``: ((n, H, W, 3) uint8, (n,) int64)."""
    style_kw = {} if check_style(data, style) is None else {"style": style}
    return dataset(data).sample(indices, seed, size=canvas.size, scale=canvas.scale, **style_kw)


def batch_for(canvas: CanvasSpec, batch: int, reference: CanvasSpec) -> int:
    """Images per batch on ``canvas`` for ``batch`` images on ``reference``: about the same pixels (tokens)."""
    return max(1, round(batch * reference.pixels / canvas.pixels))


def canvas_at(canvases: Sequence[CanvasSpec], step: int) -> CanvasSpec:
    """The canvas of training step ``step``: the canvases in turn."""
    return canvases[step % len(canvases)]
