"""The per-request and per-client limits of the web server, on small ASGI apps (no server):
the images one request may name (:mod:`demo.image_budget`), the upload quota and the folder cap
(:mod:`demo.quota`), and which address a request counts against (:mod:`demo.middleware`)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from PIL import Image

from arpg.images import MAX_PIXELS, limit_pillow
from demo import image_budget, middleware, quota
from tests.test_images import grey_png

# A 15.96 MP grey PNG of about 15 kB: the framework decodes it to a full-size array.
WIDTH, HEIGHT = 4000, 3990


def _routes(calls: list[Any]) -> FastAPI:
    """The app's kinds of routes; every call that reaches one is recorded (a route reached is one
    whose images the framework would decode)."""
    api = FastAPI()

    @api.post("/gradio_api/call/{name}")
    async def call(name: str, request: Request) -> dict:
        body = await request.body()
        calls.append((name, len(body)))
        return {"event_id": "1"}

    @api.post("/gradio_api/upload")
    async def upload(request: Request) -> list[str]:
        body = await request.body()
        calls.append(("upload", len(body)))
        return ["/tmp/x"]

    return api


def _send(app: Any, path: str, client: tuple[str, int] = ("10.0.0.1", 1000), **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.post(path, **kw)

    return asyncio.run(go())


def _ref(path: Path) -> dict[str, Any]:
    return {"path": str(path), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


@pytest.fixture
def big_png(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))  # the framework's upload folder
    path = tmp_path / "upload" / "big.png"
    path.parent.mkdir()
    path.write_bytes(grey_png(WIDTH, HEIGHT))
    return path


# -- the images of one request ----------------------------------------------------------------------------
def test_an_editor_value_with_many_layers_is_refused_before_any_route_reads_it(big_png: Path) -> None:
    calls: list[Any] = []
    app = middleware.PlainErrors(middleware.BodyLimit(image_budget.ImageBudget(_routes(calls))))
    ref = _ref(big_png)
    many = {"background": ref, "layers": [ref] * 64, "composite": ref, "id": None}
    body = json.dumps({"data": [many, "class 1", 0, True]})
    assert len(body) < 13_000  # small on the wire, about 4 GB once decoded
    r = _send(app, "/gradio_api/call/inpaint", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and calls == []
    assert r.json()["detail"] == "The request names 66 images or files: at most 4 in one request."
    # The same with no declared type (routes parse JSON whatever the header says).
    r = _send(app, "/gradio_api/call/inpaint", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 413 and calls == []
    # Four references of 16 MP: fewer than the count limit, more pixels than the budget.
    four = {"background": ref, "layers": [ref, ref], "composite": ref}
    r = _send(app, "/gradio_api/call/inpaint", json={"data": [four]})
    assert r.status_code == 413 and calls == []
    assert r.json()["detail"].startswith("The images of the request are too large together (63.8 megapixels)")
    # A 16 MP photo with its brush layer and composite is served.
    ok = {"background": ref, "layers": [ref], "composite": ref}
    assert _send(app, "/gradio_api/call/inpaint", json={"data": [ok, "class 1"]}).status_code == 200
    assert [name for name, _ in calls] == ["inpaint"]


def test_data_urls_and_web_addresses_count_too(big_png: Path) -> None:
    calls: list[Any] = []
    app = image_budget.ImageBudget(_routes(calls))
    data_url = "data:image/png;base64," + base64.b64encode(big_png.read_bytes()).decode()
    r = _send(app, "/gradio_api/call/outpaint", json={"data": [{"url": data_url}] * 4})
    assert r.status_code == 413 and "63.8 megapixels" in r.json()["detail"]
    r = _send(app, "/gradio_api/call/outpaint", json={"data": [data_url] * 5})
    assert r.status_code == 413 and "names 5 images" in r.json()["detail"]
    web = {"url": "https://example.com/image.png", "meta": {"_type": "gradio.FileData"}}
    assert _send(app, "/gradio_api/call/outpaint", json={"data": [web] * 4}).status_code == 413
    assert calls == []
    assert _send(app, "/gradio_api/call/outpaint", json={"data": [{"url": data_url}]}).status_code == 200


def test_what_the_budget_does_not_count(big_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files outside the upload folder (the framework refuses them) and images over the per-image
    limit (Pillow refuses them from their header, as the app sets it) cost nothing; bodies that
    are not JSON pass."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    limit_pillow()
    outside = tmp_path.parent / f"{tmp_path.name}-outside.png"
    outside.write_bytes(big_png.read_bytes())
    bomb = big_png.parent / "bomb.png"
    bomb.write_bytes(grey_png(8000, 8000))
    try:
        assert image_budget.image_pixels(big_png) == WIDTH * HEIGHT
        assert image_budget.refusal(json.dumps({"data": [_ref(outside)] * 4}).encode()) is None
        assert image_budget.refusal(json.dumps({"data": [_ref(bomb)] * 4}).encode()) is None
        assert image_budget.refusal(b"not json") is None
        nested = {"a": [{"b": {"files": [_ref(big_png)] * 2}}, _ref(big_png)], "c": _ref(big_png)}
        assert len(list(image_budget.file_references(nested))) == 4
    finally:
        outside.unlink()


@pytest.mark.slow  # imports gradio (its own editor's route is what is bounded)
def test_the_editor_upload_route_takes_a_few_layers_within_the_pixel_budget(big_png: Path) -> None:
    """The page sends the editor's images through the editor's own upload route (one per call,
    ``index`` names the layer) and then only an id; gradio's handler grows its layer list to the
    index it is given and keeps every edit until it is used."""
    import gradio as gr
    from gradio.data_classes import DataWithFiles
    from starlette.exceptions import HTTPException

    editor = gr.ImageEditor(type="numpy")
    image_budget.bound_editor(editor, max_bytes=100_000)
    png = big_png.read_bytes()

    def blob(kind: str, index: Any = None, edit: str = "e1", data: bytes = png) -> Any:
        return DataWithFiles(data={"type": kind, "index": index, "id": edit}, files=[("x.png", data)])

    with pytest.raises(HTTPException) as far:
        editor.accept_blobs(blob("layer", "1000"))
    assert far.value.status_code == 413 and "at most 2 layers" in far.value.detail
    assert editor.blob_storage == {}
    editor.accept_blobs(blob("background"))
    editor.accept_blobs(blob("layer", "0"))
    editor.accept_blobs(blob("composite"))
    with pytest.raises(HTTPException) as heavy:  # a fourth 16 MP image in the same edit
        editor.accept_blobs(blob("layer", "1"))
    assert heavy.value.status_code == 413 and "too large together" in heavy.value.detail
    assert len(editor.blob_storage["e1"].layers) == 1
    for n in range(100):  # edits never used: the oldest go once they pass the store's bytes
        editor.accept_blobs(blob("background", edit=f"other{n}"))
    assert sum(image_budget.BoundedEdits.size(e) for e in editor.blob_storage.values()) <= 100_000
    assert "e1" not in editor.blob_storage and "other99" in editor.blob_storage


# -- the upload quota and the folder cap ----------------------------------------------------------------------
def test_one_address_may_send_so_many_bytes_in_the_window(tmp_path: Path) -> None:
    calls: list[Any] = []
    app = quota.UploadQuota(_routes(calls), window_s=300, folder=tmp_path, per_client=100_000)
    files = {"files": ("a.png", b"x" * 60_000, "image/png")}
    assert _send(app, "/gradio_api/upload", files=files).status_code == 200
    refused = _send(app, "/gradio_api/upload", files=files)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "300"
    assert refused.json()["detail"].startswith("Too much uploaded: 0 MB in the last 5 minutes, at most 0.0953674 MB")
    assert len(calls) == 1  # refused from its declared length, before the route read it
    assert _send(app, "/gradio_api/upload", client=("10.0.0.2", 1), files=files).status_code == 200

    async def chunks() -> AsyncIterator[bytes]:  # no declared length: counted as it arrives
        for _ in range(20):
            yield b"x" * 10_000

    streamed = _send(app, "/gradio_api/upload", client=("10.0.0.3", 1), content=chunks())
    assert streamed.status_code == 429


def test_the_window_forgets_what_was_sent_before_it() -> None:
    sent = quota.ClientBytes(window_s=60)
    assert sent.add("a", 500, now=0.0) == 500 and sent.add("a", 200, now=30.0) == 700
    assert sent.used("a", now=59.0) == 700 and sent.used("a", now=61.0) == 200 and sent.used("a", now=91.0) == 0
    assert sent.used("b", now=91.0) == 0 and sent._sent == {}


def test_a_full_folder_refuses_files_but_not_api_calls(tmp_path: Path) -> None:
    (tmp_path / "old.bin").write_bytes(b"x" * 200_000)
    calls: list[Any] = []
    app = quota.UploadQuota(_routes(calls), window_s=300, folder=tmp_path, per_client=10**9, folder_max=250_000)
    full = _send(app, "/gradio_api/upload", files={"files": ("a.png", b"x" * 100_000, "image/png")})
    assert full.status_code == 503 and full.json()["detail"].startswith("The server's space for uploads is full")
    assert _send(app, "/gradio_api/call/generate", json={"data": ["class 1", 1]}).status_code == 200
    assert _send(app, "/gradio_api/upload", files={"files": ("a.png", b"x" * 40_000, "image/png")}).status_code == 200
    assert [name for name, _ in calls] == ["generate", "upload"]


# -- which address a request counts against ------------------------------------------------------------------
@pytest.mark.parametrize(
    "env, trusted",
    [
        ({}, False),
        ({"SPACE_ID": "user/space"}, True),
        ({"ARPG_TRUST_PROXY": "1"}, True),
        ({"ARPG_TRUST_PROXY": "off", "SPACE_ID": "user/space"}, False),
    ],
)
def test_forwarded_addresses_count_only_behind_a_trusted_proxy(
    env: dict[str, str], trusted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SPACE_ID", "ARPG_TRUST_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert middleware.trust_proxy() is trusted
    scope = {"client": ("127.0.0.1", 5), "headers": [(b"x-forwarded-for", b"1.2.3.4, 5.6.7.8")]}
    assert middleware.scope_address(scope, middleware.trust_proxy()) == ("5.6.7.8" if trusted else "127.0.0.1")
    from demo import server

    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1")
    assert server.distrust_forwarded_headers() is not trusted
    assert (middleware.os.environ["FORWARDED_ALLOW_IPS"] == "") is not trusted
    assert MAX_PIXELS == 16_000_000  # the budgets above are written for it
