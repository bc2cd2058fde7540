"""The app's endpoints as MCP tools: the schema route lists them with described, typed parameters, and a
tool call through the MCP client library (streamable HTTP) generates images that come back as images,
through the same queue and limits as the API."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from demo.mcp_tools import ENV, adapt, launch_kwargs, mcp_enabled
from tests.conftest import free_port

mcp = pytest.importorskip("mcp")
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamablehttp_client  # noqa: E402

TASKS = ("generate", "inpaint", "outpaint", "panorama", "resize", "animate", "side_by_side", "compare")


@pytest.fixture(scope="module")
def app() -> Iterator[tuple[str, Any]]:
    """The app on a random tiny model (4x4 tokens, 16 px images) with its MCP server on; (URL, Blocks)."""
    from arpg.pipeline import Pipeline
    from demo.ui import build_demo, launch_options

    demo = build_demo(Pipeline.random("ARPG-tiny", "VQ-tiny"))
    port = free_port()
    options = launch_kwargs(demo, launch_options(), enabled=True)
    demo.launch(prevent_thread_lock=True, server_port=port, server_name="127.0.0.1", quiet=True, **options)
    try:
        yield f"http://127.0.0.1:{port}", demo
    finally:
        demo.close()


def call(url: str, tool: str, arguments: dict[str, Any], progress: bool = False) -> Any:
    """One MCP tool call over streamable HTTP (with a progress callback when ``progress``)."""

    async def run() -> Any:
        async with streamablehttp_client(f"{url}/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                names = [t.name for t in (await session.list_tools()).tools]
                assert tool in names
                seen: list[Any] = []

                async def on_progress(*args: Any) -> None:
                    seen.append(args)

                return await session.call_tool(tool, arguments, progress_callback=on_progress if progress else None)

    return asyncio.run(run())


def images_of(result: Any) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(c.data))).convert("RGB"))
        for c in result.content
        if c.type == "image"
    ]


def texts_of(result: Any) -> list[str]:
    return [c.text for c in result.content if c.type == "text"]


def test_the_schema_lists_every_task_with_described_typed_parameters(app: tuple[str, Any]) -> None:
    url, _ = app
    tools = {t["name"]: t for t in httpx.get(f"{url}/gradio_api/mcp/schema", timeout=30).json()}
    assert set(TASKS) <= set(tools)
    for name, tool in tools.items():
        assert tool["description"], name
        for param, schema in tool["inputSchema"]["properties"].items():
            assert schema.get("description"), f"{name}.{param} has no description"
    gen = tools["generate"]["inputSchema"]["properties"]
    assert gen["class_name"]["type"] == "string" and "enum" not in gen["class_name"]  # any model's class names
    assert "by name" in gen["class_name"]["description"] and "class 3" in gen["class_name"]["description"]
    assert (gen["steps"]["type"], gen["n_images"]["type"], gen["randomize"]["type"]) == ("integer",) * 2 + ("boolean",)
    assert gen["seed"]["type"] in ("number", "integer") and "random ARPG-tiny" in gen["model"]["enum"]
    image = tools["resize"]["inputSchema"]["properties"]["image"]
    assert image["type"] == "string" and "url" in image["format"].lower()  # images travel as file URLs


def test_every_tool_goes_through_the_queue(app: tuple[str, Any]) -> None:
    _, demo = app
    tools = demo.mcp_server_obj.tool_to_endpoint.values()
    queued = {fn.api_name: fn.queue for fn in demo.fns.values() if fn.api_name}
    assert all(queued[e.lstrip("/")] is not False for e in tools)  # gradio runs unqueued ones in-process


def test_generate_through_mcp_returns_the_images_the_api_makes(app: tuple[str, Any]) -> None:
    from gradio_client import Client

    url, _ = app
    args = {"class_name": "class 3", "n_images": 2, "seed": 5, "randomize": False, "steps": 4}
    result = call(url, "generate", args)
    assert not result.isError, texts_of(result)
    images = images_of(result)
    assert len(images) == 2 and images[0].shape == (16, 16, 3)
    texts = texts_of(result)
    assert "5" in texts and any("seed 5" in t and "python -m arpg sample -n 2" in t for t in texts)
    gallery, seed, _ = Client(url + "/", verbose=False).predict(*args.values(), api_name="/generate")
    api = [np.asarray(Image.open(item["image"]).convert("RGB")) for item in gallery]
    assert seed == 5 and all(np.array_equal(a, m) for a, m in zip(api, images, strict=True))
    with_progress = call(url, "generate", args, progress=True)  # the other way gradio answers a call
    assert all(np.array_equal(a, m) for a, m in zip(images_of(with_progress), images, strict=True))


def test_a_tool_takes_an_image_and_refuses_bad_input_in_words(app: tuple[str, Any]) -> None:
    url, _ = app
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(buf, format="PNG")
    image = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    args = {"image": image, "class_name": "class 1", "scale": 1.5, "strategy": "reencode", "regenerate": 0.5}
    result = call(url, "resize", {**args, "seed": 2, "randomize": False, "steps": 4})
    assert not result.isError and images_of(result)[-1].shape == (24, 24, 3)  # the result (after its "before")
    bad = call(url, "generate", {"class_name": "a unicorn", "seed": 1, "randomize": False, "steps": 4})
    assert bad.isError and "pick one of their names" in " ".join(texts_of(bad))


def test_mcp_calls_count_against_the_fair_queue(app: tuple[str, Any]) -> None:
    from demo.server import fair_queue

    url, demo = app
    queue = fair_queue(demo)
    before = queue.per_session
    args = {"class_name": "class 1", "seed": 1, "randomize": False, "steps": 4}
    queue.per_session = 0  # every job of a session is over the limit: the call must be refused by it
    try:
        refused = call(url, "generate", args)
    finally:
        queue.per_session = before
    # gradio's client words a refused job as a full queue (the queue itself is empty here)
    assert refused.isError and "Queue is full" in " ".join(texts_of(refused))
    assert not call(url, "generate", args).isError


def test_mcp_is_on_unless_turned_off() -> None:
    assert mcp_enabled(env={}) is True
    assert mcp_enabled(no_mcp=True, env={}) is False
    assert mcp_enabled(env={ENV: "false"}) is False and mcp_enabled(env={ENV: "True"}) is True
    assert launch_kwargs(None, {"x": 1}, enabled=False) == {"x": 1, "mcp_server": False}
    assert adapt(None) is None
