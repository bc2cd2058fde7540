"""Heatmap of the step at which each token cell was decoded (matplotlib, imported lazily).

``step_of`` follows :mod:`arpg.viz.frames`: an int array ``(rows, cols)`` of 0-based steps,
``-1`` for context cells. :func:`step_heatmap` is also available from :mod:`arpg.viz.frames`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from .draw import CONTEXT, check_step_of, figure_to_image, new_figure

__all__ = ["step_heatmap"]


def _heatmap_colours(n_colours: int) -> tuple[Any, Any]:
    """(colormap, norm): one viridis colour per step up to 32 steps, a continuous scale beyond."""
    from matplotlib import colormaps  # heavy, optional at import time
    from matplotlib.colors import BoundaryNorm, Normalize

    if n_colours <= 32:
        cmap = colormaps["viridis"].resampled(n_colours)
        norm = BoundaryNorm(np.arange(-0.5, n_colours + 0.5), n_colours)
    else:
        cmap = colormaps["viridis"]
        norm = Normalize(vmin=0, vmax=n_colours - 1)
    return cmap.with_extremes(bad=np.asarray(CONTEXT) / 255.0), norm


def _write_steps(ax: Any, step_of: np.ndarray, cmap: Any, norm: Any, n_colours: int, w_in: float) -> None:
    """Write each cell's step inside it (grids up to 16x16), black or white by the cell's brightness."""
    rows, cols = step_of.shape
    if rows > 16 or cols > 16:
        return
    # fit the text inside a cell: cell side in points, digits ~0.6 em wide
    cell_pt = 72.0 * (w_in * 0.78) / cols
    digits = len(str(n_colours - 1))
    fs = min(10.0, 0.85 * cell_pt / (0.62 * max(digits, 1)), 0.6 * cell_pt)
    if fs < 4:
        return
    lum = cmap(norm(np.arange(n_colours)))[:, :3] @ np.array([0.299, 0.587, 0.114])
    for r in range(rows):
        for c in range(cols):
            s = int(step_of[r, c])
            if s >= 0:
                ax.text(c, r, str(s), ha="center", va="center", fontsize=fs, color="black" if lum[s] > 0.5 else "white")


def _finish_heatmap(fig: Any, ax: Any, im: Any, title: str | None, n_colours: int) -> None:
    """Hide ticks and spines, set the title, add the step colorbar."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02, shrink=0.9)
    cb.set_label("decoding step", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    if n_colours <= 32:
        stride = max(1, int(math.ceil(n_colours / 8)))
        cb.set_ticks(list(range(0, n_colours, stride)))


def step_heatmap(step_of: np.ndarray, title: str | None = None, size_px: int = 360) -> Image.Image:
    """Heatmap of the step at which each cell was decoded, with a colorbar.

    Context cells (``-1``) are drawn light grey and hatched. When the grid is at most
    16x16 the step number is written inside each cell.

    Args:
        step_of: int array ``(rows, cols)``.
        title: optional axes title.
        size_px: approximate output width in pixels.

    Returns:
        RGB PIL image about ``size_px`` wide.
    """
    from matplotlib.patches import Rectangle  # heavy, optional at import time

    step_of = check_step_of(step_of)
    rows, cols = step_of.shape
    n_colours = max(int(step_of.max()), 0) + 1
    dpi = 100.0
    w_in = max(size_px, 120) / dpi
    title_in = 0.3 if title else 0.0
    h_in = float(np.clip(w_in * 0.82 * rows / cols + title_in + 0.15, 1.2, 3 * w_in))
    fig = new_figure(w_in, h_in, dpi)
    ax = fig.add_subplot(1, 1, 1)
    cmap, norm = _heatmap_colours(n_colours)
    im = ax.imshow(np.ma.masked_less(step_of, 0), cmap=cmap, norm=norm, interpolation="nearest", aspect="equal")
    for r, c in zip(*np.nonzero(step_of < 0)):
        ax.add_patch(
            Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch="///", edgecolor=(0.55, 0.55, 0.55), linewidth=0)
        )
    _write_steps(ax, step_of, cmap, norm, n_colours, w_in)
    _finish_heatmap(fig, ax, im, title, n_colours)
    return figure_to_image(fig)
