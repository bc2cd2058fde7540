"""Small pieces shared by the tabs: checked inputs, sampling-option widgets, error
translation, streaming of partial decodes, display helpers and temporary files."""
from __future__ import annotations

import atexit
import functools
import inspect
import logging
import math
import os
import queue
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import gradio as gr
import numpy as np
from PIL import Image

log = logging.getLogger("demo")

DISPLAY_PX = 256  # images are shown at least this tall (nearest-neighbour upscaling)
MAX_DISPLAY_SIDE = 4096
MAX_IMAGES = 8
PARTIAL_EVERY_S = 0.2  # at most this often a partial image is sent while decoding


def refuse(message: str) -> gr.Error:
    """A gr.Error for bad input: shown on the page, not logged with a traceback."""
    return gr.Error(message, print_exception=False)


# -- checked inputs ------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def knob(minimum: float, maximum: float, value: float | None = None, **kwargs: Any) -> gr.Slider:
    """A slider that refuses out-of-range, NaN and non-numeric values (sent through the API)
    with a message naming the setting, instead of a bare error."""
    slider = gr.Slider(minimum, maximum, value=value, **kwargs)

    def preprocess(payload: Any) -> float | int:
        return checked_number(payload, slider.label or "value", slider.minimum, slider.maximum,
                              slider.precision == 0)

    slider.preprocess = preprocess  # type: ignore[method-assign]  # (a subclass would write a .pyi)
    return slider


def seed_box(**kwargs: Any) -> gr.Number:
    """The seed field: empty (a fresh seed is drawn) or a whole number in 0 .. 2**31-1.

    It has no bounds or rounding of its own (gradio would reject NaN with a bare error and
    re-creates output components without instance overrides): :func:`pick_seed` checks it.
    """
    return gr.Number(**kwargs)


def checked_number(value: Any, name: str, lo: float | None, hi: float | None, integer: bool) -> float | int:
    """``value`` as a number inside [lo, hi]; gr.Error naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise refuse(f"{name} must be a number, got {value!r}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise refuse(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise refuse(f"{name} must be a finite number, got {value!r}.")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise refuse(f"{name} must be between {_fmt(lo)} and {_fmt(hi)}, got {_fmt(v)}.")
    if integer:
        if not v.is_integer():
            raise refuse(f"{name} must be a whole number, got {_fmt(v)}.")
        return int(v)
    return v


# -- errors ---------------------------------------------------------------------------------------
def _sentence(text: str) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ""
    if not text:
        return "Something went wrong."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def to_error(exc: BaseException) -> gr.Error:
    """A plain-words gr.Error for any exception (no traceback reaches the page)."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, (ValueError, KeyError, IndexError)) or type(exc).__name__ in (
            "CheckpointError", "WeightsUnavailable"):
        return refuse(_sentence(str(exc).strip("'\"")))
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return refuse("Out of memory: try fewer images, a smaller batch or a smaller scale.")
    log.exception("unexpected error in a callback", exc_info=exc)
    return refuse(f"Something went wrong ({type(exc).__name__}: {_sentence(str(exc))}) "
                    "The app is still running; try other settings.")


def guard(fn: Callable) -> Callable:
    """Turn every exception of a callback (plain or generator) into a gr.Error."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise to_error(exc) from None
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise to_error(exc) from None
    return wrapper


def on_gpu(fn: Callable) -> Callable:
    """``spaces.GPU`` (Hugging Face ZeroGPU) when the ``spaces`` package is importable."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return fn
    return spaces.GPU(fn)


def action(fn: Callable) -> Callable:
    """A callback as registered with gradio: errors in plain words, on the GPU when available."""
    return on_gpu(guard(fn))


# -- widgets ---------------------------------------------------------------------------------------
def class_dropdown(pipe: Any, label: str = "Class", value: str | None = None, info: str | None = None) -> gr.Dropdown:
    """A searchable class picker with the readable class names."""
    return gr.Dropdown(choices=list(pipe.class_names), value=value or pipe.class_names[0], label=label,
                       info=info, filterable=True)


def seed_controls(value: int = 0) -> tuple[gr.Number, gr.Checkbox]:
    """Seed field and "randomize" checkbox (the seed actually used is written back)."""
    with gr.Row(equal_height=True):
        seed = seed_box(value=value, label="Seed", scale=2, min_width=160,
                        info="the seed used is written back, so a result can be reproduced")
        randomize = gr.Checkbox(value=True, label="Randomize seed", scale=1, min_width=150)
    return seed, randomize


def pick_seed(seed: Any, randomize: bool) -> int:
    """A fresh random seed when ``randomize`` (or no seed given), else ``seed`` (checked)."""
    from arpg.pipeline import MAX_SEED, Pipeline

    if randomize or seed is None or seed == "":
        return Pipeline.resolve_seed(None)
    return int(checked_number(seed, "Seed", 0, MAX_SEED, True))


#: Above this many parameters a model counts as large: 16 default steps on a CPU instead of 32.
LARGE_MODEL_PARAMS = 50_000_000


def default_steps(pipe: Any, cells: int | None = None) -> int:
    """32 steps (the shipped model's measured default), 16 for a large model on a CPU;
    never more than the number of cells."""
    cells = cells or pipe.grid[0] * pipe.grid[1]
    large = pipe.num_params > LARGE_MODEL_PARAMS
    return min(cells, 16 if large and pipe.device.type == "cpu" else 32)


@dataclass
class SamplingControls:
    """The decoding settings of one tab (steps visible, the rest in a closed accordion)."""

    steps: gr.Slider
    schedule: gr.Dropdown
    cfg_scale: gr.Slider
    cfg_schedule: gr.Dropdown
    temperature: gr.Slider
    top_k: gr.Slider
    top_p: gr.Slider
    order: gr.Dropdown

    @property
    def inputs(self) -> list[gr.components.Component]:
        """In the order :func:`sampling_options` takes them."""
        return [self.steps, self.schedule, self.cfg_scale, self.cfg_schedule, self.temperature, self.top_k,
                self.top_p, self.order]


def order_choices() -> list[str]:
    """Decoding orders the sampler accepts (the fixed orders and "confidence")."""
    from arpg.sampling import SAMPLER_ORDERS

    return list(SAMPLER_ORDERS)


def sampling_controls(pipe: Any, steps: int | None = None, max_steps: int | None = None) -> SamplingControls:
    """Build the steps slider and the "Advanced" accordion of sampling options."""
    from arpg.schedules import CFG_SCHEDULES, TOKEN_SCHEDULES

    cells = pipe.grid[0] * pipe.grid[1]
    max_steps = max_steps or cells
    steps_w = knob(1, max_steps, value=min(steps or default_steps(pipe), max_steps), step=1, precision=0,
                   label="Steps", info=f"forward passes, each decoding several tokens at once (an image has {cells})")
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            schedule = gr.Dropdown(list(TOKEN_SCHEDULES), value="arccos", label="Step schedule",
                                   info="how many tokens each step decodes")
            order = gr.Dropdown(order_choices(), value="random", label="Order",
                                info="random is what ARPG is trained for")
        with gr.Row():
            cfg = knob(1.0, 10.0, value=float(pipe.default_cfg), step=0.25, label="Guidance scale",
                       info="classifier-free guidance; 1 = none")
            cfg_schedule = gr.Dropdown(list(CFG_SCHEDULES), value=pipe.default_cfg_schedule,
                                       label="Guidance schedule",
                                       info="linear: guidance grows over the steps; constant: full from the start")
        with gr.Row():
            temperature = knob(0.05, 3.0, value=1.0, step=0.05, label="Temperature")
            top_k = knob(0, 4096, value=0, step=1, precision=0, label="Top-k", info="0 = off")
            top_p = knob(0.05, 1.0, value=1.0, step=0.01, label="Top-p", info="1 = off")
    return SamplingControls(steps_w, schedule, cfg, cfg_schedule, temperature, top_k, top_p, order)


def sampling_options(steps: int, schedule: str, cfg_scale: float, cfg_schedule: str, temperature: float,
                     top_k: int, top_p: float, order: str = "random") -> dict[str, Any]:
    """The pipeline's keyword arguments from the values of :class:`SamplingControls`."""
    return dict(steps=int(steps), schedule=schedule, cfg_scale=float(cfg_scale), cfg_schedule=cfg_schedule,
                temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), order=order)


def fit_steps(call: Callable[[int], Any], steps: int) -> tuple[Any, str | None]:
    """Run ``call(steps)``; the task itself caps ``steps`` at the number of cells left to
    decode (:func:`arpg.tasks.fit_steps`) and says so in its note, returned beside it."""
    res = call(steps)
    return res, getattr(res, "note", None)


# -- streaming ----------------------------------------------------------------------------------
class _Stopped(Exception):
    """Raised inside the decode loop when the page no longer waits for it."""


@dataclass
class StepEvent:
    """A partial decode (``result`` None) or the final result."""

    step: int = 0
    n_steps: int = 0
    tokens: Any = None
    result: Any = None


def stream_steps(work: Callable[[Callable], Any], progress: Any = None, desc: str = "Decoding",
                 every_s: float = PARTIAL_EVERY_S) -> Iterator[StepEvent]:
    """Run ``work(callback)`` in a thread and yield its partial decodes, then its result.

    ``callback(step, n_steps, tokens)`` is the pipeline's step callback.  Partial decodes
    come at most every ``every_s`` seconds (the newest one; older ones are dropped) and
    drive ``progress``.  Errors of ``work`` are raised here; closing the iterator stops it.
    """
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def callback(step: int, n_steps: int, tokens: Any) -> None:
        if stop.is_set():
            raise _Stopped()
        events.put(("step", StepEvent(step, n_steps, tokens.clone())))

    def run() -> None:
        try:
            events.put(("done", work(callback)))
        except BaseException as exc:  # handed to the consumer
            events.put(("error", exc))

    threading.Thread(target=run, daemon=True, name="decode").start()
    last_sent = 0.0
    try:
        while True:
            kind, value = events.get()
            latest = None
            while kind == "step":  # keep only the newest partial decode
                latest = value
                try:
                    kind, value = events.get(timeout=max(0.0, every_s - (time.monotonic() - last_sent)))
                except queue.Empty:
                    break
            if latest is not None:
                if progress is not None:
                    progress((latest.step + 1, latest.n_steps), desc=desc)
                last_sent = time.monotonic()
                yield latest
            if kind == "error":
                raise value
            if kind == "done":
                yield StepEvent(result=value)
                return
    finally:
        stop.set()


# -- display ----------------------------------------------------------------------------------------
def upscale(image: Any, px: int = DISPLAY_PX, factor: int | None = None) -> np.ndarray:
    """Nearest-neighbour upscaling by a whole factor (``factor``, or the smallest one that
    makes the image at least ``px`` tall)."""
    arr = np.asarray(image)
    h, w = arr.shape[:2]
    f = factor or max(1, math.ceil(px / max(h, 1)))
    f = max(1, min(f, MAX_DISPLAY_SIDE // max(h, w, 1)))
    if f == 1:
        return arr
    return np.ascontiguousarray(np.repeat(np.repeat(arr, f, axis=0), f, axis=1))


def partial_images(pipe: Any, tokens: Any) -> list[np.ndarray]:
    """Decoded images of partial tokens (B, rows, cols) with the unknown cells checkered."""
    from demo.render import mask_unknown

    imgs = pipe.decode(tokens)
    known = (tokens >= 0).cpu().numpy()
    return [mask_unknown(im, k) for im, k in zip(imgs, known)]


def editor_parts(value: Any) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, painted mask (H, W) bool) from a gr.ImageEditor value."""
    if value is None or not isinstance(value, dict) or value.get("background") is None:
        raise refuse("Upload an image first (or press \"Use last generated image\"), "
                       "then paint the region to regenerate.")
    from arpg.tasks import to_rgb

    bg = value["background"]
    image = np.asarray(to_rgb(bg if isinstance(bg, Image.Image) else np.asarray(bg)))
    h, w = image.shape[:2]
    mask = np.zeros((h, w), dtype=bool)
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        arr = np.asarray(layer)
        if arr.ndim == 3 and arr.shape[-1] == 4:
            painted = arr[..., 3] > 0
        elif arr.ndim == 3:
            painted = arr.max(-1) > 0
        else:
            painted = arr > 0
        if painted.shape != (h, w):
            painted = np.asarray(Image.fromarray(painted.astype(np.uint8) * 255).resize((w, h), Image.NEAREST)) > 127
        mask |= painted
    return image, mask


def image_input(value: Any, what: str = "an image") -> np.ndarray:
    """An uploaded image as an RGB array; a plain-words gr.Error when there is none."""
    if value is None:
        raise refuse(f"Upload {what} first (or press \"Use last generated image\").")
    from arpg.tasks import to_rgb

    return np.asarray(to_rgb(value if isinstance(value, Image.Image) else np.asarray(value)))


# -- files ---------------------------------------------------------------------------------------------
_OUT_DIR: Path | None = None


def out_path(stem: str, suffix: str, keep_s: float = 600.0) -> Path:
    """A fresh file path for a download. Gradio copies outputs into its own cache, so ours
    are removed after ``keep_s`` seconds and the folder when the process exits."""
    global _OUT_DIR
    if _OUT_DIR is None:
        _OUT_DIR = Path(tempfile.mkdtemp(prefix="arpg-sandbox-"))
        atexit.register(shutil.rmtree, _OUT_DIR, ignore_errors=True)
    now = time.time()
    for old in _OUT_DIR.iterdir():
        try:
            if now - old.stat().st_mtime > keep_s:
                old.unlink()
        except OSError:
            pass
    fd, name = tempfile.mkstemp(prefix=f"{stem}-", suffix=suffix, dir=_OUT_DIR)
    os.close(fd)
    return Path(name)


def summary(*parts: str | None) -> str:
    """Join the non-empty parts of a one-line result summary."""
    return " · ".join(p for p in parts if p)
