"""Generate tab: class-conditional images, streamed step by step while they decode."""
from __future__ import annotations

import time
from typing import Any, Iterator

import gradio as gr

from .common import (MAX_IMAGES, action, class_dropdown, knob, partial_images, pick_seed, sampling_controls,
                     sampling_options, seed_controls, stream_steps, summary, upscale)


def build(pipe: Any, last: gr.State) -> None:
    """The Generate tab; ``last`` receives the first generated image for the other tabs."""

    def generate(class_name: str, n_images: int, seed: int | None, randomize: bool, steps: int, schedule: str,
                 cfg_scale: float, cfg_schedule: str, temperature: float, top_k: int, top_p: float, order: str,
                 progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        label = pipe.label_of(class_name)
        seed = pick_seed(seed, randomize)
        opts = sampling_options(steps, schedule, cfg_scale, cfg_schedule, temperature, top_k, top_p, order)
        t0 = time.perf_counter()
        for ev in stream_steps(lambda cb: pipe.generate([label] * int(n_images), seed=seed, callback=cb, **opts),
                               progress, "Decoding"):
            if ev.result is None:
                yield ([upscale(im) for im in partial_images(pipe, ev.tokens)], seed,
                       f"step {ev.step + 1} of {ev.n_steps} …", gr.skip())
                continue
            out = ev.result
            took = time.perf_counter() - t0
            info = summary(f"**{pipe.class_names[label]}**", f"seed {out.seed}", f"{len(out.trace.counts)} steps",
                           f"{out.trace.forward_passes} forward passes",
                           f"{took:.2f} s ({len(out.images) / took:.2f} images/s)")
            yield ([upscale(im) for im in out.images], out.seed, info,
                   {"image": out.images[0], "label": pipe.class_names[label]})

    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            cls = class_dropdown(pipe, info="what to draw")
            n_images = knob(1, MAX_IMAGES, value=4, step=1, precision=0, label="Number of images",
                            info="decoded together in one batch")
            seed, randomize = seed_controls()
            controls = sampling_controls(pipe)
            run = gr.Button("Generate", variant="primary", elem_id="generate-btn")
        with gr.Column(scale=3, min_width=320):
            gallery = gr.Gallery(label="Images", columns=4, height=420, object_fit="contain",
                                 elem_id="generate-gallery", elem_classes=["pixelated"], format="png",
                                 buttons=["download", "fullscreen"])
            info = gr.Markdown(label="summary", elem_id="generate-info", value=(
                "Pick a class and press **Generate**: the images appear token by token, several tokens per "
                "step, in a random order."))
    run.click(action(generate), [cls, n_images, seed, randomize, *controls.inputs], [gallery, seed, info, last],
              api_name="generate", show_progress_on=info,
              api_description="Class-conditional images; returns the images, the seed used and a one-line summary.")
