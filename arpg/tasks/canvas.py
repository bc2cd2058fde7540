"""The tasks that decode a bigger canvas than the image: outpainting, panoramas and resolution change.

Each one builds a grid around (or over) the image's tokens and decodes the cells it does not know through
the one canvas decode, :func:`arpg.windows.generate_canvas`, whole or in windows of a trained size. Their
geometry (the canvas, its known cells, a panorama's rounds) is worked out by the small functions here from
shapes alone: the tasks build their grids with them and :mod:`arpg.tasks.planning` plans with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from .. import masks
from ..config import ARPGConfig
from ..images import ImageSource, prepare_image
from ..options import DEFAULT_RESIZE, ResizeDefaults, SamplingOptions
from ..pipeline import Pipeline
from ..sampling import Context, StepCallback
from ..validation import check_seed
from ..windows import CanvasOutput, Used, generate_canvas, pick_window
from .context import (
    MAX_CELLS,
    TaskResult,
    check_cells,
    fit_steps,
    lattice_context,
    lattice_known,
    place,
    settled,
    unchanged,
)

SIDES = ("left", "right", "top", "bottom")  # where an outpaint or a panorama grows


# -- geometry ----------------------------------------------------------------------------------
def check_sides(left: Any, right: Any, top: Any, bottom: Any) -> tuple[int, int, int, int]:
    """An outpaint's (left, right, top, bottom) token cells, each a whole number >= 0 (``ValueError``)."""
    for k, v in zip(SIDES, (left, right, top, bottom)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{k} must be a non-negative whole number of token cells, got {v!r}")
    return int(left), int(right), int(top), int(bottom)


def extended_size(shape: tuple[int, int], sides: tuple[int, int, int, int], max_cells: int) -> tuple[int, int]:
    """The (rows, cols) of a (r, c) grid grown by ``sides`` (left, right, top, bottom), refused over ``max_cells``."""
    left, right, top, bottom = sides
    rows, cols = top + shape[0] + bottom, left + shape[1] + right
    check_cells("the extended grid", rows, cols, max_cells)
    return rows, cols


def check_panorama(times: Any, side: Any) -> int:
    """A panorama's ``times`` (a whole number from 1 to 8) once ``side`` is one of :data:`SIDES` (``ValueError``)."""
    if side not in SIDES:
        raise ValueError(f"side must be left, right, top or bottom, got {side!r}")
    if isinstance(times, bool) or not isinstance(times, (int, np.integer)) or not 1 <= times <= 8:
        raise ValueError(f"times must be a whole number from 1 to 8, got {times!r}")
    return int(times)


def panorama_size(shape: tuple[int, int], times: int, side: str, max_cells: int) -> tuple[int, int]:
    """The (rows, cols) of a finished panorama of a (rows, cols) image, refused over ``max_cells``."""
    vertical = side in ("top", "bottom")
    rows, cols = shape[0] * (times if vertical else 1), shape[1] * (1 if vertical else times)
    check_cells("the panorama", rows, cols, max_cells)
    return rows, cols


def trained_extent(across: int, vertical: bool, window: Any = None, cfg: ARPGConfig | None = None) -> int:
    """Cells along a panorama's growing side in the trained grid (or ``window``, see
    :func:`arpg.windows.pick_window`) that best fits ``across`` cells across it."""
    if vertical:
        return pick_window(4096, across, window, cfg)[0]
    return pick_window(across, 4096, window, cfg)[1]


def panorama_rounds(length: int, times: int, step: int, trained: int) -> list[tuple[int, int]]:
    """A panorama's rounds along its growing side, from ``length`` cells to ``times`` as many: (kept, new) cells
    of each. A round adds at most ``step`` cells (half the native grid) and keeps as many of the last cells as
    make a grid of ``trained`` cells (:func:`trained_extent`), at least one, at most all so far."""
    rounds, target = [], length * times
    while length < target:
        add = min(step, target - length)
        rounds.append((min(max(1, trained - add), length), add))
        length += add
    return rounds


def resize_size(shape: tuple[int, int], scale: float, max_cells: int) -> tuple[int, int]:
    """The (rows, cols) a (r, c) grid becomes at ``scale``, refused over ``max_cells``."""
    rows, cols = round(shape[0] * scale), round(shape[1] * scale)
    check_cells("the target grid", rows, cols, max_cells)
    return rows, cols


def regenerated_known(size: tuple[int, int], regenerate: float, seed: int) -> torch.Tensor:
    """The cells a re-encoding resize keeps on its ``size`` grid: all but a random ``regenerate`` fraction
    (at least one), drawn from ``seed``. (rows, cols) bool."""
    R, C = size
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(R * C, generator=g)[: regenerated(size, regenerate)]
    known = torch.ones(R * C, dtype=torch.bool)
    known[pick] = False
    return known.view(R, C)


def regenerated(size: tuple[int, int], regenerate: float) -> int:
    """How many cells a re-encoding resize decodes again on its ``size`` grid."""
    return max(1, round(regenerate * size[0] * size[1]))


def resize_known(
    shape: tuple[int, int], size: tuple[int, int], settings: ResizeDefaults, seed: int | None
) -> torch.Tensor | None:
    """The cells a resolution change of a ``shape`` grid to ``size`` keeps: the sub-lattice ("lattice") or all
    but the cells drawn from ``seed`` ("reencode"; None when the seed is not known yet)."""
    if settings.strategy == "lattice":
        return lattice_known(shape, *size)
    return None if seed is None else regenerated_known(size, settings.regenerate, seed)


# -- outpaint ----------------------------------------------------------------------------------
def _fill(
    pipe: Pipeline,
    label: int | str,
    grid: torch.Tensor,
    known: torch.Tensor,
    options: SamplingOptions,
    seed: int,
    decoding: str,
    window: tuple[int, int] | None,
    callback: StepCallback | None,
) -> tuple[CanvasOutput, str | None]:
    """Decode the unknown cells of ``grid`` (``known``: the cells kept) as class ``label`` through the one canvas
    decode; the output and the note of :func:`fit_steps` (steps capped at one per unknown cell)."""
    options, note = fit_steps(options, int((~known).sum()))
    context = Context(grid.clamp(min=0), known)
    out = generate_canvas(
        pipe,
        [pipe.label_of(label)],
        options,
        seed=seed,
        grid=tuple(grid.shape),
        context=context,
        decoding=decoding,
        window=window,
        callback=callback,
    )
    return out, note


def outpaint(
    pipe: Pipeline,
    image: ImageSource,
    label: int | str,
    options: SamplingOptions | None = None,
    *,
    left: int = 0,
    right: int = 0,
    top: int = 0,
    bottom: int = 0,
    seed: int | None = None,
    max_cells: int = MAX_CELLS,
    decoding: str | None = None,
    window: Any = None,
    callback: StepCallback | None = None,
    **overrides: Any,
) -> TaskResult:
    """Extend ``image`` by whole token cells on any side; the new cells are decoded with
    the original tokens as context.

    decoding: "whole" (the larger grid in one decode, RoPE built for that grid), "windowed" (in
    windows of a trained size, see :mod:`arpg.windows`) or None for the model's (``pipe.decodings``:
    :data:`DEFAULT_DECODING` unless its JSON names another);
    window: the windows' size (None: the model's trained sizes). options / overrides: as in :func:`inpaint`.
    """
    options, decoding = settled(pipe, "outpaint", options, overrides, decoding)
    sides = check_sides(left, right, top, bottom)
    img = prepare_image(image, pipe.factor, pipe.grid[0])
    return _extend(pipe, img, label, options, sides, seed, max_cells, callback, decoding, window)


def _extend(
    pipe: Pipeline,
    img: np.ndarray,
    label: int | str,
    options: SamplingOptions,
    sides: tuple[int, int, int, int],
    seed: int | None,
    max_cells: int,
    callback: StepCallback | None,
    decoding: str = "whole",
    window: Any = None,
) -> TaskResult:
    """:func:`outpaint` of an image already prepared: (H, W, 3) uint8, H and W multiples of the factor;
    ``options`` and ``decoding`` resolved (:func:`settled`), ``sides`` (left, right, top, bottom) checked."""
    f = pipe.factor
    extended_size((img.shape[0] // f, img.shape[1] // f), sides, max_cells)
    codes = pipe.encode(img[None])[0]
    grid, known = place(codes, *sides)
    if known.all():
        return unchanged(pipe, img, codes, seed, "nothing to extend: all sides are 0", options, decoding)
    out, note = _fill(pipe, label, grid, known, options, seed, decoding, window, callback)
    raw = out.images[0]
    final = masks.paste_into(raw, img, sides[2] * f, sides[0] * f)  # new cells in the original's colours
    return TaskResult(final, raw, out.tokens[0], known, out.trace, out.seed, note, out.used)


# -- panorama ----------------------------------------------------------------------------------
def panorama(
    pipe: Pipeline,
    image: ImageSource,
    label: int | str,
    options: SamplingOptions | None = None,
    *,
    times: int = 4,
    side: str = "right",
    seed: int | None = None,
    max_cells: int = MAX_CELLS,
    decoding: str | None = None,
    window: Any = None,
    callback: StepCallback | None = None,
    on_round: Callable[[TaskResult], None] | None = None,
    **overrides: Any,
) -> TaskResult:
    """Repeated outpainting: each round extends by half the native width, until the image is
    ``times`` as wide (or tall) as the input.  Every round conditions on the last columns only, as
    many as make the decoded grid a size the model was trained on (its config's ``trained_sizes``,
    see :func:`arpg.windows.pick_window`: on a bigger grid a model trained on 16x16 decodes noise).
    Round k uses seed ``seed + k``.

    decoding: "whole": each round re-encodes the last columns of the image so far (pixels) and decodes
    one grid; "windowed": the rounds continue the canvas's own tokens (nothing re-encoded), each round
    one window of a trained size (across the growing side too, in windows, when the image is wider than
    the trained grids), and the canvas is decoded to pixels once, after the last round; None: the
    model's (``pipe.decodings``). window: as in :func:`outpaint`. max_cells: the most cells of the
    finished panorama (see :func:`check_cells`). options / overrides: as in :func:`inpaint`.
    on_round: called after every round with the image so far (a TaskResult like the final one: the
    image so far, the round's grid's tokens, context and trace); a windowed round's image so far is
    put together from the rounds' own decodes, the last one is the final image. ``times=1`` returns
    the input, with a note.
    """
    options, decoding = settled(pipe, "panorama", options, overrides, decoding)
    times = check_panorama(times, side)
    img = prepare_image(image, pipe.factor, pipe.grid[0])
    panorama_size((img.shape[0] // pipe.factor, img.shape[1] // pipe.factor), times, side, max_cells)
    seed = check_seed(seed)
    if times == 1:  # no round
        note = "times is 1: the image is already that long"
        return unchanged(pipe, img, pipe.encode(img[None])[0], seed, note, options, decoding)
    rounds = _pixel_rounds if decoding == "whole" else _token_rounds
    return rounds(pipe, img, label, options, times, side, seed, callback, on_round, window)


def _rounds_of(pipe: Pipeline, shape: tuple[int, int], times: int, side: str, window: Any) -> list[tuple[int, int]]:
    """The (kept, new) cells of each round of a panorama of a ``shape`` (rows, cols) image on ``pipe``."""
    vertical = side in ("top", "bottom")
    along, across = (shape[0], shape[1]) if vertical else (shape[1], shape[0])
    trained = trained_extent(across, vertical, window, pipe.model.cfg)
    return panorama_rounds(along, times, max(1, pipe.grid[0] // 2), trained)


def _pixel_rounds(
    pipe: Pipeline,
    img: np.ndarray,
    label: int | str,
    options: SamplingOptions,
    times: int,
    side: str,
    seed: int,
    callback: StepCallback | None,
    on_round: Callable[[TaskResult], None] | None,
    window: Any,
) -> TaskResult:
    """A "whole" panorama's rounds: each one :func:`_extend` of the image's last columns (re-encoded)."""
    f, vertical = pipe.factor, side in ("top", "bottom")
    cur = img.transpose(1, 0, 2) if vertical else img  # work on the transposed image
    last, used = None, None
    for k, (keep, add) in enumerate(_rounds_of(pipe, (img.shape[0] // f, img.shape[1] // f), times, side, window)):
        part = cur[:, -keep * f :] if side in ("right", "bottom") else cur[:, : keep * f]
        win = part if not vertical else part.transpose(1, 0, 2)
        grow = tuple(add if s == side else 0 for s in SIDES)
        last = _extend(pipe, win, label, options, grow, seed + k, MAX_CELLS, callback, "whole", window)
        new = last.image if not vertical else last.image.transpose(1, 0, 2)
        if side in ("right", "bottom"):  # the whole window back: the seam band blended at its edge comes too
            cur = np.concatenate([cur[:, : cur.shape[1] - part.shape[1]], new], axis=1)
        else:
            cur = np.concatenate([new, cur[:, part.shape[1] :]], axis=1)
        used = _rounds_used(used, last.used)
        last = _canvas(cur, side, last, seed, used)
        if on_round is not None:
            on_round(last)
    return last


def _token_rounds(
    pipe: Pipeline,
    img: np.ndarray,
    label: int | str,
    options: SamplingOptions,
    times: int,
    side: str,
    seed: int,
    callback: StepCallback | None,
    on_round: Callable[[TaskResult], None] | None,
    window: Any,
) -> TaskResult:
    """A "windowed" panorama's rounds: each one decodes the new cells in a trained-size window of the
    canvas's tokens (its last cells along the growing side). Between rounds the image so far is the
    input with every round's new cells as that round decoded them; after the last round the whole
    canvas is decoded once, the input pasted back in its place (decoding the canvas every round made
    the rounds' cost grow with the canvas)."""
    f, label = pipe.factor, pipe.label_of(label)
    axis = 0 if side in ("top", "bottom") else 1  # the growing axis of the (rows, cols) tokens
    at_end = side in ("right", "bottom")
    codes = pipe.encode(img[None])[0]
    rounds = _rounds_of(pipe, tuple(codes.shape), times, side, window)
    image, last, used = img, None, None
    for k, (keep, add) in enumerate(rounds):
        part = codes.narrow(axis, codes.shape[axis] - keep if at_end else 0, keep)
        grid, known = place(part, *(add if s == side else 0 for s in SIDES))
        opts, note = fit_steps(options, int((~known).sum()))
        out = generate_canvas(
            pipe,
            [label],
            opts,
            seed=seed + k,
            grid=tuple(grid.shape),
            context=Context(grid.clamp(min=0), known),
            decoding="windowed",
            window=window,
            callback=callback,
        )
        used = _rounds_used(used, out.used)
        start = keep if at_end else 0
        codes = _grow(codes, out.tokens[0].narrow(axis, start, add), axis, at_end)
        image = _grow(image, np.take(out.images[0], range(start * f, (start + add) * f), axis), axis, at_end)
        if k == len(rounds) - 1:
            grown = (codes.shape[axis] - img.shape[axis] // f) * f
            offset = {"top": (grown, 0), "left": (0, grown)}.get(side, (0, 0))
            image = masks.paste_into(pipe.decode(codes[None])[0], img, *offset)
        last = TaskResult(image, out.images[0], out.tokens[0], known, out.trace, seed, note, used)
        if on_round is not None:
            on_round(last)
    return last


def _grow(a: Any, new: Any, axis: int, at_end: bool) -> Any:
    """Tokens or pixels ``a`` with ``new`` put on at the end (or the start) of ``axis``."""
    if isinstance(a, torch.Tensor):
        return torch.cat([a, new] if at_end else [new, a], dim=axis)
    return np.concatenate([a, new] if at_end else [new, a], axis=axis)


def _canvas(cur: np.ndarray, side: str, last: TaskResult, seed: int, used: Used) -> TaskResult:
    """A panorama's image so far (``cur``, transposed for top/bottom) with its last round's decode and
    what the rounds so far used."""
    img = cur.transpose(1, 0, 2) if side in ("top", "bottom") else cur
    return TaskResult(np.ascontiguousarray(img), last.raw, last.tokens, last.known, last.trace, seed, last.note, used)


def _rounds_used(so_far: Used | None, now: Used) -> Used:
    """What a panorama's rounds used, after one more round that used ``now``: the most steps a round was
    asked for and, windowed, the largest window and the windows of every round (each round one window of
    the canvas, or several when its grid is bigger than a trained size)."""
    if so_far is None:
        return now
    window = (
        None if now.window is None else (max(so_far.window[0], now.window[0]), max(so_far.window[1], now.window[1]))
    )
    windows = None if now.windows is None else so_far.windows + now.windows
    return replace(so_far, steps=max(so_far.steps, now.steps), window=window, windows=windows)


# -- resolution change -------------------------------------------------------------------------
def resize_settings(
    pipe: Pipeline, scale: float | None = None, strategy: str | None = None, regenerate: float | None = None
) -> ResizeDefaults:
    """The resolution change a call asks for, the model's (``pipe.resize_defaults``, from its JSON) where it
    names none: the one place the UI, the API, the command line and :func:`resize` take them from.
    ``ValueError`` naming a setting out of range."""
    defaults = getattr(pipe, "resize_defaults", DEFAULT_RESIZE)
    return defaults.replace(scale=scale, strategy=strategy, regenerate=regenerate)


def resize(
    pipe: Pipeline,
    image: ImageSource,
    label: int | str,
    options: SamplingOptions | None = None,
    *,
    scale: float | None = None,
    strategy: str | None = None,
    regenerate: float | None = None,
    seed: int | None = None,
    max_cells: int = MAX_CELLS,
    decoding: str | None = None,
    window: Any = None,
    callback: StepCallback | None = None,
    **overrides: Any,
) -> TaskResult:
    """Resolution change: a (r, c)-token image to round(scale * r) x round(scale * c) tokens.

    strategy "lattice": the original tokens on a sub-lattice of the bigger grid, the rest
    generated.  "reencode": the image upsampled (bicubic), re-encoded on the big grid, and
    a random ``regenerate`` fraction of the cells decoded again (the rest kept).  scale, strategy,
    regenerate: None for the model's (:func:`resize_settings`).
    decoding / window: as in :func:`outpaint`. options / overrides: as in :func:`inpaint`.
    """
    options, decoding = settled(pipe, "resize", options, overrides, decoding)
    settings = resize_settings(pipe, scale, strategy, regenerate)
    f = pipe.factor
    img = prepare_image(image, f, pipe.grid[0])
    size = resize_size((img.shape[0] // f, img.shape[1] // f), settings.scale, max_cells)
    seed = check_seed(seed)
    grid, known = _resize_context(pipe, img, size, settings, seed)
    if known.all():  # the lattice on a grid of the image's own size: the image's tokens
        note = "the grid does not grow at this scale: nothing to generate"
        return unchanged(pipe, img, grid, seed, note, options, decoding)
    out, note = _fill(pipe, label, grid, known, options, seed, decoding, window, callback)
    return TaskResult(out.images[0], out.images[0], out.tokens[0], known, out.trace, out.seed, note, out.used)


def _resize_context(
    pipe: Pipeline, img: np.ndarray, size: tuple[int, int], settings: ResizeDefaults, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A resolution change's context on the ``size`` (R, C) grid: (tokens, known), as :func:`resize` says."""
    R, C = size
    if settings.strategy == "lattice":
        return lattice_context(pipe.encode(img[None])[0], R, C)
    f = pipe.factor
    big = np.asarray(Image.fromarray(img).resize((C * f, R * f), Image.BICUBIC))
    return pipe.encode(big[None])[0], regenerated_known(size, settings.regenerate, seed)
