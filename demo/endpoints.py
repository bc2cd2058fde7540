"""The app's named endpoints as the server holds them: each one's callback, its parameters by name with
the components that fill them, and its outputs. Deep links set a tab's components by these names
(:mod:`demo.deep_link`); example rows run an endpoint with the row's values (:mod:`demo.instant`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr


@dataclass(frozen=True)
class Endpoint:
    """One named endpoint: ``fn`` takes the values of ``inputs`` in order (then, optionally, a progress tracker)."""

    api_name: str
    fn: Callable[..., Any]
    inputs: dict[str, Any]  # parameter name -> component, in the order of the callback's parameters
    outputs: list[Any]


def endpoint(blocks: gr.Blocks, api_name: str) -> Endpoint | None:
    """The endpoint ``api_name`` of ``blocks`` (None when there is none).

    The parameter names are the callback's (its signature, as the API and MCP tools show them), minus
    ``progress``; a callback with another number of them than inputs is a programming error."""
    block_fn = next((f for f in blocks.fns.values() if f.api_name == api_name and f.fn is not None), None)
    if block_fn is None:
        return None
    names = [n for n in inspect.signature(block_fn.fn).parameters if n != "progress"]
    if len(names) != len(block_fn.inputs):
        raise RuntimeError(f"/{api_name}: {len(names)} parameters for {len(block_fn.inputs)} inputs")
    return Endpoint(api_name, block_fn.fn, dict(zip(names, block_fn.inputs, strict=True)), list(block_fn.outputs))
