"""Animations of the decoding order, for the app, slides and papers: frames of a pipeline's
decodes, several strategies side by side or racing on one clock (:mod:`arpg.viz.compare`),
and GIF/MP4 files.

Sampling options follow :func:`arpg.sampling.generate`: one :class:`~arpg.options.SamplingOptions`
(``None`` means the pipeline's defaults, ``pipe.defaults``) plus keyword overrides named
after its fields (``steps=``, ``order=``, ``cfg_scale=``...; ``None`` values keep the field).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from ..options import SamplingOptions
from ..validation import check_seed
from .compare import METHODS, Comparison, compare_decodes, compare_models
from .draw import BACKGROUND, to_pil
from .frames import decode_frames, side_by_side

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..pipeline import Output, Pipeline

__all__ = [
    "MAX_FRAMES",
    "COMPARE_FPS",
    "RACE_HOLD_S",
    "save_animation",
    "trace_frames",
    "strategy_frames",
    "comparison_frames",
    "comparison_animation",
    "decoding_animation",
]

MAX_FRAMES = 64  # long 1-token-per-step decodes are shown at this many evenly spaced steps
COMPARE_FPS = 8.0  # frames per second of a comparison on one clock (fewer when a long race needs it)
SINGLE_FPS = 6.0  # frames per second of one decode, one frame per (kept) step
RACE_HOLD_S = 2.0  # seconds the last frame of a comparison stays on screen
GIF_COLOURS = 255  # colours of a GIF's one palette; index 255 is transparent (pixels unchanged since the last frame)


# -- frames of pipeline decodes --------------------------------------------------------------------


def _subsample(n_steps: int, max_frames: int) -> np.ndarray:
    """Indices of at most ``max_frames`` evenly spaced steps out of ``n_steps`` (first and last kept)."""
    if n_steps <= max_frames:
        return np.arange(n_steps)
    return np.unique(np.linspace(0, n_steps - 1, max_frames).round().astype(int))


def _options(pipe: Pipeline, options: SamplingOptions | None, overrides: dict[str, Any]) -> SamplingOptions:
    """``options`` (``None``: the pipeline's defaults) with ``overrides`` applied."""
    return (pipe.defaults if options is None else options).replace(**overrides)


def trace_frames(
    pipe: Pipeline, out: Output, label_text: str | None = None, scale: int | None = None, max_frames: int = MAX_FRAMES
) -> list[Image.Image]:
    """Animation frames (partial image | order map) of the first image of a pipeline output.

    ``out`` must come from ``pipe.generate(..., snapshots=True)``. Decodes with more than
    ``max_frames`` steps are shown at that many evenly spaced steps; ``scale`` (default:
    about 256 px) upscales the decoded image.
    """
    trace = out.trace
    keep = _subsample(len(trace.snapshots), max_frames)
    snaps = torch.stack([trace.snapshots[i][0] for i in keep])  # (K, rows, cols)
    imgs = [im for i in range(0, len(snaps), 16) for im in pipe.decode(snaps[i : i + 16])]
    step_of = trace.step_of.numpy().copy()
    dec = step_of >= 0
    step_of[dec] = np.searchsorted(keep, step_of[dec])  # a cell shows up at the first kept frame after it
    if scale is None:
        scale = max(1, 256 // max(imgs[0].shape[:2]))
    return decode_frames(imgs, step_of, scale=scale, label=label_text, step_numbers=keep + 1)


def strategy_frames(
    pipe: Pipeline,
    label: int,
    strategies: Sequence[tuple[str, dict[str, Any]]],
    options: SamplingOptions | None = None,
    *,
    seed: int | None = 0,
    callback: Callable | None = None,
    **overrides: Any,
) -> tuple[list[Image.Image], list[Output]]:
    """Several decodes of the same class and seed side by side.

    ``strategies`` holds (title, option overrides such as ``steps`` and ``order``), each
    applied on top of ``options``. ``callback`` is passed to every decode.

    Returns:
        (frames of the side-by-side animation, one pipeline output per strategy).
    """
    opts = _options(pipe, options, overrides)
    seed = check_seed(seed)
    cols, outs = [], []
    for _, kw in strategies:
        out = pipe.generate([label], options=opts.replace(**kw), seed=seed, snapshots=True, callback=callback)
        outs.append(out)
        cols.append(trace_frames(pipe, out, scale=None))
    return side_by_side(cols, [t for t, _ in strategies]), outs


def comparison_frames(
    pipe: Pipeline,
    label: int,
    options: SamplingOptions | None = None,
    *,
    seed: int | None = 0,
    methods: tuple[str, ...] = METHODS,
    callback: Callable | None = None,
    **overrides: Any,
) -> tuple[list[Image.Image], list[Output]]:
    """The same class and seed decoded by the strategies of :data:`arpg.sampling.METHODS`, racing on one clock.

    Raster and random order one token per step, and ARPG in ``options.steps`` steps; the
    options' ``order`` is replaced by each strategy's. The frames are meant to be played at
    :data:`COMPARE_FPS` (see :func:`arpg.viz.compare.compare_decodes` for the timings and the
    exact frame rate). Returns (frames, outputs).
    """
    cmp = compare_decodes(
        pipe, label, _options(pipe, options, overrides), seed=seed, methods=methods, callback=callback, fps=COMPARE_FPS
    )
    return cmp.frames, cmp.outputs


def comparison_animation(
    pipe: Pipeline,
    label: int,
    path: str | Path,
    options: SamplingOptions | None = None,
    *,
    fps: float = COMPARE_FPS,
    slow: float | None = None,
    seed: int | None = 0,
    callback: Callable | None = None,
    **overrides: Any,
) -> Comparison:
    """Write the race of :func:`arpg.viz.compare.compare_decodes` to a GIF/MP4; returns the comparison.

    The file plays the shared clock at ``comparison.timeline.fps`` (about ``fps``), slowed by
    ``slow`` (``None``: ARPG lasts at least 1 s on screen); the last frame stays 2 s.
    """
    path = _animation_path(path)
    cmp = compare_decodes(
        pipe, label, _options(pipe, options, overrides), seed=seed, callback=callback, fps=fps, slow=slow
    )
    save_animation(cmp.frames, path, fps=cmp.timeline.fps, hold_last=RACE_HOLD_S)
    return cmp


def models_animation(
    pipes: Sequence[Pipeline],
    label: int | str,
    path: str | Path,
    *,
    steps: dict[str, int] | None = None,
    fps: float = COMPARE_FPS,
    slow: float | None = None,
    seed: int | None = 0,
) -> Comparison:
    """Write the race of :func:`arpg.viz.compare.compare_models` (2-4 models, each at its own settings) to a
    GIF/MP4, as :func:`comparison_animation` does for one model's strategies; returns the comparison."""
    path = _animation_path(path)
    cmp = compare_models(pipes, label, steps=steps, seed=seed, fps=fps, slow=slow)
    save_animation(cmp.frames, path, fps=cmp.timeline.fps, hold_last=RACE_HOLD_S)
    return cmp


def _animation_path(path: str | Path) -> Path:
    """``path`` as a Path, refused unless it ends in .gif or .mp4."""
    path = Path(path)
    if path.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"the animation must be a .gif or .mp4 file, got {path.name!r}")
    return path


def decoding_animation(
    pipe: Pipeline,
    label: int,
    path: str | Path,
    options: SamplingOptions | None = None,
    *,
    compare: bool = False,
    fps: float | None = None,
    slow: float | None = None,
    seed: int | None = None,
    **overrides: Any,
) -> Path:
    """Write a GIF/MP4 of one decode (or, with ``compare``, the race of :func:`comparison_animation`).

    ``fps`` defaults to 6 frames per second for one decode and :data:`COMPARE_FPS` for a
    comparison; ``slow`` only applies to a comparison. Returns the path.
    """
    path = _animation_path(path)
    opts = _options(pipe, options, overrides)
    if compare:
        comparison_animation(pipe, label, path, opts, fps=fps or COMPARE_FPS, slow=slow, seed=seed)
        return path
    out = pipe.generate([label], options=opts, seed=seed, snapshots=True)
    frames = trace_frames(pipe, out, label_text=pipe.class_names[label])
    return save_animation(frames, path, fps=fps or SINGLE_FPS)


# -- animation files -------------------------------------------------------------------------------


def _pad_to_multiple(arr: np.ndarray, m: int, colour: Sequence[int]) -> np.ndarray:
    """Pad an RGB array at the bottom/right so both sides are multiples of ``m``."""
    h, w = arr.shape[:2]
    hh, ww = -(-h // m) * m, -(-w // m) * m
    if (hh, ww) == (h, w):
        return arr
    out = np.empty((hh, ww, 3), np.uint8)
    out[:] = np.asarray(colour, np.uint8)
    out[:h, :w] = arr
    return out


def _shared_palette(frames: list[Image.Image]) -> Image.Image:
    """A palette image of :data:`GIF_COLOURS` colours for every frame, from the first, middle and
    last frames (index :data:`GIF_COLOURS` stays free: it marks unchanged pixels)."""
    sample = [frames[0], frames[len(frames) // 2], frames[-1]]
    w, h = frames[0].size
    montage = Image.new("RGB", (w, h * len(sample)))
    for i, im in enumerate(sample):
        montage.paste(im, (0, i * h))
    return montage.quantize(colors=GIF_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def _delta_frames(frames: list[Image.Image]) -> list[Image.Image]:
    """The frames on one shared palette; from the second on, the pixels equal to the previous
    frame's are the transparent index (runs that compress well), so each frame only paints
    what changed on top of the one before."""
    palette = _shared_palette(frames)
    indexed = np.stack([np.asarray(im.quantize(palette=palette, dither=Image.Dither.NONE)) for im in frames])
    out = indexed.copy()
    out[1:][indexed[1:] == indexed[:-1]] = GIF_COLOURS
    rgb = palette.getpalette()[: 3 * GIF_COLOURS] + [0, 0, 0]
    result = []
    for arr in out:
        im = Image.fromarray(arr, "P")
        im.putpalette(rgb)
        result.append(im)
    return result


def _save_gif(frames: list[Image.Image], path: Path, fps: float, hold_last: float) -> None:
    """An endlessly looping GIF with one shared palette; the last frame stays ``hold_last`` seconds.

    Frame durations are whole centiseconds (GIF's unit), so ``fps`` is rounded to the nearest
    rate whose frame lasts a multiple of 10 ms.
    """
    frame_ms = max(20, int(round(100.0 / fps)) * 10)
    durations = [frame_ms] * len(frames)
    durations[-1] = max(frame_ms, int(round(100.0 * hold_last)) * 10)
    delta = _delta_frames(frames)
    delta[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=delta[1:],
        duration=durations,
        loop=0,
        transparency=GIF_COLOURS,
        disposal=1,
        optimize=False,
    )


def _save_mp4(frames: list[Image.Image], path: Path, fps: float, hold_last: float) -> None:
    """An H.264 MP4 at a constant frame rate, so the hold is made of repeated last frames."""
    try:
        import imageio.v2 as iio  # optional: only MP4 output needs it

        writer = iio.get_writer(
            str(path),
            format="FFMPEG",
            mode="I",
            fps=float(fps),
            codec="libx264",
            quality=8,
            pixelformat="yuv420p",
            macro_block_size=1,
        )
    except (ImportError, ValueError, RuntimeError, OSError) as exc:
        raise RuntimeError("writing MP4 needs an ffmpeg backend for imageio: pip install imageio-ffmpeg") from exc
    n_hold = max(0, int(round(hold_last * fps)) - 1)
    try:
        with writer:
            for im in frames + [frames[-1]] * n_hold:
                writer.append_data(_pad_to_multiple(np.asarray(im), 2, BACKGROUND))
    except (RuntimeError, OSError) as exc:
        path.unlink(missing_ok=True)
        if "ffmpeg" in str(exc).lower():
            msg = "writing MP4 failed, the ffmpeg backend is unusable: pip install imageio-ffmpeg"
            raise RuntimeError(msg) from exc
        raise


def save_animation(
    images: Sequence[Image.Image | np.ndarray], path: str | Path, fps: float = 8, hold_last: float = 1.5
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
    frames = [to_pil(im) for im in images]
    if any(im.size != frames[0].size for im in frames):
        raise ValueError("all frames must have the same size")
    path.parent.mkdir(parents=True, exist_ok=True)
    (_save_gif if suffix == ".gif" else _save_mp4)(frames, path, fps, hold_last)
    return path
