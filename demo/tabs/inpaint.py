"""Inpaint tab: brush a region of an image and regenerate it (same class: inpainting;
another class: class-conditional editing)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from .common import (action, class_dropdown, editor_parts, fit_steps, knob, partial_images, pick_seed, refuse,
                     sampling_controls, sampling_options, seed_controls, stream_steps, summary, upscale)

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"


def use_last(last: dict | None) -> tuple[Any, Any]:
    """The last generated image (upscaled so brushing is easy) and its class."""
    if not last:
        gr.Warning("Nothing generated yet: use the Generate tab first, or upload an image.")
        return gr.skip(), gr.skip()
    return upscale(last["image"]), last["label"]


def examples(pipe: Any) -> list[list[Any]]:
    """Example inputs ``[path, class name]`` for the digits models (none for other class sets)."""
    rows: list[list[Any]] = []
    if pipe.num_classes != 10:
        return rows
    for path in sorted(EXAMPLES.glob("digit_*.png")):
        digit = int(path.stem.split("_")[-1])
        if digit < pipe.num_classes:
            rows.append([str(path), pipe.class_names[digit]])
    return rows


def build(pipe: Any, last: gr.State) -> None:
    """The Inpaint tab."""

    def inpaint(editor: dict | None, class_name: str, dilate: int, blend: bool, seed: int | None, randomize: bool,
                steps: int, schedule: str, cfg_scale: float, cfg_schedule: str, temperature: float, top_k: int,
                top_p: float, order: str, progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        from arpg.tasks import inpaint as run_inpaint

        image, mask = editor_parts(editor)
        if not mask.any():
            raise refuse("The mask is empty: paint over the part of the image to regenerate.")
        label = pipe.label_of(class_name)
        seed = pick_seed(seed, randomize)
        opts = sampling_options(steps, schedule, cfg_scale, cfg_schedule, temperature, top_k, top_p, order)

        def work(cb: Any) -> Any:
            return fit_steps(lambda s: run_inpaint(pipe, image, mask, label, dilate=int(dilate), blend=bool(blend),
                                                   seed=seed, callback=cb, **{**opts, "steps": s}), opts["steps"])

        for ev in stream_steps(work, progress, "Inpainting"):
            if ev.result is None:
                yield upscale(partial_images(pipe, ev.tokens)[0]), seed, f"step {ev.step + 1} of {ev.n_steps} …"
                continue
            res, note = ev.result
            n_new = int((~res.known).sum())
            info = summary(f"**{pipe.class_names[label]}**", f"seed {res.seed}",
                           f"{n_new} of {res.known.numel()} tokens regenerated in {len(res.trace.counts)} steps",
                           note, res.note)
            yield upscale(res.image), res.seed, info

    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            editor = gr.ImageEditor(label="Image: paint the region to regenerate", type="numpy", image_mode="RGBA",
                                    sources=("upload", "clipboard"), transforms=(), layers=False, format="png",
                                    brush=gr.Brush(default_size=28, colors=["#ff2e88"], color_mode="fixed"),
                                    eraser=gr.Eraser(default_size=28), height=440, elem_id="inpaint-editor")
            use = gr.Button("Use last generated image", size="sm", elem_id="inpaint-use-last")
            cls = class_dropdown(pipe, label="Class", info="the image's class to fill it in; another class edits it")
            with gr.Row():
                dilate = knob(0, 3, value=0, step=1, precision=0, label="Grow mask (cells)",
                              info="regenerate this many extra token cells around the brush")
                blend = gr.Checkbox(value=True, label="Blend edges", info="soft seam between old and new pixels")
            seed, randomize = seed_controls()
            controls = sampling_controls(pipe)
            run = gr.Button("Inpaint", variant="primary", elem_id="inpaint-btn")
        with gr.Column(scale=1, min_width=320):
            result = gr.Image(label="Result", type="numpy", format="png", interactive=False, height=440,
                              elem_id="inpaint-result", elem_classes=["pixelated"])
            info = gr.Markdown(label="summary", elem_id="inpaint-info", value=(
                "Upload an image (or take the last generated one), paint over the part to regenerate, "
                "choose the class and press **Inpaint**. Only the painted token cells are decoded; the "
                "others are given to the model as context."))
            rows = examples(pipe)
            if rows:
                gr.Examples(rows, [editor, cls], label="Examples: pick one, then paint on it",
                            elem_id="inpaint-examples")
    use.click(use_last, [last], [editor, cls], api_visibility="private")
    run.click(action(inpaint), [editor, cls, dilate, blend, seed, randomize, *controls.inputs], [result, seed, info],
              api_name="inpaint", show_progress_on=info,
              api_description="Regenerate the painted part of an image (the editor's background is the "
                              "image, its layers the mask).")
