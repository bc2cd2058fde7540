"""Resolution tab: a bigger image from a small one, on a bigger token grid."""
from __future__ import annotations

from typing import Any, Iterator

import gradio as gr

from .common import (DISPLAY_PX, action, class_dropdown, fit_steps, image_input, knob, partial_images, pick_seed,
                     refuse, sampling_controls, sampling_options, seed_controls, stream_steps, summary, upscale)
from .inpaint import examples
from .outpaint import use_last

STRATEGIES = {
    "lattice": "lattice: the original tokens spread over the bigger grid, the gaps generated",
    "reencode": "reencode: the image upsampled and re-encoded, a fraction of its tokens generated again",
}


def build(pipe: Any, last: gr.State) -> None:
    """The Resolution tab."""
    rows, cols = pipe.grid
    native = pipe.image_size
    zoom = max(1, -(-DISPLAY_PX // native))  # the input's display zoom, kept for the output

    def resize(image: Any, class_name: str, scale: float, strategy: str, regenerate: float, seed: int | None,
               randomize: bool, steps: int, schedule: str, cfg_scale: float, cfg_schedule: str, temperature: float,
               top_k: int, top_p: float, order: str, progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        from arpg.tasks import resize as run_resize

        img = image_input(image)
        if strategy not in STRATEGIES:
            raise refuse(f"Unknown strategy {strategy!r}: use lattice or reencode.")
        label = pipe.label_of(class_name)
        seed = pick_seed(seed, randomize)
        opts = sampling_options(steps, schedule, cfg_scale, cfg_schedule, temperature, top_k, top_p, order)

        def work(cb: Any) -> Any:
            return fit_steps(lambda s: run_resize(pipe, img, label, scale=float(scale), strategy=strategy,
                                                  regenerate=float(regenerate), seed=seed, callback=cb,
                                                  **{**opts, "steps": s}), opts["steps"])

        for ev in stream_steps(work, progress, "Decoding the bigger grid"):
            if ev.result is None:
                yield (upscale(partial_images(pipe, ev.tokens)[0], factor=zoom), seed,
                       f"step {ev.step + 1} of {ev.n_steps} …")
                continue
            res, note = ev.result
            R, C = res.tokens.shape
            h, w = res.image.shape[:2]
            info = summary(f"**{pipe.class_names[label]}**", f"seed {res.seed}",
                           f"{cols * pipe.factor}×{rows * pipe.factor} px → {w}×{h} px ({C}×{R} tokens)",
                           f"{int((~res.known).sum())} tokens generated in {len(res.trace.counts)} steps",
                           note, res.note)
            yield upscale(res.image, factor=zoom), res.seed, info

    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            image = gr.Image(label="Image", type="numpy", image_mode="RGB", sources=("upload", "clipboard"),
                             height=300, elem_id="resolution-input", elem_classes=["pixelated"])
            use = gr.Button("Use last generated image", size="sm", elem_id="resolution-use-last")
            cls = class_dropdown(pipe, label="Class", info="the image's class")
            scale = knob(1.0, 4.0, value=2.0, step=0.25, label="Scale",
                         info=f"{native} px becomes scale × {native} px; cost grows with its square")
            strategy = gr.Radio(list(STRATEGIES), value="lattice", label="Strategy",
                                info=" · ".join(STRATEGIES.values()))
            regenerate = knob(0.05, 1.0, value=0.5, step=0.05, label="Regenerate fraction",
                              info="reencode only: share of the tokens decoded again")
            seed, randomize = seed_controls()
            controls = sampling_controls(pipe)
            run = gr.Button("Change resolution", variant="primary", elem_id="resolution-btn")
        with gr.Column(scale=1, min_width=320):
            result = gr.Image(label="Bigger image (same zoom as the input)", type="numpy",
                              format="png", interactive=False, height=520, elem_id="resolution-result",
                              elem_classes=["pixelated"])
            info = gr.Markdown(label="summary", elem_id="resolution-info", value=(
                "The model has no fixed positions: the same weights decode a bigger grid, with the tokens "
                "of the small image as context."))
            rows_ex = examples(pipe)
            if rows_ex:
                gr.Examples(rows_ex, [image, cls], label="Examples", elem_id="resolution-examples")
    use.click(use_last, [last], [image, cls], api_visibility="private")
    run.click(action(resize), [image, cls, scale, strategy, regenerate, seed, randomize, *controls.inputs],
              [result, seed, info], api_name="resize", show_progress_on=info,
              api_description="Resolution change: the image on a `scale` times bigger token grid.")
