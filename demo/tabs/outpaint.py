"""Outpaint tab: extend an image by whole token cells on any side, or into a panorama."""
from __future__ import annotations

from typing import Any, Iterator

import gradio as gr

from .common import (action, class_dropdown, fit_steps, image_input, knob, partial_images, pick_seed, refuse,
                     sampling_controls, sampling_options, seed_controls, stream_steps, summary, upscale)
from .inpaint import examples

SIDES = ("left", "right", "top", "bottom")


def use_last(last: dict | None) -> tuple[Any, Any]:
    """The last generated image and its class."""
    if not last:
        gr.Warning("Nothing generated yet: use the Generate tab first, or upload an image.")
        return gr.skip(), gr.skip()
    return upscale(last["image"]), last["label"]


def build(pipe: Any, last: gr.State) -> None:
    """The Outpaint tab."""
    rows, cols = pipe.grid

    def outpaint(image: Any, class_name: str, directions: list[str], amount: int, seed: int | None,
                 randomize: bool, steps: int, schedule: str, cfg_scale: float, cfg_schedule: str,
                 temperature: float, top_k: int, top_p: float, order: str,
                 progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        from arpg.tasks import outpaint as run_outpaint

        img = image_input(image)
        directions = [d for d in (directions or []) if d]
        bad = [d for d in directions if d not in SIDES]
        if bad:
            raise refuse(f"Unknown direction {bad[0]!r}: use left, right, top or bottom.")
        if not directions:
            raise refuse("Pick at least one direction to extend.")
        label = pipe.label_of(class_name)
        seed = pick_seed(seed, randomize)
        opts = sampling_options(steps, schedule, cfg_scale, cfg_schedule, temperature, top_k, top_p, order)
        ext = {d: int(amount) for d in directions}

        def work(cb: Any) -> Any:
            return fit_steps(lambda s: run_outpaint(pipe, img, label, seed=seed, callback=cb, **ext,
                                                    **{**opts, "steps": s}), opts["steps"])

        for ev in stream_steps(work, progress, "Outpainting"):
            if ev.result is None:
                yield upscale(partial_images(pipe, ev.tokens)[0]), seed, f"step {ev.step + 1} of {ev.n_steps} …"
                continue
            res, note = ev.result
            h, w = res.image.shape[:2]
            info = summary(f"**{pipe.class_names[label]}**", f"seed {res.seed}",
                           f"{'+'.join(directions)} by {int(amount)} cells: {w}×{h} px",
                           f"{int((~res.known).sum())} new tokens in {len(res.trace.counts)} steps", note, res.note)
            yield upscale(res.image), res.seed, info

    def panorama(image: Any, class_name: str, side: str, times: int, seed: int | None, randomize: bool,
                 steps: int, schedule: str, cfg_scale: float, cfg_schedule: str, temperature: float, top_k: int,
                 top_p: float, order: str, progress: gr.Progress = gr.Progress()) -> tuple:
        from arpg.tasks import panorama as run_panorama

        img = image_input(image)
        label = pipe.label_of(class_name)
        seed = pick_seed(seed, randomize)
        opts = sampling_options(steps, schedule, cfg_scale, cfg_schedule, temperature, top_k, top_p, order)
        rounds = {"n": 0}

        def cb(step: int, n_steps: int, tokens: Any) -> None:
            if step == 0:
                rounds["n"] += 1
            progress((step + 1, n_steps), desc=f"Panorama, round {rounds['n']}")

        res, note = fit_steps(lambda s: run_panorama(pipe, img, label, times=int(times), side=side, seed=seed,
                                                     callback=cb, **{**opts, "steps": s}), opts["steps"])
        h, w = res.image.shape[:2]
        info = summary(f"**{pipe.class_names[label]}**", f"seed {res.seed}",
                       f"{int(times)}× towards the {side} in {rounds['n']} rounds: {w}×{h} px", note)
        return upscale(res.image), res.seed, info

    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            image = gr.Image(label="Image", type="numpy", image_mode="RGB", sources=("upload", "clipboard"),
                             height=300, elem_id="outpaint-input", elem_classes=["pixelated"])
            use = gr.Button("Use last generated image", size="sm", elem_id="outpaint-use-last")
            cls = class_dropdown(pipe, label="Class", info="what the extended image shows")
            seed, randomize = seed_controls()
            with gr.Tab("Extend"):
                directions = gr.CheckboxGroup(list(SIDES), value=["right"], label="Directions")
                amount = knob(1, max(rows, cols), value=max(1, cols // 2), step=1, precision=0,
                              label="Amount (token cells)",
                              info=f"one cell is {pipe.factor} px; the image is {cols}×{rows} cells")
                run = gr.Button("Outpaint", variant="primary", elem_id="outpaint-btn")
            with gr.Tab("Panorama"):
                side = gr.Radio(list(SIDES), value="right", label="Grow towards")
                times = knob(2, 8, value=4, step=1, precision=0, label="Times as long",
                             info="repeated outpainting, half an image per round")
                run_pano = gr.Button("Make panorama", variant="primary", elem_id="panorama-btn")
            controls = sampling_controls(pipe)
        with gr.Column(scale=1, min_width=320):
            result = gr.Image(label="Result", type="numpy", format="png", interactive=False, height=440,
                              elem_id="outpaint-result", elem_classes=["pixelated"])
            info = gr.Markdown(label="summary", elem_id="outpaint-info", value=(
                "The original tokens stay as they are and become context on a bigger grid; only the new "
                "cells are decoded."))
            rows_ex = examples(pipe)
            if rows_ex:
                gr.Examples(rows_ex, [image, cls], label="Examples", elem_id="outpaint-examples")
    use.click(use_last, [last], [image, cls], api_visibility="private")
    run.click(action(outpaint), [image, cls, directions, amount, seed, randomize, *controls.inputs],
              [result, seed, info], api_name="outpaint", show_progress_on=info,
              api_description="Extend an image by `amount` token cells in each chosen direction.")
    run_pano.click(action(panorama), [image, cls, side, times, seed, randomize, *controls.inputs],
                   [result, seed, info], api_name="panorama",
                   api_description="Repeated outpainting until the image is `times` as long.")
