"""What each parameter of the app's endpoints means, in words an MCP client (an AI agent) or a reader of
the API page can act on: :func:`document` writes it into every endpoint callback's docstring, where
gradio reads the parameter descriptions of its MCP tools (``Args:``) and of its API page.

The types come from the components (integers, numbers, choices; images as file URLs); the tools'
own descriptions are the endpoints' ``api_description``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gradio as gr

from arpg.data.sets import DATASETS
from arpg.options import SAMPLER_ORDERS, SCHEDULES
from arpg.orders import ADAPTIVE_ORDERS
from arpg.store import ModelStore

from .endpoints import endpoint

#: What each adaptive order does, as orders.py says it ("<name> <summary>", joined by "; ").
_ADAPTIVE_HELP = "; ".join(f"{name} {cls.summary}" for name, cls in ADAPTIVE_ORDERS.items())
SAMPLING = {
    "steps": "Decoding steps (forward passes), a whole number from 1 to the number of token cells; each step "
    "decodes several tokens at once: fewer is faster, more is finer. Default: the model's.",
    "schedule": f"How many tokens each step decodes: {', '.join(SCHEDULES)}, or k=<n> for n per step.",
    "cfg_scale": "Classifier-free guidance, 1 to 10 (1: none); higher follows the class more closely.",
    "cfg_schedule": "Guidance over the steps: constant (full from the first step) or linear (growing from 1).",
    "temperature": "Sampling temperature, above 0 (1: the model's own distribution; lower: safer choices).",
    "top_k": "Sample among the k most likely tokens only (0: all of them).",
    "top_p": "Sample among the most likely tokens that hold this much probability (1: all of them).",
    "order": f"The order the token cells are decoded in: {', '.join(SAMPLER_ORDERS)} (random is what ARPG is "
    f"trained for; {_ADAPTIVE_HELP}).",
}
COMMON = {
    **SAMPLING,
    "seed": "Random seed, a whole number >= 0, used when randomize is false. The seed used is returned, so a "
    "result can be made again.",
    "randomize": "true: draw a fresh seed and ignore seed; false: use seed (give false for a reproducible result).",
    "image": "The input image: an http(s) URL of a PNG or JPEG (a data: URL also works); any size, scaled to the "
    "model's image height.",
    "decoding": "How a canvas larger than the model's training grids is decoded: windowed (windows of a trained "
    "size) or whole (one decode); leave empty for the model's own choice.",
}
#: Per endpoint: what its own parameters mean (over :data:`COMMON`).
OWN: dict[str, dict[str, str]] = {
    "generate": {"n_images": "How many images to draw, 1 to 8, decoded together in one batch."},
    "inpaint": {
        "editor": "The image and what to regenerate: {background: URL of the image, layers: [URL of a PNG of the "
        "same size, opaque where the image is to be regenerated], composite: null}. A class other than the one "
        "the image shows edits it (the shape under the painted part is regenerated).",
        "dilate": "Grow the painted region by this many extra token cells, 0 to 3.",
        "blend": "true: paste the new pixels back with a soft, colour-matched seam; false: as decoded.",
    },
    "outpaint": {
        "directions": "The sides to extend: some of left, right, top, bottom.",
        "amount": "How many token cells to add on each chosen side (a cell is 4 px on the small models here).",
    },
    "panorama": {
        "side": "The side the panorama grows towards: left, right, top or bottom.",
        "times": "How many times as long as the input the result is, 2 to 8 (half an image per round).",
    },
    "resize": {
        "scale": "The new size as a multiple of the model's image size, 1 to 4 (the cost grows with its square).",
        "strategy": "lattice: the image's tokens spread over the bigger grid and the gaps generated; reencode: the "
        "image upsampled and re-encoded, then a fraction of its tokens generated again.",
        "regenerate": "reencode only: the fraction of the tokens generated again, 0.05 to 1.",
    },
    "animate": {"fps": "Frames per second of the GIF, 1 to 30.", "order": SAMPLING["order"]},
    "side_by_side": {
        "order": "The first decoding order. " + SAMPLING["order"],
        "second": "The decoding order shown beside it (same class, seed and steps).",
        "fps": "Frames per second of the GIF, 1 to 30.",
    },
    "compare": {"fps": "Frames per second of the GIF, 1 to 30."},
    "race_models": {
        "models": "2 to 4 names of the Model dropdown, each decoding at its own settings (e.g. the digits ARPG "
        "model against the raster model trained here).",
        "fps": "Frames per second of the GIF, 1 to 30.",
    },
    "saved_results": {"name": "The saved benchmark result to show: one of the names offered."},
    "measure": {
        "batches": "Batch sizes to time (images per call).",
        "steps": "Step counts to time.",
        "raster": "true: also time raster order, one token per step (the baseline).",
        "repeats": "Timed runs per setting (the median is reported).",
        "orders": "Decoding orders whose quality is measured (needs a model with a judge).",
        "per_class": "Images per class in each quality sample.",
    },
}


def class_text(store: ModelStore) -> str:
    """What ``class_name`` takes, with the class names of the models offered (long lists cut short)."""
    offered = [(store.first.name, list(store.first.class_names))]
    for data, module in DATASETS.items():
        name = store.named_for(data)
        if name and name != store.first.name:
            offered.append((name, list(module.CLASS_NAMES)))
    parts = [
        f"{name}: {', '.join(n[:40] for n in names[:12])}{', ...' if len(names) > 12 else ''}"
        for name, names in offered
    ]
    return "The class to draw, by name (a class of the chosen model) or by number from 0. " + "; ".join(parts) + "."


def describe(store: ModelStore) -> dict[str, str]:
    """The descriptions every endpoint shares, with the class names and models of ``store``."""
    models = ", ".join(store.names())
    return {
        **COMMON,
        "class_name": class_text(store),
        "model": f"The model that runs it, by name: one of {models} (default: {store.first.name}).",
    }


def docstring(summary: str, params: list[str], texts: Mapping[str, str]) -> str:
    """A docstring gradio reads: ``summary``, then ``Args:`` with one line per parameter it has a text for."""
    lines = [f"    {p}: {texts[p]}" for p in params if p in texts]
    return summary.strip() + ("\n\nArgs:\n" + "\n".join(lines) if lines else "")


def document(blocks: gr.Blocks, store: ModelStore) -> list[str]:
    """Write the parameter descriptions into the docstring of every named endpoint of ``blocks`` (call once
    the tabs are built, before launch); returns the endpoints documented."""
    shared = describe(store)
    done = []
    for api_name in [f.api_name for f in blocks.fns.values() if f.api_name and f.api_visibility == "public"]:
        ep = endpoint(blocks, api_name)
        if ep is None:
            continue
        block_fn: Any = next(f for f in blocks.fns.values() if f.api_name == api_name)
        summary = block_fn.api_description if isinstance(block_fn.api_description, str) else ""
        ep.fn.__doc__ = docstring(summary, list(ep.inputs), {**shared, **OWN.get(api_name, {})})
        done.append(api_name)
    return done
