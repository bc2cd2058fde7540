"""Drawing helpers that show how randomized parallel decoding proceeds.

Everything here works on numpy arrays and PIL images and is free of global
state: matplotlib is imported lazily inside the functions that need it, always
through :class:`matplotlib.figure.Figure` and the Agg canvas (never pyplot).

Conventions shared by the helpers:

* ``step_of`` is an int array ``(rows, cols)``: the 0-based decoding step at
  which each token cell was decoded, ``-1`` for cells known beforehand
  (context, e.g. when inpainting).
* ``frames`` is a list of ``uint8`` RGB images ``(rows*f, cols*f, 3)``, one per
  decoding step, decoded from the tokens known *after* that step.  Cells that
  are still unknown are not masked in them; :func:`mask_unknown` does that.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = [
    "PUBLISHED",
    "PUBLISHED_CAPTION",
    "mask_unknown",
    "order_map",
    "decode_frames",
    "side_by_side",
    "save_animation",
    "step_heatmap",
    "image_grid",
    "figure_to_image",
    "tradeoff_plot",
    "tradeoff_figure",
    "published_plot",
    "published_figure",
]

# --------------------------------------------------------------------------
# Palette
# --------------------------------------------------------------------------

BACKGROUND: tuple[int, int, int] = (22, 24, 30)
"""Background of the animation frames (dark, reads well in Gradio)."""
TEXT_COLOUR: tuple[int, int, int] = (230, 232, 238)
CHECKER_DARK: tuple[int, int, int] = (112, 112, 112)
CHECKER_LIGHT: tuple[int, int, int] = (134, 134, 134)
UNDECODED: tuple[int, int, int] = (33, 35, 44)
CONTEXT: tuple[int, int, int] = (196, 196, 196)
GRID_LINE: tuple[int, int, int] = (14, 15, 19)
HIGHLIGHT: tuple[int, int, int] = (255, 255, 255)

# --------------------------------------------------------------------------
# Published numbers (ARPG paper, Table: ImageNet 256x256, A800, batch 64, bf16)
# --------------------------------------------------------------------------

PUBLISHED_CAPTION = "published figures, ImageNet 256x256, A800"

PUBLISHED: list[dict[str, Any]] = [
    {"model": "ARPG-L", "family": "ARPG", "order": "random, parallel", "steps": 32,
     "images_per_s": 113.01, "memory_gb": 2.54, "fid": 2.44},
    {"model": "ARPG-L", "family": "ARPG", "order": "random, parallel", "steps": 64,
     "images_per_s": 62.12, "memory_gb": 2.43, "fid": 2.44},
    {"model": "ARPG-XL", "family": "ARPG", "order": "random, parallel", "steps": 64,
     "images_per_s": 35.89, "memory_gb": 4.48, "fid": 2.10},
    {"model": "ARPG-XXL", "family": "ARPG", "order": "random, parallel", "steps": 64,
     "images_per_s": 25.39, "memory_gb": 7.31, "fid": 1.94},
    {"model": "LlamaGen-L", "family": "LlamaGen", "order": "raster", "steps": 576,
     "images_per_s": 4.33, "memory_gb": 10.23, "fid": 3.07},
    {"model": "RandAR-L", "family": "RandAR", "order": "random, parallel", "steps": 88,
     "images_per_s": 25.30, "memory_gb": 7.32, "fid": 2.55},
    {"model": "VAR-d16", "family": "VAR", "order": "next scale", "steps": 10,
     "images_per_s": 114.42, "memory_gb": 10.97, "fid": 3.30},
    {"model": "MaskGIT", "family": "MaskGIT", "order": "masked, parallel", "steps": 8,
     "images_per_s": 46.18, "memory_gb": 1.71, "fid": 6.18},
]
"""Published ImageNet-256 numbers (A800, batch 64, bf16), one dict per row.

Keys: ``model``, ``family``, ``order``, ``steps``, ``images_per_s``,
``memory_gb`` (peak GPU memory) and ``fid`` (lower is better).
"""

# --------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _colormap_lut(name: str = "viridis", n: int = 256) -> np.ndarray:
    """Return a ``(n, 3)`` uint8 lookup table for a matplotlib colormap."""
    from matplotlib import colormaps

    cmap = colormaps[name].resampled(n)
    lut = cmap(np.linspace(0.0, 1.0, n))[:, :3]
    return np.round(lut * 255).astype(np.uint8)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """PIL's default font at ``size`` px (bitmap fallback on old Pillow)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, AttributeError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def _text_width(text: str, font: Any) -> int:
    """Width in pixels of ``text`` drawn with ``font``."""
    left, _, right, _ = font.getbbox(text)
    return int(math.ceil(right - left))


def _fit_text(text: str, max_width: int, size: int, min_size: int = 9) -> tuple[str, Any]:
    """Shrink the font (then ellipsize) until ``text`` fits ``max_width`` px."""
    for s in range(size, min_size - 1, -1):
        font = _font(s)
        if _text_width(text, font) <= max_width:
            return text, font
    font = _font(min_size)
    while len(text) > 1 and _text_width(text + "…", font) > max_width:
        text = text[:-1]
    return text + "…", font


def _to_rgb_array(image: np.ndarray | Image.Image) -> np.ndarray:
    """Return ``image`` as a ``(H, W, 3)`` uint8 array (copy-free when possible)."""
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


def _to_pil(image: np.ndarray | Image.Image) -> Image.Image:
    """Return ``image`` as an RGB PIL image."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    return Image.fromarray(_to_rgb_array(image), "RGB")


def _check_step_of(step_of: np.ndarray) -> np.ndarray:
    """Validate ``step_of`` and return it as an int64 2-D array."""
    arr = np.asarray(step_of)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"step_of must be a non-empty 2-D array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"step_of must be integer, got {arr.dtype}")
    if arr.min() < -1:
        raise ValueError("step_of values must be >= -1")
    return arr.astype(np.int64)


# --------------------------------------------------------------------------
# 1. Masking unknown cells
# --------------------------------------------------------------------------


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
    img = _to_rgb_array(image).copy()
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
        pattern = np.where(odd[..., None], np.array(CHECKER_LIGHT, np.uint8),
                           np.array(CHECKER_DARK, np.uint8))
        img[unknown_px] = pattern[unknown_px]
    else:
        img[unknown_px] = np.asarray(fill, dtype=np.uint8)[:3]
    return img


# --------------------------------------------------------------------------
# 2. Decoding-order map
# --------------------------------------------------------------------------


def _cell_index(n_px: int, n_cells: int) -> np.ndarray:
    """Map each of ``n_px`` pixels to its cell among ``n_cells`` (nearest)."""
    return (np.arange(n_px) * n_cells) // n_px


def _edge_distance(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: distance to its cell's first pixel and to its last pixel."""
    n = idx.size
    starts = np.searchsorted(idx, idx, side="left")
    ends = np.searchsorted(idx, idx, side="right") - 1
    pos = np.arange(n)
    return pos - starts, ends - pos


def order_map(step_of: np.ndarray, upto: int, size: int) -> np.ndarray:
    """Colour map of the grid showing which cells are decoded after ``upto`` steps.

    Cells with ``0 <= step < upto`` are coloured by step (viridis over
    ``0..max_step``); the newest cells (``step == upto - 1``) are brightened and,
    when cells are at least 6 px, outlined in white.  Cells not decoded yet are
    dark, context cells (``-1``) light grey.  Thin grid lines are drawn when
    cells are at least 6 px.

    Args:
        step_of: int array ``(rows, cols)``.
        upto: number of decoding steps done (0 = nothing decoded yet).
        size: output height in pixels; the width is ``round(size*cols/rows)``.

    Returns:
        uint8 array ``(size, round(size*cols/rows), 3)``.
    """
    step_of = _check_step_of(step_of)
    if size < 1:
        raise ValueError("size must be >= 1")
    rows, cols = step_of.shape
    h, w = int(size), max(1, int(round(size * cols / rows)))
    max_step = max(int(step_of.max()), 0)

    lut = _colormap_lut("viridis", 256)
    norm = np.clip(step_of, 0, None) / max(max_step, 1)
    cell_rgb = lut[np.round(norm * 255).astype(np.int64)].astype(np.float32)

    decoded = (step_of >= 0) & (step_of < upto)
    newest = (step_of == upto - 1) & decoded
    out = np.empty((rows, cols, 3), np.float32)
    out[:] = np.asarray(UNDECODED, np.float32)
    out[decoded] = cell_rgb[decoded]
    out[newest] = 0.45 * cell_rgb[newest] + 0.55 * 255.0
    out[step_of < 0] = np.asarray(CONTEXT, np.float32)
    cells = np.round(out).astype(np.uint8)

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
            newest_px = newest[ys][:, xs]
            img[newest_px & edge] = HIGHLIGHT
    return img


# --------------------------------------------------------------------------
# 3. Decoding animation
# --------------------------------------------------------------------------


def decode_frames(
    frames: Sequence[np.ndarray | Image.Image],
    step_of: np.ndarray,
    scale: int = 4,
    label: str | None = None,
) -> list[Image.Image]:
    """One animation frame per decoding step: partial image | order map.

    Frame 0 shows nothing decoded (only context cells, taken from
    ``frames[0]``); frame ``s`` (1..S) shows ``frames[s-1]`` with the cells not
    yet decoded masked by :func:`mask_unknown`, next to :func:`order_map` after
    ``s`` steps, with a caption ``"step s/S · n new tokens · label"``.  The
    final frame is held longer by :func:`save_animation`.

    Args:
        frames: S uint8 RGB images ``(rows*f, cols*f, 3)``, one per step.
        step_of: int array ``(rows, cols)``, values in ``-1..S-1``.
        scale: NEAREST upscaling factor of the decoded image.
        label: optional text appended to the caption (e.g. ``"ARPG"``).

    Returns:
        ``S + 1`` RGB PIL images of identical size.
    """
    step_of = _check_step_of(step_of)
    if len(frames) == 0:
        raise ValueError("frames is empty")
    if scale < 1:
        raise ValueError("scale must be >= 1")
    n_steps = len(frames)
    if int(step_of.max()) >= n_steps:
        raise ValueError(f"step_of refers to step {int(step_of.max())} but only {n_steps} frames")
    arrays = [_to_rgb_array(f) for f in frames]
    h0, w0 = arrays[0].shape[:2]
    if any(a.shape[:2] != (h0, w0) for a in arrays):
        raise ValueError("all frames must have the same size")

    big_h, big_w = h0 * scale, w0 * scale
    map_h = big_h
    pad, gap = max(6, big_h // 40), max(8, big_h // 24)
    font_size = int(np.clip(big_h // 18, 11, 18))
    cap_h = font_size + pad
    map_w = max(1, int(round(map_h * step_of.shape[1] / step_of.shape[0])))
    width = pad + big_w + gap + map_w + pad
    height = pad + cap_h + big_h + pad
    n_context = int((step_of < 0).sum())
    counts = np.bincount(step_of[step_of >= 0].ravel(), minlength=n_steps)

    out: list[Image.Image] = []
    for s in range(n_steps + 1):
        src = arrays[max(s - 1, 0)]
        known = step_of < s  # includes context (-1)
        big = np.repeat(np.repeat(src, scale, axis=0), scale, axis=1)
        left = mask_unknown(big, known)
        right = order_map(step_of, s, map_h)

        canvas = Image.new("RGB", (width, height), BACKGROUND)
        canvas.paste(Image.fromarray(left), (pad, pad + cap_h))
        canvas.paste(Image.fromarray(right), (pad + big_w + gap, pad + cap_h))

        new = int(counts[s - 1]) if s > 0 else 0
        parts = [f"step {s}/{n_steps}", f"{new} new token{'s' if new != 1 else ''}"]
        if s == 0 and n_context:
            parts[1] = f"{n_context} context tokens"
        if label:
            parts.append(label)
        text, font = _fit_text(" · ".join(parts), width - 2 * pad, font_size)
        ImageDraw.Draw(canvas).text((pad, pad), text, fill=TEXT_COLOUR, font=font)
        out.append(canvas)
    return out


# --------------------------------------------------------------------------
# 4. Several animations side by side
# --------------------------------------------------------------------------


def side_by_side(columns: Sequence[Sequence[Image.Image]], titles: Sequence[str]) -> list[Image.Image]:
    """Combine several animations into one, all ending together.

    The output has ``T = max(len(col))`` frames; column ``j`` at output frame
    ``t`` shows its frame ``round(t * (len_j - 1) / (T - 1))``, so every column
    starts on its first and ends on its last frame.  Each column gets its title
    on top; columns of different sizes are centred.

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
    col_h = [max(im.height for im in c) for c in columns]
    body_h = max(col_h)
    font_size = int(np.clip(body_h // 16, 12, 20))
    pad, gap = 8, 12
    title_h = font_size + pad
    width = pad + sum(col_w) + gap * (len(columns) - 1) + pad
    height = pad + title_h + body_h + pad

    # titles are the same on every frame: render them once
    header = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(header)
    xs: list[int] = []
    x = pad
    for w, title in zip(col_w, titles):
        xs.append(x)
        text, font = _fit_text(str(title), w, font_size)
        tw = _text_width(text, font)
        draw.text((x + (w - tw) // 2, pad), text, fill=TEXT_COLOUR, font=font)
        x += w + gap

    out: list[Image.Image] = []
    for t in range(n_out):
        canvas = header.copy()
        for j, col in enumerate(columns):
            k = 0 if n_out == 1 else int(round(t * (len(col) - 1) / (n_out - 1)))
            im = _to_pil(col[k])
            ox = xs[j] + (col_w[j] - im.width) // 2
            oy = pad + title_h + (body_h - im.height) // 2
            canvas.paste(im, (ox, oy))
        out.append(canvas)
    return out


# --------------------------------------------------------------------------
# 5. Saving animations
# --------------------------------------------------------------------------


def _pad_to_multiple(arr: np.ndarray, m: int, colour: Sequence[int]) -> np.ndarray:
    """Pad an RGB array at the bottom/right so both sides are multiples of ``m``."""
    h, w = arr.shape[:2]
    H, W = -(-h // m) * m, -(-w // m) * m
    if (H, W) == (h, w):
        return arr
    out = np.empty((H, W, 3), np.uint8)
    out[:] = np.asarray(colour, np.uint8)
    out[:h, :w] = arr
    return out


def save_animation(
    images: Sequence[Image.Image],
    path: str | Path,
    fps: float = 8,
    hold_last: float = 1.5,
) -> Path:
    """Write frames to an animated ``.gif`` (Pillow) or ``.mp4`` (imageio).

    Args:
        images: frames of identical size.
        path: output file; the suffix picks the format.
        fps: frames per second.
        hold_last: seconds the last frame stays on screen.

    Returns:
        The output path.

    Raises:
        ValueError: unsupported suffix, no frames, or frames of different sizes.
        RuntimeError: MP4 requested but imageio has no ffmpeg backend
            (``pip install imageio-ffmpeg``).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"unsupported animation format {path.suffix!r}; use .gif or .mp4")
    if not images:
        raise ValueError("no frames to save")
    if fps <= 0:
        raise ValueError("fps must be > 0")
    frames = [_to_pil(im) for im in images]
    size = frames[0].size
    if any(im.size != size for im in frames):
        raise ValueError("all frames must have the same size")
    path.parent.mkdir(parents=True, exist_ok=True)

    if suffix == ".gif":
        frame_ms = max(20, int(round(1000.0 / fps)))
        durations = [frame_ms] * len(frames)
        durations[-1] = max(frame_ms, int(round(1000.0 * hold_last)))
        frames[0].save(
            path, format="GIF", save_all=True, append_images=frames[1:],
            duration=durations, loop=0, optimize=True,
        )
        return path

    # MP4: constant frame rate, so the hold is made of repeated last frames.
    try:
        import imageio.v2 as iio

        writer = iio.get_writer(
            str(path), format="FFMPEG", mode="I", fps=float(fps), codec="libx264",
            quality=8, pixelformat="yuv420p", macro_block_size=1,
        )
    except (ImportError, ValueError, RuntimeError, OSError) as exc:
        raise RuntimeError(
            "writing MP4 needs an ffmpeg backend for imageio: pip install imageio-ffmpeg"
        ) from exc
    n_hold = max(0, int(round(hold_last * fps)) - 1)
    try:
        with writer:
            for im in frames + [frames[-1]] * n_hold:
                writer.append_data(_pad_to_multiple(np.asarray(im), 2, BACKGROUND))
    except (RuntimeError, OSError) as exc:
        path.unlink(missing_ok=True)
        if "ffmpeg" in str(exc).lower():
            raise RuntimeError(
                "writing MP4 failed, the ffmpeg backend is unusable: pip install imageio-ffmpeg"
            ) from exc
        raise
    return path


# --------------------------------------------------------------------------
# matplotlib helpers
# --------------------------------------------------------------------------


def figure_to_image(fig: "Figure", dpi: float | None = None) -> Image.Image:
    """Render a matplotlib :class:`~matplotlib.figure.Figure` to an RGB PIL image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if dpi is not None:
        fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return Image.fromarray(np.ascontiguousarray(rgba[:, :, :3]), "RGB")


def _new_figure(width_in: float, height_in: float, dpi: float = 100) -> "Figure":
    """A pyplot-free Figure with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")


# --------------------------------------------------------------------------
# 6. Step heatmap
# --------------------------------------------------------------------------


def step_heatmap(step_of: np.ndarray, title: str | None = None, size_px: int = 360) -> Image.Image:
    """Heatmap of the step at which each cell was decoded, with a colorbar.

    Context cells (``-1``) are drawn light grey and hatched.  When the grid is
    at most 16x16 the step number is written inside each cell.

    Args:
        step_of: int array ``(rows, cols)``.
        title: optional axes title.
        size_px: approximate output width in pixels.

    Returns:
        RGB PIL image about ``size_px`` wide.
    """
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, Normalize
    from matplotlib.patches import Rectangle

    step_of = _check_step_of(step_of)
    rows, cols = step_of.shape
    max_step = max(int(step_of.max()), 0)
    n_colours = max_step + 1
    dpi = 100.0
    w_in = max(size_px, 120) / dpi
    title_in = 0.3 if title else 0.0
    h_in = float(np.clip(w_in * 0.82 * rows / cols + title_in + 0.15, 1.2, 3 * w_in))
    fig = _new_figure(w_in, h_in, dpi)
    ax = fig.add_subplot(1, 1, 1)

    if n_colours <= 32:
        cmap = colormaps["viridis"].resampled(n_colours)
        norm = BoundaryNorm(np.arange(-0.5, n_colours + 0.5), n_colours)
    else:
        cmap = colormaps["viridis"]
        norm = Normalize(vmin=0, vmax=max_step)
    cmap = cmap.with_extremes(bad=np.asarray(CONTEXT) / 255.0)
    data = np.ma.masked_less(step_of, 0)
    im = ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest", aspect="equal")
    for r, c in zip(*np.nonzero(step_of < 0)):
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch="///",
                               edgecolor=(0.55, 0.55, 0.55), linewidth=0))

    if rows <= 16 and cols <= 16:
        # fit the text inside a cell: cell side in points, digits ~0.6 em wide
        cell_pt = 72.0 * (w_in * 0.78) / cols
        digits = len(str(max_step))
        fs = min(10.0, 0.85 * cell_pt / (0.62 * max(digits, 1)), 0.6 * cell_pt)
        if fs >= 4:
            lut = cmap(norm(np.arange(n_colours)))[:, :3]
            lum = lut @ np.array([0.299, 0.587, 0.114])
            for r in range(rows):
                for c in range(cols):
                    s = int(step_of[r, c])
                    if s < 0:
                        continue
                    colour = "black" if lum[s] > 0.5 else "white"
                    ax.text(c, r, str(s), ha="center", va="center", fontsize=fs, color=colour)

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
    return figure_to_image(fig)


# --------------------------------------------------------------------------
# 7. Image grid
# --------------------------------------------------------------------------


def image_grid(
    images: Sequence[np.ndarray | Image.Image],
    ncols: int,
    pad: int = 2,
    bg: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Tile images into a grid.

    Every cell has the size of the largest image (smaller ones are centred).
    With ``n`` images, ``c = min(ncols, n)`` columns and ``r = ceil(n / c)``
    rows, the result is ``c*w + (c+1)*pad`` wide and ``r*h + (r+1)*pad`` high
    (padding around and between the tiles, filled with ``bg``).
    """
    if not images:
        raise ValueError("no images")
    if ncols < 1 or pad < 0:
        raise ValueError("ncols must be >= 1 and pad >= 0")
    pils = [_to_pil(im) for im in images]
    n = len(pils)
    c = min(ncols, n)
    r = -(-n // c)
    w = max(im.width for im in pils)
    h = max(im.height for im in pils)
    canvas = Image.new("RGB", (c * w + (c + 1) * pad, r * h + (r + 1) * pad), bg)
    for i, im in enumerate(pils):
        row, col = divmod(i, c)
        x = pad + col * (w + pad) + (w - im.width) // 2
        y = pad + row * (h + pad) + (h - im.height) // 2
        canvas.paste(im, (x, y))
    return canvas


# --------------------------------------------------------------------------
# 8. Trade-off plots
# --------------------------------------------------------------------------

_METHOD_STYLE: dict[str, dict[str, Any]] = {
    "arpg": {"label": "ARPG (random, parallel)", "marker": "o", "color": "#1f77b4"},
    "raster": {"label": "raster, 1 token/step", "marker": "s", "color": "#d62728"},
    "random1": {"label": "random, 1 token/step", "marker": "^", "color": "#ff7f0e"},
}


def _num(x: Any) -> float | None:
    """``float(x)`` unless it is None/NaN/not a number."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _not_measured(ax: Any, text: str = "not measured") -> None:
    """Write a centred grey note on an otherwise empty axes."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            fontsize=11, color="0.45", style="italic")


def tradeoff_plot(results: dict[str, Any]) -> "Figure":
    """Build the 1x3 speed/quality trade-off figure of a benchmark result.

    ``results`` (as written by the benchmark script, one JSON object)::

        {
          "model":   str,   # e.g. "arpg-tiny (12 M params)"
          "machine": str,   # e.g. "NVIDIA H200, bf16" or "CPU, 2 threads"
          "rows": [         # one row per (method, steps, batch) measurement
            {
              "method": "arpg" | "raster" | "random1",
                                       # arpg: random order, several tokens/step;
                                       # raster / random1: 1 token per step
              "steps": int,            # decoding steps (forward passes) per image
              "batch": int,            # images generated together per call
              "images_per_s": float,   # throughput = batch / latency_s
              "latency_s": float,      # wall seconds of one generate call; every
                                       # image of the batch waits this long
              "kv_cache_bytes": int,   # KV cache size at the end of decoding
              "per_layer_cache_bytes": int,  # every layer (self + cross) keeping its own K/V
              "peak_mem_bytes": int,   # peak accelerator (or process) memory
              "accuracy": float | null,  # classifier accuracy on samples, 0..1
              "frechet": float | null    # Frechet distance to reference features
            }, ...
          ]
        }

    Unknown extra keys are ignored; null / missing quality fields are skipped
    and an empty quality panel says "not measured".  ARPG rows are drawn as
    one line per batch size; raster / random1 rows as separate markers at
    their step counts.

    Returns:
        A pyplot-free :class:`matplotlib.figure.Figure`.
    """
    rows = [r for r in results.get("rows", []) if _num(r.get("steps")) is not None]
    fig = _new_figure(13.0, 4.2, 100)
    axes = fig.subplots(1, 3)
    head = " · ".join(str(results[k]) for k in ("model", "machine") if results.get(k))
    if head:
        fig.suptitle(head, fontsize=12)

    batches = sorted({int(r.get("batch", 1) or 1) for r in rows if r.get("method") == "arpg"})
    arpg_cmap = None
    if len(batches) > 1:
        from matplotlib import colormaps

        arpg_cmap = colormaps["Blues"]

    def series() -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
        """Group rows into plotted series with their style."""
        out: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
        multi_batch = len({int(r.get("batch", 1) or 1) for r in rows}) > 1
        for method, base in _METHOD_STYLE.items():
            mrows = [r for r in rows if r.get("method") == method]
            for b in sorted({int(r.get("batch", 1) or 1) for r in mrows}):
                brows = sorted((r for r in mrows if int(r.get("batch", 1) or 1) == b),
                               key=lambda r: float(r["steps"]))
                style = dict(base)
                if multi_batch:
                    style["label"] = f"{base['label']}, batch {b}"
                if method == "arpg" and arpg_cmap is not None:
                    style["color"] = arpg_cmap(0.45 + 0.55 * batches.index(b) / (len(batches) - 1))
                out.append((method, style, brows))
        others = sorted({str(r.get("method")) for r in rows} - set(_METHOD_STYLE))
        for k, method in enumerate(others):
            style = {"label": method, "marker": "D", "color": f"C{4 + k}"}
            out.append((method, style, sorted((r for r in rows if r.get("method") == method),
                                              key=lambda r: float(r["steps"]))))
        return out

    groups = series()

    def draw(ax: Any, key: str, transform: Any = None, **kw: Any) -> bool:
        """Plot ``key`` against steps for every series; True if anything was drawn."""
        any_drawn = False
        for method, style, grows in groups:
            pts = [(float(r["steps"]), _num(r.get(key))) for r in grows]
            pts = [(x, y if transform is None else transform(r, y))
                   for (x, y), r in zip(pts, grows) if y is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ls = "-" if method == "arpg" else "none"
            ms = 6 if method == "arpg" else 9
            ax.plot(xs, ys, linestyle=ls, marker=style["marker"], color=style["color"],
                    markersize=ms, label=style["label"], **kw)
            any_drawn = True
        return any_drawn

    def setup_x(ax: Any) -> None:
        """log2 step axis with integer tick labels."""
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(LogLocator(base=2))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("decoding steps per image (log2)")
        ax.grid(True, which="major", alpha=0.3)

    ax0, ax1, ax2 = axes
    if draw(ax0, "images_per_s"):
        setup_x(ax0)
        ax0.set_yscale("log")
        ax0.legend(fontsize=8, loc="best")
    else:
        _not_measured(ax0)
    ax0.set_ylabel("images / s (higher is better)")
    ax0.set_title("throughput", fontsize=11)

    if draw(ax1, "latency_s"):
        setup_x(ax1)
        ax1.set_yscale("log")
    else:
        _not_measured(ax1)
    ax1.set_ylabel("latency per image (s, one generate call)")
    ax1.set_title("latency", fontsize=11)

    has_fd = any(_num(r.get("frechet")) is not None for r in rows)
    has_acc = any(_num(r.get("accuracy")) is not None for r in rows)
    ax2.set_title("sample quality", fontsize=11)
    if has_fd:
        draw(ax2, "frechet")
        ax2.set_ylabel("Frechet distance (lower is better)")
        setup_x(ax2)
        if has_acc:
            ax2b = ax2.twinx()
            draw(ax2b, "accuracy", alpha=0.85, markerfacecolor="none")
            ax2b.set_ylabel("accuracy, hollow markers (higher is better)")
            ax2b.set_ylim(-0.02, 1.02)
    elif has_acc:
        draw(ax2, "accuracy")
        ax2.set_ylabel("accuracy (higher is better)")
        ax2.set_ylim(-0.02, 1.02)
        setup_x(ax2)
    else:
        _not_measured(ax2)
    if not (has_fd and has_acc) and (has_fd or has_acc):
        missing = "accuracy" if has_fd else "Frechet distance"
        ax2.text(0.98, 0.02, f"{missing}: not measured", transform=ax2.transAxes,
                 ha="right", va="bottom", fontsize=8, color="0.45", style="italic")
    for ax in axes:
        if not ax.has_data():
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def tradeoff_figure(results: dict[str, Any]) -> Image.Image:
    """:func:`tradeoff_plot` rendered to an RGB PIL image (see it for the JSON shape)."""
    return figure_to_image(tradeoff_plot(results))


# label offsets (points) and alignment for the PUBLISHED rows, to avoid overlaps
_LABEL_PLACEMENT: dict[tuple[str, int], tuple[int, int, str, str]] = {
    ("ARPG-L", 32): (10, -8, "left", "top"),
    ("ARPG-L", 64): (0, 10, "center", "bottom"),
    ("ARPG-XL", 64): (8, -10, "left", "top"),
    ("ARPG-XXL", 64): (-13, -2, "right", "center"),
    ("RandAR-L", 88): (-13, 4, "right", "bottom"),
    ("LlamaGen-L", 576): (12, 6, "left", "bottom"),
    ("VAR-d16", 10): (12, 6, "left", "bottom"),
    ("MaskGIT", 8): (10, 4, "left", "bottom"),
}


def published_plot(rows: Sequence[dict[str, Any]] | None = None) -> "Figure":
    """Scatter of published ImageNet-256 results: images/s (log x) vs FID.

    Marker area grows with peak memory; ARPG points are blue, others by
    family.  ``rows`` defaults to :data:`PUBLISHED`.
    """
    rows = list(PUBLISHED if rows is None else rows)
    fig = _new_figure(7.6, 4.8, 100)
    ax = fig.add_subplot(1, 1, 1)
    colours = {"ARPG": "#1f77b4", "LlamaGen": "#d62728", "RandAR": "#ff7f0e",
               "VAR": "#2ca02c", "MaskGIT": "#9467bd"}
    seen: set[str] = set()
    for k, r in enumerate(rows):
        fam = str(r.get("family", r["model"]))
        colour = colours.get(fam, f"C{5 + k % 5}")
        mem = float(r.get("memory_gb", 1.0))
        ax.scatter([r["images_per_s"]], [r["fid"]], s=40 + 45 * mem, color=colour,
                   alpha=0.75, edgecolors="black", linewidths=0.6, zorder=3,
                   label=None if fam in seen else fam)
        seen.add(fam)
        dx, dy, ha, va = _LABEL_PLACEMENT.get((str(r["model"]), int(r["steps"])),
                                              (9, 4, "left", "bottom"))
        ax.annotate(f"{r['model']}, {r['steps']} steps\n{mem:g} GB",
                    (r["images_per_s"], r["fid"]), xytext=(dx, dy), textcoords="offset points",
                    fontsize=7.5, va=va, ha=ha, zorder=4)
    ax.set_xscale("log")
    xs = [float(r["images_per_s"]) for r in rows]
    ys = [float(r["fid"]) for r in rows]
    if xs:
        ax.set_xlim(min(xs) / 1.6, max(xs) * 2.6)
        ax.set_ylim(min(0.0, min(ys)), max(ys) * 1.18)
    ax.set_xlabel("throughput, images / s (log scale, higher is better)")
    ax.set_ylabel("FID (lower is better)")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_title(PUBLISHED_CAPTION + " (batch 64, bf16; marker size ~ memory)", fontsize=10)
    if seen:
        leg = ax.legend(fontsize=8, loc="upper right")
        for handle in leg.legend_handles:
            handle.set_sizes([50])
        leg.set_zorder(5)
    return fig


def published_figure() -> Image.Image:
    """:func:`published_plot` of :data:`PUBLISHED` as an RGB PIL image."""
    return figure_to_image(published_plot())


def orders_figure(results: dict) -> Image.Image:
    """Bar chart of a decoding-order table (``arpg.evaluate.order_table``): Frechet distance
    and judge accuracy per order, one group of bars per step count."""
    from matplotlib.figure import Figure

    rows = results.get("rows", [])
    orders = list(dict.fromkeys(r["order"] for r in rows))
    steps = sorted({r["steps"] for r in rows})
    fig = Figure(figsize=(8, 3.4), dpi=110)
    ax_fd, ax_acc = fig.subplots(1, 2)
    width = 0.8 / max(1, len(steps))
    x = np.arange(len(orders))
    for j, s in enumerate(steps):
        fd = [next((r["frechet"] for r in rows if r["order"] == o and r["steps"] == s), np.nan) for o in orders]
        acc = [next((100 * r["accuracy"] for r in rows if r["order"] == o and r["steps"] == s), np.nan)
               for o in orders]
        ax_fd.bar(x + j * width, fd, width, label=f"{s} steps")
        ax_acc.bar(x + j * width, acc, width, label=f"{s} steps")
    for ax, title in ((ax_fd, "Frechet distance (lower is better)"), (ax_acc, "judge accuracy % (higher is better)")):
        ax.set_xticks(x + width * (len(steps) - 1) / 2, orders, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    ax_fd.legend(fontsize=8)
    fig.suptitle(f"decoding orders: {results.get('model', '')}", fontsize=10)
    fig.tight_layout()
    return figure_to_image(fig)
