"""Images in and out of the tabs: uploaded images and painted masks as arrays, the last
generated image handed between tabs, outputs at their native pixels (the page shows them
enlarged and crisp: ``elem_classes=["pixelated"]``), and a one-line warning when an input is
far from what the model knows (:mod:`arpg.ood`)."""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from arpg import ood
from arpg.images import to_rgb
from arpg.pipeline import Pipeline
from arpg.viz.frames import mask_unknown

from .errors import refuse

DISPLAY_PX = 256  # images are shown at least this tall (nearest-neighbour upscaling)
#: How the page shows images: outputs (native pixels) enlarged to fill their box, crisp (the
#: ``pixelated`` class); the Generate gallery in two columns on a phone (a cell is >= 100 px wide,
#: so four in a row would not fit 390 px).  Best moved into ``demo.ui.CSS``; until then
#: :func:`page_style` adds it to the page.
CSS = """
#pictures-style { display: none; }
.pixelated .image-frame img { object-fit: contain; image-rendering: pixelated; }
@media (max-width: 480px) {
  #generate-gallery .grid-container { grid-template-columns: repeat(2, minmax(0, 1fr)) !important; }
}
"""
MAX_DISPLAY_SIDE = 4096
NO_IMAGE = "Upload an image first"


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


def first_upscaled(images: list[np.ndarray]) -> np.ndarray:
    """The first of ``images``, upscaled for display."""
    return upscale(images[0])


def page_style() -> gr.HTML:
    """:data:`CSS` as a style element of the page (built once, in the first tab)."""
    return gr.HTML(f"<style>{CSS}</style>", elem_id="pictures-style", container=False, padding=False)


def native(image: Any) -> np.ndarray:
    """An output image at its own pixels (H, W, 3) uint8: what the API returns; the page enlarges
    it (components with the ``pixelated`` class are drawn with nearest-neighbour scaling)."""
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def result_view(
    tab: str, intro: str, label: str = "Before · after (drag the bar)", height: int = 440
) -> tuple[gr.ImageSlider, gr.Markdown]:
    """A tab's result as a before/after slider (``#<tab>-result``): the input (or what it is compared with)
    and the result, both at native pixels, drawn enlarged and pixelated; and the one-line summary below it
    (``#<tab>-info``, showing ``intro`` until the first run). Its value (and the API's answer) is the pair
    (before, after) of :func:`before_after`."""
    result = gr.ImageSlider(
        label=label,
        type="numpy",
        format="png",
        interactive=False,
        height=height,
        max_height=height,
        elem_id=f"{tab}-result",
        elem_classes=["pixelated"],
    )
    return result, gr.Markdown(intro, label="summary", elem_id=f"{tab}-info")


def before_after(before: Any, after: Any) -> tuple[np.ndarray, np.ndarray]:
    """A slider's value: ``before`` at the size of ``after`` (nearest-neighbour when it differs: the two
    halves of a slider must line up) and ``after``, both at their own pixels."""
    after = native(after)
    before = native(before)
    if before.shape[:2] != after.shape[:2]:
        h, w = after.shape[:2]
        before = np.asarray(Image.fromarray(before).resize((w, h), Image.NEAREST))
    return before, after


def bicubic(image: Any, height: int, width: int) -> np.ndarray:
    """``image`` resized to ``height`` x ``width`` px by plain bicubic interpolation: what a resolution
    change is compared with."""
    return np.asarray(Image.fromarray(native(image)).resize((width, height), Image.BICUBIC))


def on_canvas(image: Any, height: int, width: int, top: int, left: int, factor: int) -> np.ndarray:
    """``image`` at (``top``, ``left``) px of a ``height`` x ``width`` canvas whose other token cells (of
    ``factor`` px) are checkered: an outpainting's input where its result's cells will be."""
    img = native(image)
    canvas = np.zeros((height, width, 3), np.uint8)
    h, w = min(img.shape[0], height - top), min(img.shape[1], width - left)
    canvas[top : top + h, left : left + w] = img[:h, :w]
    known = np.zeros((height // factor, width // factor), bool)
    known[top // factor : (top + h) // factor, left // factor : (left + w) // factor] = True
    return mask_unknown(canvas, known)


def far_note(pipe: Pipeline, image: Any) -> str | None:
    """One line for a result's summary when ``image`` is far from ``pipe``'s data (the measured
    rule of :func:`arpg.ood.assess`, models with a judge only); None when it is not, or there is
    no rule for the model."""
    verdict = ood.assess(pipe, image)
    if verdict is None or not verdict.far:
        return None
    return (
        f"⚠️ Far from what this model knows: it learnt digit glyphs in two flat colours, and "
        f"{verdict.reason}. Expect a smear; try one of the examples below."
    )


def _painted(layer: Any, size: tuple[int, int]) -> np.ndarray:
    """Where a brush layer of the image editor is painted: (H, W) bool at ``size`` (H, W)."""
    arr = np.asarray(layer)
    if arr.ndim == 3 and arr.shape[-1] == 4:
        painted = arr[..., 3] > 0
    elif arr.ndim == 3:
        painted = arr.max(-1) > 0
    else:
        painted = arr > 0
    h, w = size
    if painted.shape != (h, w):
        small = Image.fromarray(painted.astype(np.uint8) * 255)
        painted = np.asarray(small.resize((w, h), Image.NEAREST)) > 127
    return painted


def editor_parts(value: Any) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, painted mask (H, W) bool) from a gr.ImageEditor value."""
    if value is None or not isinstance(value, dict) or value.get("background") is None:
        raise refuse(f"{NO_IMAGE}, with the region to regenerate painted over it.")
    bg = value["background"]
    image = np.asarray(to_rgb(bg if isinstance(bg, Image.Image) else np.asarray(bg)))
    mask = np.zeros(image.shape[:2], dtype=bool)
    for layer in value.get("layers") or []:
        if layer is not None:
            mask |= _painted(layer, image.shape[:2])
    return image, mask


def image_input(value: Any) -> np.ndarray:
    """An uploaded image as an RGB array; a plain-words gr.Error when there is none."""
    if value is None:
        raise refuse(f"{NO_IMAGE}.")
    return np.asarray(to_rgb(value if isinstance(value, Image.Image) else np.asarray(value)))


def no_progress_on(blocks: gr.Blocks, components: list[Any]) -> None:
    """Show no event's progress on ``components`` (the image editor): in the browser, a component that has
    been the progress target of any event is refreshed on every later status change of every event, and the
    image editor answers each refresh by uploading its layers, and blocks the refresh while it loads a new
    image: a second "Use last generated image" kept spinning and dropped the stroke painted meanwhile.
    Call once every event is wired; each event's progress shows on its other outputs instead."""
    ids = {c._id for c in components}
    for fn in blocks.fns.values():
        targets = fn.show_progress_on if fn.show_progress_on is not None else fn.outputs
        if any(c._id in ids for c in targets):
            fn.show_progress_on = [c for c in targets if c._id not in ids]


def in_editor(image: np.ndarray) -> dict[str, Any]:
    """An image editor's value showing ``image`` with one empty brush layer: it replaces the layers painted
    on the image before (a value with no layers keeps them, over the new image)."""
    return {"background": image, "layers": [np.zeros((*image.shape[:2], 4), np.uint8)], "composite": None}


def use_last(last: dict | None) -> tuple[Any, Any]:
    """The last generated image (upscaled, so brushing on it is easy) and its class."""
    if not last:
        gr.Warning("Nothing generated yet: use the Generate tab first, or upload an image.")
        return gr.skip(), gr.skip()
    return upscale(last["image"]), last["label"]
