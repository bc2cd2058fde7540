"""Visualize tab: animations of the decoding order and a heatmap of the step of every cell."""
from __future__ import annotations

import time
from typing import Any

import gradio as gr

from .common import action, class_dropdown, knob, order_choices, out_path, pick_seed, refuse, seed_controls, summary


def build(pipe: Any) -> None:
    """The Visualize tab."""
    orders = order_choices()
    cells = pipe.grid[0] * pipe.grid[1]

    def animate(class_name: str, order: str, steps: int, seed: int | None, randomize: bool, fps: float,
                cfg_scale: float, temperature: float, progress: gr.Progress = gr.Progress()) -> tuple:
        from arpg.animate import trace_frames
        from demo.render import save_animation, step_heatmap

        if order not in orders:
            raise refuse(f"Unknown order {order!r}: use one of {', '.join(orders)}.")
        label = pipe.label_of(class_name)
        seed = pick_seed(seed, randomize)

        def cb(step: int, n_steps: int, tokens: Any) -> None:
            progress((step + 1, n_steps), desc="Decoding")

        t0 = time.perf_counter()
        out = pipe.generate([label], seed=seed, steps=int(steps), order=order, cfg_scale=float(cfg_scale),
                            temperature=float(temperature), snapshots=True, callback=cb)
        took = time.perf_counter() - t0
        progress(1.0, desc="Drawing the animation")
        frames = trace_frames(pipe, out, label_text=pipe.class_names[label])
        gif = save_animation(frames, out_path(f"decode-{order}-{int(steps)}steps", ".gif"), fps=float(fps))
        heat = step_heatmap(out.trace.step_of.numpy(), title=f"decoding step of each cell ({order})")
        counts = out.trace.counts
        info = summary(f"**{pipe.class_names[label]}**", f"seed {out.seed}", f"{order} order",
                       f"{len(counts)} steps of {min(counts)}–{max(counts)} tokens", f"decoded in {took:.2f} s")
        return str(gif), str(gif), heat, out.seed, info

    def compare(class_name: str, steps: int, seed: int | None, randomize: bool, fps: float, cfg_scale: float,
                temperature: float, progress: gr.Progress = gr.Progress()) -> tuple:
        from arpg.animate import comparison_frames
        from demo.render import save_animation, step_heatmap

        label = pipe.label_of(class_name)
        seed = pick_seed(seed, randomize)
        total = 2 * cells + int(steps)
        done = {"n": 0}

        def cb(step: int, n_steps: int, tokens: Any) -> None:
            done["n"] += 1
            progress((done["n"], total), desc="Decoding three ways")

        t0 = time.perf_counter()
        frames, outs = comparison_frames(pipe, label, steps=int(steps), seed=seed, cfg_scale=float(cfg_scale),
                                         temperature=float(temperature), callback=cb)
        took = time.perf_counter() - t0
        progress(1.0, desc="Drawing the animation")
        gif = save_animation(frames, out_path(f"compare-{int(steps)}steps", ".gif"), fps=float(fps))
        heat = step_heatmap(outs[-1].trace.step_of.numpy(), title="decoding step of each cell (ARPG)")
        passes = " / ".join(str(o.trace.forward_passes) for o in outs)
        info = summary(f"**{pipe.class_names[label]}**", f"seed {seed}",
                       f"forward passes: raster / random one-at-a-time / ARPG = {passes}", f"{took:.1f} s in all")
        return str(gif), str(gif), heat, seed, info

    def pair(class_name: str, order: str, second: str, steps: int, seed: int | None, randomize: bool, fps: float,
             cfg_scale: float, temperature: float, progress: gr.Progress = gr.Progress()) -> tuple:
        from arpg.animate import strategy_frames
        from demo.render import save_animation, step_heatmap

        for o in (order, second):
            if o not in orders:
                raise refuse(f"Unknown order {o!r}: use one of {', '.join(orders)}.")
        label = pipe.label_of(class_name)
        seed = pick_seed(seed, randomize)
        done = {"n": 0}

        def cb(step: int, n_steps: int, tokens: Any) -> None:
            done["n"] += 1
            progress((done["n"], 2 * int(steps)), desc="Decoding two ways")

        t0 = time.perf_counter()
        strategies = [(f"{o}, {int(steps)} steps", {"steps": int(steps), "order": o}) for o in (order, second)]
        frames, outs = strategy_frames(pipe, label, strategies, seed=seed, cfg_scale=float(cfg_scale),
                                       temperature=float(temperature), callback=cb)
        took = time.perf_counter() - t0
        progress(1.0, desc="Drawing the animation")
        gif = save_animation(frames, out_path(f"pair-{order}-{second}-{int(steps)}steps", ".gif"), fps=float(fps))
        heat = step_heatmap(outs[1].trace.step_of.numpy(), title=f"decoding step of each cell ({second})")
        queries = " / ".join(str(o.trace.queries) for o in outs)
        info = summary(f"**{pipe.class_names[label]}**", f"seed {seed}", f"{order} vs {second}",
                       f"queries: {queries}", f"{took:.1f} s in all")
        return str(gif), str(gif), heat, seed, info

    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            cls = class_dropdown(pipe)
            order = gr.Dropdown(orders, value="random", label="Order (single animation)",
                                info="the order in which the cells are decoded")
            steps = knob(1, cells, value=min(cells, 16), step=1, precision=0, label="Steps",
                         info=f"parallel steps for the {cells} cells")
            seed, randomize = seed_controls()
            fps = knob(1, 30, value=6, step=1, label="Frames per second")
            with gr.Accordion("Advanced", open=False):
                cfg = knob(1.0, 10.0, value=float(pipe.default_cfg), step=0.25, label="Guidance scale")
                temperature = knob(0.05, 3.0, value=1.0, step=0.05, label="Temperature")
            second = gr.Dropdown(orders, value="raster", label="Second order (side by side)",
                                 info="shown next to the first order, same class, seed and steps")
            with gr.Row():
                run = gr.Button("Animate", variant="primary", elem_id="animate-btn")
                run_pair = gr.Button("Side by side", variant="secondary", elem_id="pair-btn")
                run_cmp = gr.Button("Compare with 1 token/step", variant="secondary", elem_id="compare-btn")
            gr.Markdown(f"*Compare* decodes the same class and seed three times: in raster order one token at "
                        f"a time ({cells} steps, like LlamaGen), in a random order one at a time ({cells} steps) "
                        f"and with ARPG, several random tokens per step.")
            download = gr.File(label="Download the animation (GIF)", interactive=False,
                               elem_id="visualize-download", elem_classes=["compact-file"])
        with gr.Column(scale=2, min_width=320):
            anim = gr.Image(label="Decoding animation", show_label=False, type="filepath", interactive=False,
                            height=380, elem_id="visualize-animation", elem_classes=["pixelated"])
            gr.Markdown("Left of each animation: the image decoded so far (checkered cells are still unknown). "
                        "Right: the token grid, each step's new cells lit up, earlier ones coloured by step.")
            info = gr.Markdown(label="summary", elem_id="visualize-info")
            heat = gr.Image(label="Step of each cell", show_label=False, type="pil", format="png",
                            interactive=False, height=400, elem_id="visualize-heatmap")
    run.click(action(animate), [cls, order, steps, seed, randomize, fps, cfg, temperature],
              [anim, download, heat, seed, info], api_name="animate",
              api_description="A GIF of one decode in the chosen order, and a heatmap of the step of each cell.")
    run_pair.click(action(pair), [cls, order, second, steps, seed, randomize, fps, cfg, temperature],
                   [anim, download, heat, seed, info], api_name="side_by_side",
                   api_description="Two decoding orders with the same class, seed and steps, side by side.")
    run_cmp.click(action(compare), [cls, steps, seed, randomize, fps, cfg, temperature],
                  [anim, download, heat, seed, info], api_name="compare",
                  api_description="The same seed decoded in raster order, random one-at-a-time and with ARPG.")
