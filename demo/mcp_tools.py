"""The app's endpoints as MCP tools (Model Context Protocol: AI agents call them), on by default.

gradio serves every public endpoint as a tool at ``/gradio_api/mcp/`` (streamable HTTP; SSE at
``/gradio_api/mcp/sse``; the tools' schemas at ``/gradio_api/mcp/schema``), described by the docstrings
:func:`demo.tool_docs.document` writes. A tool call is sent to the app's own HTTP API and joins the same
queue as a browser's or an API client's request: the same concurrency, queue size, fair-queue limits,
cost ceiling, body limit and error texts. Off with ``python app.py --no-mcp`` or
``GRADIO_MCP_SERVER=false``; off, with a warning, when the ``mcp`` package is missing.

Two fixes to the results of gradio 6.31's MCP server (:func:`adapt`, applied when the server starts):
a call without a progress token returned the outputs of a multi-output endpoint as one text (the
repr of a tuple), and a gallery or a before/after pair came back as text instead of its images.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from anyio import to_thread

log = logging.getLogger("demo.mcp")

ENV = "GRADIO_MCP_SERVER"
_FALSE = {"0", "false", "no", "off"}


def mcp_enabled(no_mcp: bool = False, env: dict[str, str] | None = None) -> bool:
    """Whether to serve the MCP tools: yes unless ``no_mcp`` (``--no-mcp``), ``$GRADIO_MCP_SERVER`` says
    false, or the ``mcp`` package is not installed (``pip install "gradio[mcp]"``: said in a warning)."""
    env = os.environ if env is None else env
    if no_mcp or env.get(ENV, "").strip().lower() in _FALSE:
        return False
    if importlib.util.find_spec("mcp") is None:
        log.warning('MCP tools off: the mcp package is missing (pip install "gradio[mcp]")')
        return False
    return True


def _files_of(value: Any) -> list[Any]:
    """The images of one output: a gallery's (``[{"image": file, "caption": ...}, ...]``) and a before/after
    slider's (a pair of files) one by one; any other value as it is."""
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, dict) and "image" in v for v in value):
            return [v["image"] for v in value]
        if all(isinstance(v, dict) and "path" in v and "meta" in v for v in value):
            return list(value)
    return [value]


def adapt(server: Any) -> Any:
    """Fix the results of a gradio ``GradioMCPServer`` (see the module's docstring); idempotent, None passes."""
    if server is None or getattr(server, "_arpg_adapted", False):
        return server
    postprocess = server.postprocess_output_data

    async def every_output(job: Any) -> list[Any]:
        out = await to_thread.run_sync(job.result)
        return list(out) if isinstance(out, tuple) else [out]  # several outputs come back as a tuple

    def images_too(data: Any, root_url: str) -> Any:
        return postprocess([item for value in data for item in _files_of(value)], root_url)

    server._execute_tool_without_progress = every_output
    server.postprocess_output_data = images_too
    server._arpg_adapted = True
    return server


def launch_kwargs(blocks: Any, options: dict[str, Any], enabled: bool) -> dict[str, Any]:
    """``options`` for ``blocks.launch`` with the MCP server on (``enabled``) or off; when on, its results
    are adapted as the server starts (before the first request), in a lifespan after ``options``' own."""
    out = dict(options, mcp_server=bool(enabled))
    if not enabled:
        return out
    app_kwargs = dict(out.get("app_kwargs") or {})
    inner: Callable[[Any], Any] | None = app_kwargs.get("lifespan")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        adapt(getattr(blocks, "mcp_server_obj", None))
        if inner is None:
            yield
        else:
            async with inner(app):
                yield

    app_kwargs["lifespan"] = lifespan
    out["app_kwargs"] = app_kwargs
    return out
