"""The web app: one gr.Blocks with a header (the model line and the session's Model dropdown)
and one tab per task (see ``demo/tabs``, built from ``demo/parts``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from arpg.hub import load_app_pipeline
from arpg.images import limit_pillow
from arpg.pipeline import Pipeline
from arpg.store import ModelStore, trained_models

from . import deep_link, instant, server, tool_docs
from .parts.model_choice import ModelChoice, api_defaults, model_line
from .parts.pictures import no_progress_on
from .tabs import generate, inpaint, outpaint, resolution, tradeoffs, visualize

log = logging.getLogger("app")

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
/* A phone (390 px): the model line and the Model dropdown, the seed and its checkbox, one above the other. */
@media (max-width: 640px) {
  #model-row, .seed-row > .form { flex-wrap: wrap; }
  #model-row > *, .seed-row > .form > * { flex: 1 1 100% !important; min-width: 100% !important; }
}
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
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate")


def launch_options(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``demo.launch``: theme, CSS, upload limit (and ``overrides``).

    ``show_error`` passes the one-line message of input errors caught by gradio itself (e.g.
    a malformed API payload) to the caller; callbacks already turn theirs into gr.Error.
    """
    opts: dict[str, Any] = dict(
        theme=theme(),
        css=CSS,
        max_file_size="10mb",
        show_error=True,
        footer_links=["api", "gradio"],
        app_kwargs=server.app_kwargs(),
    )
    opts.update(overrides)
    return opts


def model_store(
    weights: str | None = None,
    tokenizer: str | None = None,
    device: str | None = None,
    offer: Sequence[str] = (),
    folders: Mapping[str, str | Path | None] | None = None,
) -> ModelStore:
    """The models the app offers: the requested one (or the shipped model, with the app's
    fallbacks: :func:`arpg.hub.load_app_pipeline`) first; every registered model trained here whose
    weights are there (:func:`arpg.store.trained_models`; ``folders``: another folder for some, by
    registry name, e.g. a preview named by an ``app.py`` flag); the released models present
    offline; the requested one again when it could not be loaded (a retry once its files are
    there); and the names in ``offer``.

    Raises ``ValueError`` (one line) before loading anything when a named folder cannot serve.
    """
    found = trained_models(folders)
    pipe = load_app_pipeline(weights, tokenizer, device=device)
    if pipe.notice:
        log.warning(pipe.notice)
    extra = ([weights] if weights and pipe.notice else []) + list(offer)
    for m in found:
        if m.name != pipe.name:
            log.info("offering %s from %s", m.name, m.directory)
    return ModelStore(pipe, extra=extra, device=device, tokenizer=tokenizer, small=found)


def build_demo(models: ModelStore | Pipeline, benchmarks_dir: str | Path | None = None) -> gr.Blocks:
    """The whole app for ``models`` (a store, or one pipeline: a store of that model and the
    released ones present offline); queue configured.  Launch it with ``launch_options()``."""
    store = models if isinstance(models, ModelStore) else ModelStore(models)
    first = store.first
    limit_pillow()  # uploads are decoded by Pillow before our own checks: refuse what the tasks would refuse
    with gr.Blocks(title=f"{TITLE} · {first.name}", delete_cache=server.DELETE_CACHE, analytics_enabled=False) as demo:
        with gr.Column(elem_id="header"):
            gr.Markdown(f"# {TITLE}\n{INTRO}")
            with gr.Row(equal_height=True, elem_id="model-row"):
                line = gr.Markdown(model_line(first), elem_id="model-line")
                choice = ModelChoice.build(store)
            if first.notice:
                gr.Markdown(f"⚠️ {first.notice}", elem_id="notice")
        last = gr.State(None)  # the last generated image, for the editing tabs
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                generate.build(choice, last)
            with gr.Tab("Inpaint", id="inpaint"):
                editor = inpaint.build(choice, last)
            with gr.Tab("Outpaint", id="outpaint"):
                outpaint.build(choice, last)
            with gr.Tab("Resolution", id="resolution"):
                resolution.build(choice, last)
            with gr.Tab("Visualize", id="visualize"):
                visualize.build(choice)
            with gr.Tab("Trade-offs", id="tradeoffs") as trade_tab:
                tradeoffs.build(choice, trade_tab, benchmarks_dir)
        choice.attach(line)
        demo._arpg_example_runners = instant.attach(demo, choice)  # type: ignore[attr-defined]
        demo._arpg_link_reader = deep_link.attach(demo, choice, tabs, line)  # type: ignore[attr-defined]
    tool_docs.document(demo, store)
    no_progress_on(demo, [editor])  # every event is wired: none may show its progress on the image editor
    api_defaults(demo)  # a field left out of an API call is the session model's default
    demo._arpg_model_choice = choice  # type: ignore[attr-defined]
    demo.queue(default_concurrency_limit=2, max_size=32)
    server.harden(demo)
    return demo


def model_choice(blocks: gr.Blocks) -> ModelChoice | None:
    """The :class:`ModelChoice` (Model dropdown, store, followers, examples) of an app :func:`build_demo` built."""
    return getattr(blocks, "_arpg_model_choice", None)
