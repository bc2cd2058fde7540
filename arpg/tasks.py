"""Zero-shot editing with ARPG: inpainting, class-conditional editing, outpainting and
resolution change.

ARPG has no positional parameters and its queries carry their target cell, so any set
of known tokens, anywhere on any grid, can be context: the known cells are prefilled
and only the others are decoded (see :func:`arpg.sampling.generate`).

The input policy (any image source, the decoded-size budget, reduced decoding, RGB conversion,
the native height, masks) is :mod:`arpg.images`; every task takes its inputs through it.
The shared pieces (the result, the step policy, grids of known tokens) and the mask tasks (:func:`inpaint`,
:func:`edit`) live in :mod:`arpg.task_core`; this module re-exports them and holds the canvas tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from . import masks
from .images import ImageSource, prepare_image
from .options import DEFAULT_RESIZE, RESIZE_STRATEGIES, ResizeDefaults, SamplingOptions, with_overrides
from .sampling import Context, StepCallback
from .task_core import (
    DEFAULT_DECODING,
    TaskResult,
    Used,
    _unchanged,
    cells_from_mask,
    decoding_for,
    edit,
    fit_steps,
    inpaint,
    lattice_context,
    place,
)
from .validation import check_seed
from .windows import CanvasOutput, generate_canvas, pick_window

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = [
    "DEFAULT_DECODING",
    "MAX_CELLS",
    "RESIZE_STRATEGIES",
    "SIDES",
    "TaskResult",
    "Used",
    "cells_from_mask",
    "check_cells",
    "decoding_for",
    "edit",
    "fit_steps",
    "inpaint",
    "lattice_context",
    "outpaint",
    "panorama",
    "place",
    "resize",
    "resize_settings",
]

SIDES = ("left", "right", "top", "bottom")  # where an outpaint or a panorama grows
#: The most token cells of a canvas task's result (outpaint, panorama, resize): what bounds its decode to
#: pixels and the memory it takes, whatever its decoding.
MAX_CELLS = 4096


def check_cells(what: str, rows: int, cols: int, max_cells: int = MAX_CELLS) -> None:
    """Refuse a canvas of ``rows`` x ``cols`` token cells over ``max_cells`` with ``ValueError``
    (``what`` names it: "the extended grid"); the one canvas limit of the tasks and of :mod:`arpg.cost`."""
    if rows * cols > max_cells:
        raise ValueError(f"{what} {rows}x{cols} has {rows * cols} cells; at most {max_cells}")


def _settled(
    pipe, task: str, options: SamplingOptions | None, overrides: dict[str, Any], decoding: str | None
) -> tuple[SamplingOptions, str]:
    """A canvas task's options and decoding as it runs them, resolved once at its entry: ``options`` (None:
    the model's, ``pipe.defaults``) with ``overrides`` on top, and ``decoding`` (None: the model's for
    ``task``, ``pipe.decodings``). The layers below take them as they are."""
    return with_overrides(options, overrides, pipe.defaults), decoding_for(task, decoding, pipe.decodings)


# -- canvas tasks ----------------------------------------------------------------------------
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
    pipe,
    image: ImageSource,
    label,
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
    options, decoding = _settled(pipe, "outpaint", options, overrides, decoding)
    ext = {"left": left, "right": right, "top": top, "bottom": bottom}
    for k, v in ext.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{k} must be a non-negative whole number of token cells, got {v!r}")
    img = prepare_image(image, pipe.factor, pipe.grid[0])
    return _extend(pipe, img, label, options, ext, seed, max_cells, callback, decoding, window)


def _extend(
    pipe,
    img: np.ndarray,
    label,
    options: SamplingOptions,
    ext: dict[str, int],
    seed: int | None,
    max_cells: int,
    callback: StepCallback | None,
    decoding: str = "whole",
    window: Any = None,
) -> TaskResult:
    """:func:`outpaint` of an image already prepared: (H, W, 3) uint8, H and W multiples of the factor;
    ``options`` and ``decoding`` resolved (:func:`_settled`)."""
    f = pipe.factor
    left, right, top, bottom = (int(ext.get(k, 0)) for k in ("left", "right", "top", "bottom"))
    r, c = img.shape[0] // f, img.shape[1] // f
    R, C = top + r + bottom, left + c + right
    check_cells("the extended grid", R, C, max_cells)
    codes = pipe.encode(img[None])[0]
    grid, known = place(codes, left, right, top, bottom)
    if known.all():
        return _unchanged(pipe, img, codes, seed, "nothing to extend: all sides are 0", options, decoding)
    out, note = _fill(pipe, label, grid, known, options, seed, decoding, window, callback)
    raw = out.images[0]
    final = masks.paste_into(raw, img, top * f, left * f)  # new cells in the original's colours
    return TaskResult(final, raw, out.tokens[0], known, out.trace, out.seed, note, out.used)


def panorama(
    pipe,
    image: ImageSource,
    label,
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
    options, decoding = _settled(pipe, "panorama", options, overrides, decoding)
    if side not in SIDES:
        raise ValueError(f"side must be left, right, top or bottom, got {side!r}")
    if isinstance(times, bool) or not isinstance(times, (int, np.integer)) or not 1 <= times <= 8:
        raise ValueError(f"times must be a whole number from 1 to 8, got {times!r}")
    img = prepare_image(image, pipe.factor, pipe.grid[0])
    rows, cols = img.shape[0] // pipe.factor, img.shape[1] // pipe.factor
    vertical = side in ("top", "bottom")
    check_cells("the panorama", rows * (times if vertical else 1), cols * (1 if vertical else times), max_cells)
    seed = check_seed(seed)
    rounds = _pixel_rounds if decoding == "whole" else _token_rounds
    last = rounds(pipe, img, label, options, int(times), side, seed, callback, on_round, window)
    if last is None:
        note = "times is 1: the image is already that long"
        return _unchanged(pipe, img, pipe.encode(img[None])[0], seed, note, options, decoding)
    return last


def _pixel_rounds(
    pipe,
    img: np.ndarray,
    label,
    options: SamplingOptions,
    times: int,
    side: str,
    seed: int,
    callback: StepCallback | None,
    on_round: Callable[[TaskResult], None] | None,
    window: Any,
) -> TaskResult | None:
    """A "whole" panorama's rounds: each one :func:`_extend` of the image's last columns (re-encoded)."""
    f, step_cells = pipe.factor, max(1, pipe.grid[0] // 2)
    cur = img.transpose(1, 0, 2) if side in ("top", "bottom") else img  # work on the transposed image
    target = cur.shape[1] * times
    trained = _trained_extent(pipe, cur.shape[0] // f, side in ("top", "bottom"), window)
    last, used, k = None, None, 0
    while cur.shape[1] < target:
        add = min(step_cells, (target - cur.shape[1]) // f)
        keep = max(1, trained - add) * f  # the window and the new cells: a trained-size grid
        part = cur[:, -keep:] if side in ("right", "bottom") else cur[:, :keep]
        win = part if side not in ("top", "bottom") else part.transpose(1, 0, 2)
        last = _extend(pipe, win, label, options, {side: add}, seed + k, MAX_CELLS, callback, "whole", window)
        new = last.image if side not in ("top", "bottom") else last.image.transpose(1, 0, 2)
        if side in ("right", "bottom"):  # the whole window back: the seam band blended at its edge comes too
            cur = np.concatenate([cur[:, : cur.shape[1] - part.shape[1]], new], axis=1)
        else:
            cur = np.concatenate([new, cur[:, part.shape[1] :]], axis=1)
        k += 1
        used = _rounds_used(used, last.used)
        last = _canvas(cur, side, last, seed, used)
        if on_round is not None:
            on_round(last)
    return last


def _token_rounds(
    pipe,
    img: np.ndarray,
    label,
    options: SamplingOptions,
    times: int,
    side: str,
    seed: int,
    callback: StepCallback | None,
    on_round: Callable[[TaskResult], None] | None,
    window: Any,
) -> TaskResult | None:
    """A "windowed" panorama's rounds: each one decodes the new cells in a trained-size window of the
    canvas's tokens (its last cells along the growing side). Between rounds the image so far is the
    input with every round's new cells as that round decoded them; after the last round the whole
    canvas is decoded once, the input pasted back in its place (decoding the canvas every round made
    the rounds' cost grow with the canvas)."""
    f, step_cells, label = pipe.factor, max(1, pipe.grid[0] // 2), pipe.label_of(label)
    axis = 0 if side in ("top", "bottom") else 1  # the growing axis of the (rows, cols) tokens
    at_end = side in ("right", "bottom")
    codes = pipe.encode(img[None])[0]
    target = codes.shape[axis] * times
    trained = _trained_extent(pipe, codes.shape[1 - axis], axis == 0, window)
    image, last, used, k = img, None, None, 0
    while codes.shape[axis] < target:
        add = min(step_cells, target - codes.shape[axis])
        keep = min(max(1, trained - add), codes.shape[axis])
        part = codes.narrow(axis, codes.shape[axis] - keep if at_end else 0, keep)
        grid, known = place(part, **{s: add if s == side else 0 for s in SIDES})
        opts, note = fit_steps(options, int((~known).sum()))
        context = Context(grid.clamp(min=0), known)
        out = generate_canvas(
            pipe,
            [label],
            opts,
            seed=seed + k,
            grid=tuple(grid.shape),
            context=context,
            decoding="windowed",
            window=window,
            callback=callback,
        )
        used = _rounds_used(used, out.used)
        start = keep if at_end else 0
        codes = _grow(codes, out.tokens[0].narrow(axis, start, add), axis, at_end)
        image = _grow(image, np.take(out.images[0], range(start * f, (start + add) * f), axis), axis, at_end)
        k += 1
        if codes.shape[axis] >= target:
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


def _trained_extent(pipe, across: int, vertical: bool, window: Any = None) -> int:
    """Cells along a panorama's growing side in the trained grid (or ``window``, see
    :func:`arpg.windows.pick_window`) that best fits ``across`` cells across it."""
    if vertical:
        return pick_window(4096, across, window, pipe.model.cfg)[0]
    return pick_window(across, 4096, window, pipe.model.cfg)[1]


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


def resize_settings(
    pipe, scale: float | None = None, strategy: str | None = None, regenerate: float | None = None
) -> ResizeDefaults:
    """The resolution change a call asks for, the model's (``pipe.resize_defaults``, from its JSON) where it
    names none: the one place the UI, the API, the command line and :func:`resize` take them from.
    ``ValueError`` naming a setting out of range."""
    defaults = getattr(pipe, "resize_defaults", DEFAULT_RESIZE)
    return defaults.replace(scale=scale, strategy=strategy, regenerate=regenerate)


def resize(
    pipe,
    image: ImageSource,
    label,
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
    options, decoding = _settled(pipe, "resize", options, overrides, decoding)
    settings = resize_settings(pipe, scale, strategy, regenerate)
    scale, strategy, regenerate = settings.scale, settings.strategy, settings.regenerate
    f = pipe.factor
    img = prepare_image(image, f, pipe.grid[0])
    r, c = img.shape[0] // f, img.shape[1] // f
    R, C = round(r * scale), round(c * scale)
    check_cells("the target grid", R, C, max_cells)
    seed = check_seed(seed)
    grid, known = _resize_context(pipe, img, (R, C), strategy, regenerate, seed)
    if known.all():
        note = "the grid does not grow at this scale: nothing to generate"
        return _unchanged(pipe, img, pipe.encode(img[None])[0], seed, note, options, decoding)
    out, note = _fill(pipe, label, grid, known, options, seed, decoding, window, callback)
    return TaskResult(out.images[0], out.images[0], out.tokens[0], known, out.trace, out.seed, note, out.used)


def _resize_context(
    pipe, img: np.ndarray, size: tuple[int, int], strategy: str, regenerate: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A resolution change's context on the ``size`` (R, C) grid: (tokens, known), as :func:`resize` says."""
    R, C = size
    if strategy == "lattice":
        return lattice_context(pipe.encode(img[None])[0], R, C)
    f = pipe.factor
    big = np.asarray(Image.fromarray(img).resize((C * f, R * f), Image.BICUBIC))
    grid = pipe.encode(big[None])[0]
    g = torch.Generator().manual_seed(seed)
    n_regen = max(1, round(regenerate * R * C))
    pick = torch.randperm(R * C, generator=g)[:n_regen]
    known = torch.ones(R * C, dtype=torch.bool)
    known[pick] = False
    return grid, known.view(R, C)
