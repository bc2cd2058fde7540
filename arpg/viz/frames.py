"""Pictures of one decode: masked partial images, order maps, per-step frames, heatmaps, grids.

Everything here works on numpy arrays and PIL images and is free of global state;
matplotlib is imported lazily, only by :func:`order_map`'s colour table and
:func:`step_heatmap` (defined in :mod:`arpg.viz.heatmap`).

Conventions:

* ``step_of`` is an int array ``(rows, cols)``: the 0-based decoding step at which each
  token cell was decoded, ``-1`` for cells known beforehand (context, e.g. when inpainting).
* ``frames`` is a list of ``uint8`` RGB images ``(rows*f, cols*f, 3)``, one per decoding
  step, decoded from the tokens known *after* that step. Cells that are still unknown are
  not masked in them; :func:`mask_unknown` does that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from .draw import (
    BACKGROUND,
    CHECKER_DARK,
    CHECKER_LIGHT,
    CONTEXT,
    GRID_LINE,
    HIGHLIGHT,
    TEXT_COLOUR,
    UNDECODED,
    check_step_of,
    colormap_lut,
    fit_text,
    text_width,
    to_pil,
    to_rgb_array,
)
from .heatmap import step_heatmap  # a matplotlib figure of a step map, kept in its own module

__all__ = ["mask_unknown", "order_map", "decode_frames", "side_by_side", "step_heatmap", "image_grid"]


# -- masking unknown cells -------------------------------------------------------------------------


def mask_unknown(
    image: np.ndarray | Image.Image,
    known: np.ndarray,
    fill: tuple[int, int, int] | str = "checker",
) -> np.ndarray:
    """Grey out the pixels of unknown token cells.

    Args:
        image: RGB image ``(rows*fh, cols*fw, 3)`` (array or PIL image).
        known: bool array ``(rows, cols)``; ``False`` cells are replaced.
        fill: an RGB tuple for a flat fill, or ``"checker"`` for a subtle grey
            checkerboard (two checks per cell side) that reads as "empty".

    Returns:
        A new uint8 array of the same shape; known cells are untouched.
    """
    img = to_rgb_array(image).copy()
    known = np.asarray(known, dtype=bool)
    if known.ndim != 2:
        raise ValueError(f"known must be 2-D, got shape {known.shape}")
    rows, cols = known.shape
    h, w = img.shape[:2]
    if h % rows or w % cols:
        raise ValueError(f"image {h}x{w} is not a whole number of {rows}x{cols} cells")
    fh, fw = h // rows, w // cols
    unknown_px = np.repeat(np.repeat(~known, fh, axis=0), fw, axis=1)
    if not unknown_px.any():
        return img
    if isinstance(fill, str):
        if fill != "checker":
            raise ValueError(f"unknown fill {fill!r}; use 'checker' or an RGB tuple")
        sq = max(1, min(fh, fw) // 2)
        yy = (np.arange(h) // sq)[:, None]
        xx = (np.arange(w) // sq)[None, :]
        odd = ((yy + xx) % 2).astype(bool)
        pattern = np.where(odd[..., None], np.array(CHECKER_LIGHT, np.uint8), np.array(CHECKER_DARK, np.uint8))
        img[unknown_px] = pattern[unknown_px]
    else:
        img[unknown_px] = np.asarray(fill, dtype=np.uint8)[:3]
    return img


# -- decoding-order map ----------------------------------------------------------------------------


def _cell_index(n_px: int, n_cells: int) -> np.ndarray:
    """Map each of ``n_px`` pixels to its cell among ``n_cells`` (nearest)."""
    return (np.arange(n_px) * n_cells) // n_px


def _edge_distance(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: distance to its cell's first pixel and to its last pixel."""
    starts = np.searchsorted(idx, idx, side="left")
    ends = np.searchsorted(idx, idx, side="right") - 1
    pos = np.arange(idx.size)
    return pos - starts, ends - pos


def _cell_colours(step_of: np.ndarray, upto: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: its uint8 RGB colour ``(rows, cols, 3)`` after ``upto`` steps, and the newest-cells mask."""
    max_step = max(int(step_of.max()), 0)
    lut = colormap_lut("viridis", 256)
    norm = np.clip(step_of, 0, None) / max(max_step, 1)
    cell_rgb = lut[np.round(norm * 255).astype(np.int64)].astype(np.float32)

    decoded = (step_of >= 0) & (step_of < upto)
    newest = (step_of == upto - 1) & decoded
    out = np.empty((*step_of.shape, 3), np.float32)
    out[:] = np.asarray(UNDECODED, np.float32)
    out[decoded] = cell_rgb[decoded]
    out[newest] = 0.45 * cell_rgb[newest] + 0.55 * 255.0
    out[step_of < 0] = np.asarray(CONTEXT, np.float32)
    return np.round(out).astype(np.uint8), newest


def order_map(step_of: np.ndarray, upto: int, size: int) -> np.ndarray:
    """Colour map of the grid showing which cells are decoded after ``upto`` steps.

    Cells with ``0 <= step < upto`` are coloured by step (viridis over ``0..max_step``);
    the newest cells (``step == upto - 1``) are brightened and, when cells are at least
    6 px, outlined in white. Cells not decoded yet are dark, context cells (``-1``) light
    grey. Thin grid lines are drawn when cells are at least 6 px.

    Args:
        step_of: int array ``(rows, cols)``.
        upto: number of decoding steps done (0 = nothing decoded yet).
        size: output height in pixels; the width is ``round(size*cols/rows)``.

    Returns:
        uint8 array ``(size, round(size*cols/rows), 3)``.
    """
    step_of = check_step_of(step_of)
    if size < 1:
        raise ValueError("size must be >= 1")
    rows, cols = step_of.shape
    h, w = int(size), max(1, int(round(size * cols / rows)))
    cells, newest = _cell_colours(step_of, upto)
    ys, xs = _cell_index(h, rows), _cell_index(w, cols)
    img = cells[ys][:, xs].copy()

    cell_px = min(h / rows, w / cols)
    if cell_px >= 6:
        dy0, dy1 = _edge_distance(ys)
        dx0, dx1 = _edge_distance(xs)
        # one-pixel lines on the shared cell boundaries (not on the outer frame)
        line = ((dy0 == 0) & (ys > 0))[:, None] | ((dx0 == 0) & (xs > 0))[None, :]
        img[line] = GRID_LINE
        if newest.any():
            t = max(1, int(round(cell_px / 8)))
            edge = (np.minimum(dy0, dy1) < t)[:, None] | (np.minimum(dx0, dx1) < t)[None, :]
            img[newest[ys][:, xs] & edge] = HIGHLIGHT
    return img


# -- decoding animation ----------------------------------------------------------------------------


class _Layout(NamedTuple):
    """Sizes (px) of a :func:`decode_frames` canvas: caption on top, image | order map below."""

    pad: int
    gap: int
    font_size: int
    cap_h: int
    big_w: int
    map_h: int
    width: int
    height: int

    @classmethod
    def of(cls, big_h: int, big_w: int, grid: tuple[int, int]) -> _Layout:
        """The layout for an upscaled image of ``big_h`` x ``big_w`` px on a ``grid`` of cells."""
        pad, gap = max(6, big_h // 40), max(8, big_h // 24)
        font_size = int(np.clip(big_h // 18, 11, 18))
        cap_h = font_size + pad
        map_w = max(1, int(round(big_h * grid[1] / grid[0])))
        return cls(
            pad,
            gap,
            font_size,
            cap_h,
            big_w,
            big_h,
            width=pad + big_w + gap + map_w + pad,
            height=pad + cap_h + big_h + pad,
        )


def _checked_frames(frames: Sequence[np.ndarray | Image.Image], step_of: np.ndarray, scale: int) -> list[np.ndarray]:
    """The frames as RGB arrays of one size, after checking them against ``step_of`` and ``scale``."""
    if len(frames) == 0:
        raise ValueError("frames is empty")
    if scale < 1:
        raise ValueError("scale must be >= 1")
    if int(step_of.max()) >= len(frames):
        raise ValueError(f"step_of refers to step {int(step_of.max())} but only {len(frames)} frames")
    arrays = [to_rgb_array(f) for f in frames]
    if any(a.shape[:2] != arrays[0].shape[:2] for a in arrays):
        raise ValueError("all frames must have the same size")
    return arrays


def _caption(s: int, n_steps: int, new: int, n_context: int, label: str | None) -> str:
    """``"step s/S · n new tokens · label"`` (frame 0 counts the context tokens instead)."""
    parts = [f"step {s}/{n_steps}", f"{new} new token{'s' if new != 1 else ''}"]
    if s == 0 and n_context:
        parts[1] = f"{n_context} context tokens"
    if label:
        parts.append(label)
    return " · ".join(parts)


def _step_numbers(step_numbers: Sequence[int] | None, n_steps: int) -> list[int]:
    """Steps done at frames ``0..S``: ``0`` then ``step_numbers`` (default ``1..S``), checked."""
    if step_numbers is None:
        return list(range(n_steps + 1))
    numbers = [0, *(int(k) for k in step_numbers)]
    if len(numbers) != n_steps + 1 or any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise ValueError(f"step_numbers must hold {n_steps} increasing step counts >= 1")
    return numbers


def decode_frames(
    frames: Sequence[np.ndarray | Image.Image],
    step_of: np.ndarray,
    scale: int = 4,
    label: str | None = None,
    step_numbers: Sequence[int] | None = None,
) -> list[Image.Image]:
    """One animation frame per decoding step: partial image | order map.

    Frame 0 shows nothing decoded (only context cells, taken from ``frames[0]``); frame
    ``s`` (1..S) shows ``frames[s-1]`` with the cells not yet decoded masked by
    :func:`mask_unknown`, next to :func:`order_map` after ``s`` steps, with a caption
    ``"step s/S · n new tokens · label"``. The final frame is held longer by
    :func:`arpg.viz.animate.save_animation`.

    Args:
        frames: S uint8 RGB images ``(rows*f, cols*f, 3)``, one per step.
        step_of: int array ``(rows, cols)``, values in ``-1..S-1``.
        scale: NEAREST upscaling factor of the decoded image.
        label: optional text appended to the caption (e.g. ``"ARPG"``).
        step_numbers: when the S frames are a subsample of a longer decode, the decode's
            number of steps done at each of them (increasing; the last one is the decode's
            length); the captions then count the decode's steps, ``"step 72/256 · 4 new
            tokens"`` (new since the previous frame). Default ``1..S``.

    Returns:
        ``S + 1`` RGB PIL images of identical size; each one's caption is also in its
        ``info["caption"]``.
    """
    step_of = check_step_of(step_of)
    arrays = _checked_frames(frames, step_of, scale)
    n_steps = len(arrays)
    h0, w0 = arrays[0].shape[:2]
    lay = _Layout.of(h0 * scale, w0 * scale, step_of.shape)
    n_context = int((step_of < 0).sum())
    counts = np.bincount(step_of[step_of >= 0].ravel(), minlength=n_steps)
    numbers = _step_numbers(step_numbers, n_steps)

    out: list[Image.Image] = []
    for s in range(n_steps + 1):
        big = np.repeat(np.repeat(arrays[max(s - 1, 0)], scale, axis=0), scale, axis=1)
        canvas = Image.new("RGB", (lay.width, lay.height), BACKGROUND)
        canvas.paste(Image.fromarray(mask_unknown(big, step_of < s)), (lay.pad, lay.pad + lay.cap_h))
        right = order_map(step_of, s, lay.map_h)
        canvas.paste(Image.fromarray(right), (lay.pad + lay.big_w + lay.gap, lay.pad + lay.cap_h))
        new = int(counts[s - 1]) if s > 0 else 0
        caption = _caption(numbers[s], numbers[-1], new, n_context, label)
        text, face = fit_text(caption, lay.width - 2 * lay.pad, lay.font_size)
        ImageDraw.Draw(canvas).text((lay.pad, lay.pad), text, fill=TEXT_COLOUR, font=face)
        canvas.info["caption"] = caption
        out.append(canvas)
    return out


# -- several animations side by side ---------------------------------------------------------------


def _titled_canvas(
    col_w: list[int], titles: Sequence[str], size: tuple[int, int], pad: int, gap: int, font_size: int
) -> tuple[Image.Image, list[int]]:
    """A background with one centred title per column, and the columns' left edges."""
    header = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(header)
    xs: list[int] = []
    x = pad
    for w, title in zip(col_w, titles):
        xs.append(x)
        text, face = fit_text(str(title), w, font_size)
        draw.text((x + (w - text_width(text, face)) // 2, pad), text, fill=TEXT_COLOUR, font=face)
        x += w + gap
    return header, xs


def side_by_side(columns: Sequence[Sequence[Image.Image]], titles: Sequence[str]) -> list[Image.Image]:
    """Combine several animations into one, all ending together.

    The output has ``T = max(len(col))`` frames; column ``j`` at output frame ``t`` shows
    its frame ``round(t * (len_j - 1) / (T - 1))``, so every column starts on its first and
    ends on its last frame. Each column gets its title on top; columns of different sizes
    are centred.

    Args:
        columns: one list of PIL frames per animation.
        titles: one title per column.

    Returns:
        ``T`` RGB PIL images of identical size.
    """
    if not columns:
        raise ValueError("no columns")
    if len(titles) != len(columns):
        raise ValueError(f"{len(titles)} titles for {len(columns)} columns")
    if any(len(c) == 0 for c in columns):
        raise ValueError("every column needs at least one frame")
    n_out = max(len(c) for c in columns)
    col_w = [max(im.width for im in c) for c in columns]
    body_h = max(max(im.height for im in c) for c in columns)
    font_size = int(np.clip(body_h // 16, 12, 20))
    pad, gap = 8, 12
    title_h = font_size + pad
    size = (pad + sum(col_w) + gap * (len(columns) - 1) + pad, pad + title_h + body_h + pad)
    header, xs = _titled_canvas(col_w, titles, size, pad, gap, font_size)  # the same on every frame

    out: list[Image.Image] = []
    for t in range(n_out):
        canvas = header.copy()
        for j, col in enumerate(columns):
            k = 0 if n_out == 1 else int(round(t * (len(col) - 1) / (n_out - 1)))
            im = to_pil(col[k])
            canvas.paste(im, (xs[j] + (col_w[j] - im.width) // 2, pad + title_h + (body_h - im.height) // 2))
        out.append(canvas)
    return out


# -- image grid ------------------------------------------------------------------------------------


def image_grid(
    images: Sequence[np.ndarray | Image.Image],
    ncols: int,
    pad: int = 2,
    bg: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Tile images into a grid.

    Every cell has the size of the largest image (smaller ones are centred). With ``n``
    images, ``c = min(ncols, n)`` columns and ``r = ceil(n / c)`` rows, the result is
    ``c*w + (c+1)*pad`` wide and ``r*h + (r+1)*pad`` high (padding around and between the
    tiles, filled with ``bg``).
    """
    if not images:
        raise ValueError("no images")
    if ncols < 1 or pad < 0:
        raise ValueError("ncols must be >= 1 and pad >= 0")
    pils = [to_pil(im) for im in images]
    n = len(pils)
    c = min(ncols, n)
    r = -(-n // c)
    w = max(im.width for im in pils)
    h = max(im.height for im in pils)
    canvas = Image.new("RGB", (c * w + (c + 1) * pad, r * h + (r + 1) * pad), bg)
    for i, im in enumerate(pils):
        row, col = divmod(i, c)
        canvas.paste(im, (pad + col * (w + pad) + (w - im.width) // 2, pad + row * (h + pad) + (h - im.height) // 2))
    return canvas
