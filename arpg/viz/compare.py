"""Decoding strategies racing on one clock: raster and random order one token per step against
ARPG's parallel steps, the same class and seed, each decode timed step by step.

:func:`timed_decodes` runs the decodes and records when each step's callback fires;
:func:`race_frames` draws them on a shared :class:`~arpg.viz.timeline.Timeline`: every panel
shows the image decoded by that time (the cells decoded so far, cut from the final image:
a token never changes once decoded; the rest checkered), a small order map, its step and
forward-pass counters and its elapsed seconds, so the fastest panel completes first and the
others keep decoding. :func:`compare_decodes` does both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from ..options import SamplingOptions
from ..sampling import method_kwargs
from ..validation import check_seed
from .draw import BACKGROUND, TEXT_COLOUR, fit_text, text_width
from .frames import mask_unknown, order_map
from .timeline import Timeline, check_step_times, panel_states, plan_timeline

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..pipeline import Output, Pipeline

__all__ = [
    "METHODS",
    "PANEL_PX",
    "TimedDecode",
    "Comparison",
    "method_title",
    "seconds",
    "timed_decode",
    "timed_decodes",
    "panel_text",
    "race_frames",
    "compare_decodes",
    "timed_models",
    "compare_models",
    "RACE_MODELS",
]

METHODS = ("raster", "random1", "arpg")  # the panels, left to right
PANEL_PX = 256  # every decoded image is upscaled (nearest) to at least this many pixels on its long side
DONE_COLOUR = (122, 220, 140)
DIM_COLOUR = (150, 154, 166)
SHORT_NAMES = {"raster": "raster", "random1": "random 1/step", "arpg": "ARPG"}
#: The method of a decode by another model (:func:`timed_models`): its short name is the model's.
MODEL = "model"
#: How many models one race takes, fewest and most.
RACE_MODELS = (2, 4)


def seconds(x: float) -> str:
    """Seconds with three significant digits: ``"4.48 s"``, ``"0.372 s"``, ``"0.0123 s"``."""
    return f"{x:.3g} s"


def method_title(method: str, steps: int, n_cells: int) -> str:
    """The caption of a named strategy of :data:`arpg.sampling.METHODS`, e.g. ``"ARPG, 16 steps"``."""
    return {
        "arpg": f"ARPG, {steps} steps",
        "raster": f"ablation: ARPG weights in raster order, 1 token/step ({n_cells} steps)",
        "random1": f"random, 1 token/step ({n_cells} steps)",
    }[method]


@dataclass
class TimedDecode:
    """One decode of the race: its caption, the pipeline output and when each step finished."""

    method: str
    title: str
    output: Output
    step_times: np.ndarray  # (S,) seconds from the start of the generate call to each step's callback
    short: str = ""  # the name in the timings line (default: the method's, :data:`SHORT_NAMES`)

    @property
    def name(self) -> str:
        """Its name in the timings and passes lines."""
        return self.short or SHORT_NAMES.get(self.method, self.method)

    @property
    def seconds(self) -> float:
        """Wall-clock seconds of the whole decode (its last step)."""
        return float(self.step_times[-1])

    @property
    def steps(self) -> int:
        """Number of decoding steps."""
        return len(self.step_times)

    def passes_after(self, k: int) -> int:
        """Forward passes run once ``k`` steps are done."""
        return int(round(self.output.trace.forward_passes * k / self.steps))

    @property
    def step_of(self) -> np.ndarray:
        """``(rows, cols)`` step that decoded each cell (-1: context)."""
        s = self.output.trace.step_of.cpu().numpy()
        return s[0] if s.ndim == 3 else s


@dataclass
class Comparison:
    """What :func:`compare_decodes` returns: the timed decodes, their shared clock and the frames."""

    decodes: list[TimedDecode]
    timeline: Timeline
    frames: list[Image.Image]

    @property
    def outputs(self) -> list[Output]:
        """The pipeline outputs, one per decode."""
        return [d.output for d in self.decodes]

    def speedup(self, method: str = "arpg", over: str = "raster") -> float:
        """How many times faster ``method`` decoded than ``over`` (wall clock)."""
        by = {d.method: d.seconds for d in self.decodes}
        return by[over] / max(by[method], 1e-9)

    def timings(self) -> str:
        """``"decode times: raster 4.48 s, random 1/step 4.84 s, ARPG 0.372 s (ARPG 12.1x faster than raster)"``."""
        text = "decode times: " + ", ".join(f"{d.name} {seconds(d.seconds)}" for d in self.decodes)
        methods = {d.method for d in self.decodes}
        if {"arpg", "raster"} <= methods:
            text += f" (ARPG {self.speedup():.1f}x faster than raster)"
        return text

    def passes(self) -> str:
        """``"raster / random 1/step / ARPG = 256 / 256 / 16"``: the forward passes of each decode."""
        names = " / ".join(d.name for d in self.decodes)
        return f"{names} = " + " / ".join(str(d.output.trace.forward_passes) for d in self.decodes)

    def pace(self) -> str:
        """How the animation plays the clock: in real time or slowed by a constant factor."""
        slow = self.timeline.slow
        return "played in real time" if slow <= 1.0 else f"played {slow:.1f}x slower than real time"


# -- timed decodes ---------------------------------------------------------------------------------


def timed_decode(
    pipe: Pipeline, label: int, options: SamplingOptions, seed: int, callback: Callable | None = None
) -> tuple[Output, np.ndarray]:
    """One decode of ``label`` and the seconds from its start to each step's callback.

    ``callback(step, steps, tokens)`` is called after each step, after the time is taken.
    """
    times: list[float] = []
    t0 = time.perf_counter()

    def on_step(step: int, n_steps: int, tokens: Any) -> None:
        times.append(time.perf_counter() - t0)
        if callback is not None:
            callback(step, n_steps, tokens)

    out = pipe.generate([label], options, seed=seed, callback=on_step)
    return out, check_step_times(times)


def timed_decodes(
    pipe: Pipeline,
    label: int,
    options: SamplingOptions | None = None,
    *,
    seed: int | None = 0,
    methods: Sequence[str] = METHODS,
    callback: Callable | None = None,
    warm_up: bool = True,
) -> list[TimedDecode]:
    """The same class and seed decoded by each strategy of ``methods`` (:data:`arpg.sampling.METHODS`).

    Raster and random order decode one token per step, ARPG in ``options.steps`` steps; every
    other option is shared. ``warm_up`` first runs a short untimed decode, so that the first
    timed strategy does not pay for the model's first call. ``callback`` sees every timed step.
    """
    opts = pipe.defaults if options is None else options
    seed = check_seed(seed)
    n_cells = pipe.grid[0] * pipe.grid[1]
    if warm_up:
        pipe.generate([label], opts.replace(steps=min(2, n_cells), order="random"), seed=seed)
    decodes = []
    for m in methods:
        out, times = timed_decode(pipe, label, opts.replace(**method_kwargs(m, opts.steps, n_cells)), seed, callback)
        decodes.append(TimedDecode(m, method_title(m, opts.steps, n_cells), out, times))
    return decodes


def timed_models(
    pipes: Sequence[Pipeline],
    label: int | str,
    *,
    steps: dict[str, int] | None = None,
    seed: int | None = 0,
    callback: Callable | None = None,
) -> list[TimedDecode]:
    """The same class (an id, or a name every model knows) and seed decoded by each model at its own
    sampling defaults (``steps``: other step counts, by model name), each warmed up first, then timed."""
    seed = check_seed(seed)
    decodes = []
    for pipe in pipes:
        opts = pipe.defaults.replace(steps=(steps or {}).get(pipe.name))
        cls = pipe.label_of(label)
        pipe.generate([cls], opts.replace(steps=min(2, opts.steps)), seed=seed)  # the model's first call, untimed
        out, times = timed_decode(pipe, cls, opts, seed, callback)
        title = f"{pipe.name} ({type(pipe.model).__name__}), {len(times)} steps"
        decodes.append(TimedDecode(MODEL, title, out, times, short=pipe.name))
    return decodes


def compare_models(
    pipes: Sequence[Pipeline],
    label: int | str,
    *,
    steps: dict[str, int] | None = None,
    seed: int | None = 0,
    fps: float = 8.0,
    slow: float | None = None,
    max_frames: int = 72,
) -> Comparison:
    """Models (e.g. ARPG against a model trained for raster order) racing on one clock, each at its own
    settings: :func:`timed_models` drawn like :func:`compare_decodes`."""
    if not RACE_MODELS[0] <= len(pipes) <= RACE_MODELS[1]:
        raise ValueError(f"a race takes {RACE_MODELS[0]} to {RACE_MODELS[1]} models, got {len(pipes)}")
    decodes = timed_models(pipes, label, steps=steps, seed=seed)
    timeline = plan_timeline([d.seconds for d in decodes], fps=fps, slow=slow, max_frames=max_frames)
    return Comparison(decodes, timeline, race_frames(decodes, timeline))


# -- drawing ---------------------------------------------------------------------------------------


class _Layout(NamedTuple):
    """Sizes (px) of a race frame: one column per decode, a line of text under them."""

    scale: int
    img_w: int
    img_h: int
    map_h: int
    col_w: int
    pad: int = 8
    gap: int = 12
    title_h: int = 26
    info_h: int = 96
    foot_h: int = 22

    @classmethod
    def of(cls, image_hw: tuple[int, int]) -> _Layout:
        """The layout for decoded images of ``image_hw`` pixels."""
        h, w = image_hw
        scale = max(1, -(-PANEL_PX // max(h, w)))
        return cls(scale, w * scale, h * scale, map_h=84, col_w=max(w * scale, PANEL_PX))

    def size(self, n: int) -> tuple[int, int]:
        """(width, height) of a frame of ``n`` columns."""
        return (
            2 * self.pad + n * self.col_w + (n - 1) * self.gap,
            2 * self.pad + self.title_h + self.img_h + self.info_h + self.foot_h,
        )

    def x(self, j: int) -> int:
        """Left edge of column ``j``."""
        return self.pad + j * (self.col_w + self.gap)

    @property
    def info_y(self) -> int:
        """Top of the counters block."""
        return self.pad + self.title_h + self.img_h + 8


def _base(lay: _Layout, decodes: Sequence[TimedDecode], slow: float) -> Image.Image:
    """The parts of a frame that never change: background, titles and the clock's footnote."""
    canvas = Image.new("RGB", lay.size(len(decodes)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for j, d in enumerate(decodes):
        text, face = fit_text(d.title, lay.col_w, 16)
        draw.text((lay.x(j) + (lay.col_w - text_width(text, face)) // 2, lay.pad), text, fill=TEXT_COLOUR, font=face)
    pace = "real time" if slow <= 1.0 else f"slowed {slow:.1f}x (1 s of decoding = {slow:.1f} s on screen)"
    shared = (
        "same seed, each model's own settings"
        if any(d.method == MODEL for d in decodes)
        else "same class, seed and model"
    )
    note = f"one clock for all panels, {pace} · {shared}"
    text, face = fit_text(note, canvas.width - 2 * lay.pad, 13)
    draw.text((lay.pad, canvas.height - lay.pad - lay.foot_h + 6), text, fill=DIM_COLOUR, font=face)
    return canvas


class _Pictures:
    """Per decode and number of steps done: the masked image and the order map (drawn once each)."""

    def __init__(self, lay: _Layout, decodes: Sequence[TimedDecode]) -> None:
        self.lay, self.decodes = lay, decodes
        self.big = [np.repeat(np.repeat(d.output.images[0], lay.scale, 0), lay.scale, 1) for d in decodes]
        self.empty = [mask_unknown(b, np.zeros(d.step_of.shape, bool)) for b, d in zip(self.big, decodes)]
        self.cache: dict[tuple[int, int], tuple[Image.Image, Image.Image]] = {}

    def get(self, j: int, k: int) -> tuple[Image.Image, Image.Image]:
        """(image, order map) of decode ``j`` after ``k`` steps: :func:`mask_unknown` of the final
        image with the cells decoded by then, from the all-unknown picture drawn once."""
        if (j, k) not in self.cache:
            step_of, big = self.decodes[j].step_of, self.big[j]
            rows, cols = step_of.shape
            known = np.repeat(np.repeat(step_of < k, big.shape[0] // rows, 0), big.shape[1] // cols, 1)
            img = Image.fromarray(np.where(known[..., None], big, self.empty[j]))
            self.cache[j, k] = img, Image.fromarray(order_map(step_of, k, self.lay.map_h))
        return self.cache[j, k]


def panel_text(d: TimedDecode, k: int, t: float) -> tuple[str, str, str]:
    """The counters of decode ``d`` after ``k`` steps at time ``t``: ``("step 72/256",
    "forward passes: 72", "1.61 s")``; the clock reads ``"done in 4.48 s"`` once complete."""
    clock = f"done in {seconds(d.seconds)}" if k >= d.steps else seconds(t)
    return f"step {k}/{d.steps}", f"forward passes: {d.passes_after(k)}", clock


def _draw_counters(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], width: int, d: TimedDecode, k: int, t: float
) -> None:
    """Draw :func:`panel_text` with its top-left corner at ``xy``, within ``width`` pixels."""
    (x, y), lines = xy, panel_text(d, k, t)
    colours = (TEXT_COLOUR, TEXT_COLOUR, DONE_COLOUR if k >= d.steps else TEXT_COLOUR)  # the clock turns green
    for (size, dy), line, colour in zip(((15, 0), (15, 22), (22, 46)), lines, colours):
        text, face = fit_text(line, width, size)
        draw.text((x, y + dy), text, fill=colour, font=face)


def race_frames(decodes: Sequence[TimedDecode], timeline: Timeline) -> list[Image.Image]:
    """One frame per instant of ``timeline``: the decodes side by side, as far as each had got.

    Column ``j`` at frame ``i`` shows decode ``j`` after the steps done ``timeline.times[i]``
    seconds into it (:func:`arpg.viz.timeline.steps_done`), its counters ``step k/S``, the
    forward passes so far and the elapsed seconds (``done in ... s`` once complete).

    Returns:
        ``len(timeline)`` RGB PIL images of identical size.
    """
    if not decodes:
        raise ValueError("no decodes to draw")
    lay = _Layout.of(tuple(decodes[0].output.images[0].shape[:2]))
    if any(tuple(d.output.images[0].shape[:2]) != (lay.img_h // lay.scale, lay.img_w // lay.scale) for d in decodes):
        raise ValueError("all decodes must have images of the same size")
    base = _base(lay, decodes, timeline.slow)
    pictures = _Pictures(lay, decodes)
    states = panel_states(timeline, [d.step_times for d in decodes])
    frames = []
    for i, t in enumerate(timeline.times):
        canvas = base.copy()
        draw = ImageDraw.Draw(canvas)
        for j, d in enumerate(decodes):
            k = int(states[i, j])
            img, omap = pictures.get(j, k)
            x = lay.x(j)
            canvas.paste(img, (x + (lay.col_w - lay.img_w) // 2, lay.pad + lay.title_h))
            canvas.paste(omap, (x, lay.info_y))
            _draw_counters(draw, (x + omap.width + 12, lay.info_y), lay.col_w - omap.width - 12, d, k, float(t))
        frames.append(canvas)
    return frames


def compare_decodes(
    pipe: Pipeline,
    label: int,
    options: SamplingOptions | None = None,
    *,
    seed: int | None = 0,
    methods: Sequence[str] = METHODS,
    callback: Callable | None = None,
    fps: float = 8.0,
    slow: float | None = None,
    max_frames: int = 72,
    **overrides: Any,
) -> Comparison:
    """Decode ``label`` with each strategy, timed, and draw the race on one shared clock.

    ``options`` (``None``: the pipeline's defaults) with ``overrides`` (its field names) are
    shared by the strategies. ``fps``, ``slow`` and ``max_frames`` are those of
    :func:`arpg.viz.timeline.plan_timeline` (``slow=None``: the fastest decode lasts at least
    1 s on screen). Save the frames with ``save_animation(frames, path, fps=timeline.fps)``.
    """
    opts = (pipe.defaults if options is None else options).replace(**overrides)
    decodes = timed_decodes(pipe, label, opts, seed=seed, methods=methods, callback=callback)
    timeline = plan_timeline([d.seconds for d in decodes], fps=fps, slow=slow, max_frames=max_frames)
    return Comparison(decodes, timeline, race_frames(decodes, timeline))
