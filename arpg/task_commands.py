"""The zero-shot tasks on the command line: ``arpg outpaint | panorama | resize | inpaint IMAGE ...``.

Each command reads an image (and, for inpaint, a mask: white, or opaque where it has alpha, is regenerated),
runs the task of :mod:`arpg.tasks` on the chosen model (``--model NAME | DIR`` or
``--weights``) with the sampling flags given, and writes the result as a PNG, one line saying
what was made.  The parsers are in :mod:`arpg.cli`; bad input ends with one ``error:`` line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image

from . import masks, tasks
from .commands import load_pipeline, sampling_options
from .judge import image_class
from .pipeline import Pipeline
from .task_core import DEFAULT_DECODING, TaskResult, Used
from .validation import check_int, check_seed

SIDES = ("left", "right", "top", "bottom")


def _outpaint(pipe: Pipeline, a: argparse.Namespace, **kw: Any) -> TaskResult:
    cells = {side: check_int(f"--{side}", getattr(a, side), 0, 64) for side in SIDES}
    if not any(cells.values()):
        raise ValueError("outpaint needs at least one of --left, --right, --top, --bottom (token cells)")
    return tasks.outpaint(pipe, a.image, pipe.label_of(a.class_), decoding=a.decoding, **cells, **kw)


def _panorama(pipe: Pipeline, a: argparse.Namespace, **kw: Any) -> TaskResult:
    return tasks.panorama(pipe, a.image, pipe.label_of(a.class_), times=a.times, side=a.side, decoding=a.decoding, **kw)


def _resize(pipe: Pipeline, a: argparse.Namespace, **kw: Any) -> TaskResult:
    return tasks.resize(
        pipe,
        a.image,
        pipe.label_of(a.class_),
        scale=a.scale,
        strategy=a.strategy,
        regenerate=a.regenerate,
        decoding=a.decoding,
        **kw,
    )


def inpaint_region(pipe: Pipeline, image: Any, label: int, region: str | None) -> tuple[str, str | None]:
    """How ``arpg inpaint`` grows the mask, and a note saying why (None: nothing to say).

    ``region`` when given; else what the Inpaint tab does (:func:`arpg.judge.image_class`,
    :func:`arpg.masks.is_edit`): a class other than the one the model's judge reads in the image is
    an edit, its mask grown to :data:`arpg.masks.EDIT_REGION`; the image's own class keeps it as painted."""
    shown = image_class(pipe, image)
    name = None if shown is None else pipe.class_names[shown]
    if region is not None:
        if region == "painted" and masks.is_edit(shown, label):
            return region, f"the judge reads '{name}' in the image; a mask kept as painted may leave it so"
        return region, None
    grown = f"--region {masks.EDIT_REGION}"
    if masks.is_edit(shown, label):
        return masks.EDIT_REGION, f"an edit of '{name}' (what the model's judge reads): the mask grew to {grown}"
    if shown is None:
        return "painted", f"no judge reads this model's images: the mask is kept as painted ({grown} edits)"
    return "painted", None


def _inpaint(pipe: Pipeline, a: argparse.Namespace, **kw: Any) -> TaskResult:
    if not Path(a.mask).is_file():
        raise ValueError(f"{a.mask}: no such mask file")
    label = pipe.label_of(a.class_)
    region, why = inpaint_region(pipe, a.image, label, a.region)
    res = tasks.inpaint(pipe, a.image, a.mask, label, region=region, blend=not a.no_blend, **kw)
    return replace(res, note="; ".join(n for n in (why, res.note) if n) or None)


def decoding_words(used: Used) -> str:
    """A canvas task's decoding as its result records it: ``windowed decoding (6 windows of 16x16 tokens)``,
    ``whole decoding``; the windows are named only when there were several."""
    if used.windows is None or used.windows < 2:
        return f"{used.decoding} decoding"
    return f"{used.decoding} decoding ({used.windows} windows of {used.window[1]}x{used.window[0]} tokens)"


RUNNERS: dict[str, Callable[..., TaskResult]] = {
    "outpaint": _outpaint,
    "panorama": _panorama,
    "resize": _resize,
    "inpaint": _inpaint,
}


def cmd_task(a: argparse.Namespace) -> int:
    """``outpaint`` / ``panorama`` / ``resize`` / ``inpaint``: one task on one image, written as a PNG."""
    upscale = check_int("--upscale", a.upscale, 1, 16)
    if not Path(a.image).is_file():
        raise ValueError(f"{a.image}: no such image file")
    pipe = load_pipeline(a, a.model)
    res = RUNNERS[a.command](pipe, a, options=sampling_options(a, pipe.defaults), seed=check_seed(a.seed))
    img = Image.fromarray(res.image)
    img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(a.out)
    label = pipe.label_of(a.class_)
    made = f"{res.image.shape[1]}x{res.image.shape[0]} px, class {label} '{pipe.class_names[label]}'"
    if a.command != "panorama":  # a panorama's result holds its last round only: its size says it all
        made += f", {int((~res.known).sum())} new tokens in {res.trace.forward_passes} steps"
    if a.command in DEFAULT_DECODING:
        made += f", {decoding_words(res.used)}"
    print(f"wrote {a.out} ({made}, seed {res.seed})" + (f"; note: {res.note}" if res.note else ""))
    return 0
