"""The web app: one gr.Blocks with a header and one tab per task (see ``demo/tabs``)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    import gradio as gr

    from arpg.pipeline import Pipeline

TITLE = "ARPG Sandbox"
TABS = ("generate", "inpaint", "outpaint", "resolution", "visualize", "tradeoffs")
CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; }
.compact-file .empty { min-height: 56px !important; height: 56px !important; }
.compact-file { flex-grow: 0 !important; }
#notice { border-left: 4px solid #f59e0b; background: rgba(245, 158, 11, 0.12); padding: 8px 14px;
          border-radius: 6px; }
#header h1 { margin-bottom: 0.2em; }
#model-line { opacity: 0.85; }
"""

INTRO = (
    "Autoregressive image models usually write an image one token at a time, left to right, top to bottom. "
    "**Randomized parallel decoding** (ARPG, [arXiv 2503.10568](https://arxiv.org/abs/2503.10568)) trains the "
    "model on random orders and lets every query name the cell it fills, so it can decode *many* cells per "
    "step, in any order, from any set of known cells — a 256-token image in 16–32 forward passes instead of "
    "256, and inpainting, outpainting and resolution changes without retraining. "
    "**Generate** draws images of a class and shows them building up; **Inpaint**, **Outpaint** and "
    "**Resolution** decode new cells around the tokens of your image; **Visualize** animates the decoding order "
    "and compares it with raster order; **Trade-offs** plots steps against speed and quality."
)


def theme() -> Any:
    """The app's theme (passed to ``launch``)."""
    import gradio as gr

    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate")


def launch_options(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch``: theme, CSS, upload limit (and ``overrides``).

    ``show_error`` passes the one-line message of input errors caught by gradio itself (e.g.
    a malformed API payload) to the caller; callbacks already turn theirs into gr.Error.
    """
    opts: dict[str, Any] = dict(theme=theme(), css=CSS, max_file_size="10mb", show_error=True,
                                footer_links=["api", "gradio"])
    opts.update(overrides)
    return opts


def model_line(pipe: "Pipeline") -> str:
    """One line about the loaded model."""
    dev = pipe.device.type.upper() if pipe.device.type != "cpu" else "CPU"
    size = pipe.image_size
    n_par = pipe.num_params / 1e6
    return (f"**Model:** {pipe.name} · {n_par:.1f} M parameters · {pipe.num_classes} classes · "
            f"{size}×{size} px images from {pipe.grid[0]}×{pipe.grid[1]} tokens · running on {dev}")


def build_demo(pipeline: "Pipeline", benchmarks_dir: str | Path | None = None) -> "gr.Blocks":
    """The whole app for ``pipeline``; queue configured.  Launch it with ``launch_options()``."""
    import gradio as gr

    from PIL import Image

    from arpg.tasks import MAX_INPUT_PIXELS

    from .tabs import generate, inpaint, outpaint, resolution, tradeoffs, visualize

    # Uploads are decoded by Pillow before our own checks: make Pillow refuse (it raises
    # above twice this limit) what the tasks would refuse anyway.
    Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS // 2
    with gr.Blocks(title=f"{TITLE} · {pipeline.name}", delete_cache=(3600, 3600), analytics_enabled=False) as demo:
        with gr.Column(elem_id="header"):
            gr.Markdown(f"# {TITLE}\n{INTRO}")
            gr.Markdown(model_line(pipeline), elem_id="model-line")
            if pipeline.notice:
                gr.Markdown(f"⚠️ {pipeline.notice}", elem_id="notice")
        last = gr.State(None)  # the last generated image, for the editing tabs
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                generate.build(pipeline, last)
            with gr.Tab("Inpaint", id="inpaint"):
                inpaint.build(pipeline, last)
            with gr.Tab("Outpaint", id="outpaint"):
                outpaint.build(pipeline, last)
            with gr.Tab("Resolution", id="resolution"):
                resolution.build(pipeline, last)
            with gr.Tab("Visualize", id="visualize"):
                visualize.build(pipeline)
            with gr.Tab("Trade-offs", id="tradeoffs") as trade_tab:
                tradeoffs.build(pipeline, trade_tab, benchmarks_dir)
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo
