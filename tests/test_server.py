"""The server's defences (:mod:`demo.server`): a body limit on every route, plain error texts, a
fair queue, clean exits and the purge. Pure pieces are tested directly; the rest against a real
gradio server (a small app with the same kinds of inputs, hardened exactly as ``app.py`` does)
and, for signals, a server in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from PIL import Image

from arpg.images import MAX_PIXELS
from demo import middleware, server
from tests.conftest import free_port
from tests.test_images import grey_png

ROOT = Path(__file__).resolve().parents[1]


# -- pure pieces ------------------------------------------------------------------------------------------
PREPROCESS = (
    "Could not preprocess input component at index {i} (a `image` component) of the event handler "
    '(named "outpaint") with input components: [image, dropdown].\n\nExpected a `ImageData | None`, '
    "but the value passed to the event handler was: {{'path': '/tmp/gradio/ab12/x.png'}}.\n\n"
    "Original error: {error}"
)


@pytest.mark.parametrize(
    "text, want",
    [
        (
            PREPROCESS.format(i=0, error="UnidentifiedImageError: cannot identify image file '/tmp/gradio/ab12/x.png'"),
            "The uploaded file is not an image that can be read: use PNG, JPEG or WebP.",
        ),
        (
            PREPROCESS.format(
                i=0,
                error="DecompressionBombError: Image size (64000000 pixels) exceeds limit of "
                "16000000 pixels, could be decompression bomb DOS attack.",
            ),
            f"The image is too large (64.0 megapixels): at most {MAX_PIXELS / 1e6:g} megapixels. Scale it down first.",
        ),
        (
            PREPROCESS.format(i=2, error="ValueError: Image path is None."),
            "Input 3 (the image) has the wrong type or format.",
        ),
        (
            "Cannot move /etc/passwd to the gradio cache dir because it was not uploaded by a user.",
            "Cannot move <file> to the gradio cache dir because it was not uploaded by a user.",
        ),
        ("seed must be an integer", "Seed must be an integer."),
        (None, "The request has the wrong form: check the API page for each input's type."),
    ],
)
def test_framework_texts_become_one_plain_sentence(text: Any, want: str) -> None:
    assert middleware.plain_message(text) == want


def test_echoed_inputs_are_cut_to_80_characters() -> None:
    text = middleware.plain_message("Value: " + "x" * 20_000 + " is not in the list of choices: ['class 0', 'class 1']")
    assert text.endswith("is not one of the choices: 'class 0', 'class 1'.") and len(text) < 160
    assert len(middleware.plain_message("y" * 20_000)) == middleware.MAX_MESSAGE + 1  # cut, with a full stop


def test_event_streams_and_json_errors_are_rewritten() -> None:
    call_api = 'event: error\ndata: {"error": "Cannot move /etc/passwd to the cache", "visible": true}'
    assert "/etc/passwd" not in middleware._rewrite_event(call_api) and "<file>" in middleware._rewrite_event(call_api)
    queue = 'data: {"msg": "process_completed", "output": {"error": "/a/b/c failed"}, "success": false}'
    assert json.loads(middleware._rewrite_event(queue)[6:])["output"]["error"] == "<file> failed."
    fine = 'data: {"msg": "progress", "output": {"data": ["/tmp/x/y.png"]}}'
    assert middleware._rewrite_event(fine) == fine
    pydantic = json.dumps(
        {
            "detail": [
                {
                    "type": "list_type",
                    "loc": ["body", "data"],
                    "msg": "Input should be a valid list",
                    "input": "x" * 10_000,
                    "url": "https://errors.pydantic.dev/",
                }
            ]
        }
    )
    assert json.loads(middleware._rewrite_json(pydantic.encode())) == {
        "detail": "The request has the wrong form at data: input should be a valid list."
    }


def _asgi_app(limit: int) -> Any:
    api = FastAPI()

    @api.post("/echo")
    async def echo(body: dict) -> dict:
        return {"n": len(json.dumps(body))}

    return middleware.PlainErrors(middleware.BodyLimit(api, max_bytes=limit))


def _post(app: Any, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.post("/echo", **kw)

    return asyncio.run(go())


def test_the_body_limit_answers_413_with_or_without_a_length() -> None:
    app = _asgi_app(1000)
    assert _post(app, json={"a": "x" * 500}).json() == {"n": 509}
    big = _post(app, json={"a": "x" * 5000})
    assert big.status_code == 413 and big.json()["detail"].startswith("The request is too large")

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * 400

    streamed = _post(app, content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    wrong = _post(app, json=["not", "a", "dict"])
    assert wrong.status_code == 422 and "pydantic" not in wrong.text and "'not'" not in wrong.text


def _event(session: str, host: str, forwarded: str | None = None) -> Any:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return SimpleNamespace(
        session_hash=session, request=SimpleNamespace(client=SimpleNamespace(host=host), headers=headers)
    )


def test_the_fair_queue_counts_sessions_and_addresses() -> None:
    waiting = [_event("a", "10.0.0.1")] * 3 + [_event(f"s{i}", "10.0.0.2") for i in range(5)]
    queue = SimpleNamespace(
        event_queue_per_concurrency_id={"x": SimpleNamespace(queue=waiting)},
        active_jobs=[[_event("a", "10.0.0.1")], None],
    )
    fair = server.FairQueue(per_session=4, per_address=5, trust_forwarded=False)
    assert "4 requests" in fair.refusal(queue, "a", "10.0.0.1")
    assert fair.refusal(queue, "b", "10.0.0.1") is None
    assert "Your address" in fair.refusal(queue, "new", "10.0.0.2")  # a new session per call does not help
    behind_proxy = server.FairQueue(trust_forwarded=True)
    assert behind_proxy.address(_event("a", "10.9.9.9", "1.2.3.4, 5.6.7.8").request) == "5.6.7.8"
    assert fair.address(_event("a", "10.9.9.9", "1.2.3.4").request) == "10.9.9.9"


def test_the_purge_removes_old_files_and_keeps_new_and_kept_ones(tmp_path: Path) -> None:
    old_dir, new_dir, empty_old = tmp_path / "hash1", tmp_path / "hash2", tmp_path / "hash3"
    for d in (old_dir, new_dir, empty_old):
        d.mkdir()
    (old_dir / "partial.png").write_bytes(b"x" * 100)
    (tmp_path / "example.png").write_bytes(b"x" * 10)
    (tmp_path / "fresh.png").write_bytes(b"x" * 10)
    past = time.time() - 600
    for p in (old_dir / "partial.png", tmp_path / "example.png", empty_old):
        os.utime(p, (past, past))
    assert server.purge(tmp_path, 300, keep=[str(tmp_path / "example.png")]) == (1, 100)
    # hash1 was emptied just now and hash2 is new (gradio may be about to write into it): later purges remove them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.png", "fresh.png", "hash1", "hash2"]
    stop = server.start_purging(tmp_path, every_s=0.05, max_age_s=0)
    time.sleep(0.5)
    stop.set()
    assert list(tmp_path.iterdir()) == []


def test_freed_memory_goes_back_to_the_system_once_per_burst_while_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trimmer looks at the queue every tick: no trim while a request is queued, one once idle,
    none more until the queue accepts another request, and its thread ends once the app closes."""
    trims: list[int] = []
    looked = threading.Semaphore(0)
    jobs: list[Any] = [_event("a", "10.0.0.1")]

    class Queue:
        active_jobs: list[Any] = []

        @property
        def event_queue_per_concurrency_id(self) -> dict[str, Any]:
            looked.release()
            return {"x": SimpleNamespace(queue=list(jobs))}

    class Blocks:
        is_running = True
        _queue = Queue()
        _arpg_fair_queue = SimpleNamespace(accepted=3)

    def ticks(n: int) -> None:
        for _ in range(n):
            assert looked.acquire(timeout=30)

    monkeypatch.setattr(server, "trim", lambda: trims.append(len(jobs)))
    blocks, before = Blocks(), set(threading.enumerate())
    stop = server.start_trimming(blocks, every_s=0.01)
    (thread,) = [t for t in threading.enumerate() if t.name == "trim-memory" and t not in before]
    try:
        ticks(5)  # a request waiting
        assert trims == []
        jobs.clear()
        ticks(6)
        assert trims == [0]  # once, not on every idle tick
        blocks._arpg_fair_queue.accepted += 1  # a burst came and went between two ticks
        ticks(6)
        assert trims == [0, 0]
        blocks.is_running = False  # closed
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        stop.set()


def test_downloads_still_work_after_the_purge_removed_their_empty_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The download folder lives in the purged folder: once it is empty and old the purge removes
    it, and the next animation must get a new one (a short purge age stands for the 5 minutes)."""
    from demo.parts import downloads

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what prepare_process does for the app's folder
    monkeypatch.setattr(downloads, "_OUT_DIR", None)
    first = downloads.out_path("animation", ".gif")
    first.unlink()  # gradio copied it into its own cache; the download folder is empty now
    past = time.time() - 10
    os.utime(first.parent, (past, past))
    server.purge(tmp_path, max_age_s=1)
    assert not first.parent.exists()
    for _ in range(2):
        again = downloads.out_path("animation", ".gif")
        assert again.is_file() and again.parent == first.parent


# -- against a real server --------------------------------------------------------------------------------
def build_app(release: threading.Event) -> Any:
    """A small app with the app's kinds of inputs: an image, an image editor (whose decodes are
    counted in ``demo.decoded``), a dropdown, a number, a slow event."""
    import gradio as gr

    with gr.Blocks(analytics_enabled=False) as demo:
        image, choice, number, out = (
            gr.Image(type="numpy"),
            gr.Dropdown(["class 0", "class 1"]),
            gr.Number(),
            gr.Textbox(),
        )
        editor = gr.ImageEditor(type="numpy", image_mode="RGBA", layers=False)
        gr.Button().click(lambda a: f"{a.shape}", image, out, api_name="shape")
        gr.Button().click(lambda e: f"{len(e['layers'])} layers", editor, out, api_name="edit")
        gr.Button().click(lambda c, x: f"{c} {x}", [choice, number], out, api_name="pick")
        gr.Button().click(lambda x: "done" if release.wait(60) else "timeout", number, out, api_name="wait")
    demo.queue(default_concurrency_limit=2, max_size=32)
    demo.decoded = []  # type: ignore[attr-defined]
    decode = editor.convert_and_format_image

    def counted(*args: Any, **kwargs: Any) -> Any:
        demo.decoded.append(1)  # type: ignore[attr-defined]
        return decode(*args, **kwargs)

    editor.convert_and_format_image = counted
    return server.harden(demo)


class Served(NamedTuple):
    url: str
    release: threading.Event
    demo: Any


@pytest.fixture(scope="module")
def hardened() -> Iterator[Served]:
    before = Image.MAX_IMAGE_PIXELS
    server.limit_pillow()
    release = threading.Event()
    demo = build_app(release)
    port = free_port()
    demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=port,
        quiet=True,
        show_error=True,
        app_kwargs=server.app_kwargs(),
    )
    try:
        yield Served(f"http://127.0.0.1:{port}/", release, demo)
    finally:
        release.set()
        demo.close()
        Image.MAX_IMAGE_PIXELS = before


def _call(url: str, api: str, data: Any) -> str:
    r = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=30)
    if r.status_code != 200:
        return f"HTTP {r.status_code} {r.text}"
    return httpx.get(f"{url}gradio_api/call/{api}/{r.json()['event_id']}", timeout=60).text


def _error(stream: str) -> str:
    assert "event: error" in stream, stream[-300:]
    return json.loads(stream.split("event: error\ndata:", 1)[1].split("\n", 1)[0])["error"]


def _upload(url: str, data: bytes, name: str = "image.png") -> dict:
    r = httpx.post(url + "gradio_api/upload", files={"files": (name, data, "image/png")}, timeout=60)
    r.raise_for_status()
    return {"path": r.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def _data_url(data: bytes) -> dict:
    return {"url": "data:image/png;base64," + base64.b64encode(data).decode(), "meta": {"_type": "gradio.FileData"}}


@pytest.mark.slow
def test_a_30_mb_data_url_gets_413_before_it_is_decoded(hardened: Served) -> None:
    url = hardened.url
    small = io.BytesIO()
    Image.new("RGB", (8, 6)).save(small, "PNG")
    assert '"(6, 8, 3)"' in _call(url, "shape", [_data_url(small.getvalue())])
    body = json.dumps({"data": [_data_url(os.urandom(30 * 2**20))]})
    for route in ("gradio_api/call/shape", "gradio_api/queue/join", "gradio_api/upload"):
        t0 = time.monotonic()
        r = httpx.post(url + route, content=body, headers={"content-type": "application/json"}, timeout=60)
        assert r.status_code == 413 and "too large: at most 12 MB" in r.json()["detail"], (route, r.text[:200])
        assert time.monotonic() - t0 < 10


@pytest.mark.slow
def test_undecodable_and_oversized_images_get_one_plain_sentence(hardened: Served) -> None:
    url = hardened.url
    bad = _error(_call(url, "shape", [_upload(url, b"not an image at all", "bad.png")]))
    assert bad == "The uploaded file is not an image that can be read: use PNG, JPEG or WebP."
    bomb = _error(_call(url, "shape", [_upload(url, grey_png(8000, 8000))]))  # 62 kB, 64 MP
    assert bomb.startswith("The image is too large (64.0 megapixels): at most 16 megapixels")
    bomb = _error(_call(url, "shape", [_data_url(grey_png(8000, 8000))]))
    assert bomb.startswith("The image is too large (64.0 megapixels)")


@pytest.mark.slow
def test_wrong_types_and_huge_values_get_short_plain_messages(hardened: Served) -> None:
    url = hardened.url
    wrong = _call(url, "pick", "not a list")
    assert wrong.startswith("HTTP 422") and "pydantic" not in wrong and "http" not in wrong.lower()[9:]
    assert _error(_call(url, "shape", [{"x": 1}])) == "Input 1 (the image) has the wrong type or format."
    huge = _error(_call(url, "pick", ["x" * 200_000, 1]))
    assert "is not one of the choices: 'class 0', 'class 1'" in huge and len(huge) < 200
    assert "/tmp" not in _call(url, "shape", [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}])


@pytest.mark.slow
def test_one_client_cannot_fill_the_queue(hardened: Served) -> None:
    """Client A submits 50 slow jobs: 4 are queued, the rest refused at once; client B is still
    queued and served. Raw API calls (a new session each) are bounded per address."""
    from gradio_client import Client

    url, release = hardened.url, hardened.release
    release.clear()
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    jobs = [a.submit(i, api_name="/wait") for i in range(50)]
    refused: list[str] = []
    deadline = time.monotonic() + 30  # refusals come back at once; on a busy machine "at once" can take seconds
    while time.monotonic() < deadline and len(refused) < 50 - server.PER_SESSION:
        time.sleep(0.2)
        # refused: HTTP 503, which gradio_client words "Queue is full! Please try again."
        refused = [str(j.exception()) for j in jobs if j.done() and j.exception() is not None]
    time.sleep(1.0)  # none of the queued ones is refused later
    refused = [str(j.exception()) for j in jobs if j.done() and j.exception() is not None]
    assert len(refused) == 50 - server.PER_SESSION and all("Queue is full" in r for r in refused), refused[:2]
    other = b.submit(99, api_name="/wait")
    time.sleep(1.0)
    assert not other.done()  # queued behind A's jobs, not refused
    release.set()
    assert other.result(timeout=60) == "done"
    assert sum(j.result(timeout=60) == "done" for j in jobs if not j.exception(timeout=60)) == server.PER_SESSION
    release.clear()
    answers = [httpx.post(f"{url}gradio_api/call/wait", json={"data": [i]}, timeout=30) for i in range(20)]
    release.set()
    assert [r.status_code for r in answers] == [200] * server.PER_ADDRESS + [503] * (20 - server.PER_ADDRESS)
    assert answers[-1].json()["detail"].startswith("Your address already has 16 requests queued or running")


def _drain(served: Served) -> None:
    """Wait until the jobs of earlier tests have left the queue (a failsafe of 60 s)."""
    served.release.set()
    for _ in range(600):
        if not server.FairQueue.jobs(served.demo._queue):
            return
        time.sleep(0.1)


@pytest.mark.slow
def test_a_forwarded_address_from_a_local_client_does_not_lift_the_address_cap(hardened: Served) -> None:
    """Without a trusted proxy, a client on the same machine that names a new address in
    ``X-Forwarded-For`` on every call is still one address."""
    url, release = hardened.url, hardened.release
    _drain(hardened)
    release.clear()
    answers = [
        httpx.post(
            f"{url}gradio_api/call/wait",
            json={"data": [i]},
            headers={"x-forwarded-for": f"198.51.100.{i}"},
            timeout=30,
        )
        for i in range(20)
    ]
    release.set()
    assert [r.status_code for r in answers] == [200] * server.PER_ADDRESS + [503] * (20 - server.PER_ADDRESS)


@pytest.mark.slow
def test_an_editor_value_with_64_layers_is_refused_without_decoding_any(hardened: Served) -> None:
    """One small, highly compressed 16 MP PNG named 64 times: refused with a plain sentence before
    the framework decodes a single layer; one layer is served."""
    url, decoded = hardened.url, hardened.demo.decoded
    ref = _upload(url, grey_png(4000, 3990))  # 15.96 MP in about 15 kB
    many = {"background": ref, "layers": [ref] * 64, "composite": ref}
    decoded.clear()
    refused = _call(url, "edit", [many])
    assert refused.startswith("HTTP 413") and "at most 4 in one request" in refused and decoded == []
    ok = _call(url, "edit", [{"background": ref, "layers": [ref], "composite": ref}])
    assert '"1 layers"' in ok and len(decoded) == 3


@pytest.mark.slow
def test_the_editors_own_upload_route_refuses_a_far_layer(hardened: Served) -> None:
    """The page sends an edit's images one by one to the editor's route, the layer's number in
    ``index``; gradio would grow its list of layers to any number it is given."""
    editor = next(b for b in hardened.demo.blocks.values() if hasattr(b, "blob_storage"))
    png = io.BytesIO()
    Image.new("RGBA", (8, 8)).save(png, "PNG")

    def send(index: str) -> httpx.Response:
        fields = {"session_hash": "s1", "component_id": str(editor._id), "fn_name": "accept_blobs"}
        fields.update(type="layer", index=index, id="edit-1")
        files = {"file": ("layer.png", png.getvalue(), "image/png")}
        return httpx.post(hardened.url + "gradio_api/component_server", data=fields, files=files, timeout=30)

    far = send("100000000")
    assert far.status_code == 413 and far.json()["detail"] == "The image editor takes at most 2 layers."
    assert "edit-1" not in editor.blob_storage
    assert send("0").status_code == 200 and len(editor.blob_storage["edit-1"].layers) == 1


CHILD = textwrap.dedent("""
    import sys, tempfile, threading, time
    from demo import server
    folder = server.prepare_process()  # before gradio is imported, as app.py does
    from tests.test_server import build_app
    downloads = tempfile.mkdtemp(prefix="arpg-sandbox-")  # what the app's download folder does
    open(downloads + "/animation.gif", "wb").write(b"GIF89a")
    demo = build_app(threading.Event())
    print("FOLDER", folder, flush=True)
    demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True, app_kwargs=server.app_kwargs())
    print("CLOSED", flush=True)
""")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_leaves_no_temporary_files(sig: signal.Signals) -> None:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        line = child.stdout.readline()
        while line and not line.startswith("FOLDER "):
            line = child.stdout.readline()
        folder = Path(line.split(" ", 1)[1].strip())
        url = f"http://127.0.0.1:{port}/"
        for _ in range(120):  # wait until it serves
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        img = io.BytesIO()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img, "PNG")
        assert '"(8, 8, 3)"' in _call(url, "shape", [_upload(url, img.getvalue())])
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert len(files) >= 2, files  # the upload, the download file
        child.send_signal(sig)
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert not folder.exists(), out[-2000:]


BUSY_CHILD = textwrap.dedent("""
    import os, sys, threading, time
    from demo import server
    folder = server.prepare_process()
    from tests.test_server import build_app

    def write(n):  # a request saving its outputs, as gradio does: it makes its folders again as needed
        i = 0
        while True:
            i += 1
            time.sleep(0.001)
            out = folder / f"job{n}" / str(i % 50)
            try:
                os.makedirs(out, exist_ok=True)
                with open(out / "frame.png", "wb") as f:
                    f.write(b"x" * 4096)
            except OSError:
                pass

    for n in range(4):
        threading.Thread(target=write, args=(n,), daemon=True).start()
    demo = build_app(threading.Event())
    print("FOLDER", folder, flush=True)
    demo.launch(server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True, app_kwargs=server.app_kwargs())
""")


@pytest.mark.slow
@pytest.mark.parametrize("gap_s", [0.0, 0.02, 0.3])
def test_a_second_sigterm_under_load_leaves_no_temporary_files(gap_s: float) -> None:
    """Threads keep writing into the temporary folder (requests saving outputs) when SIGTERM comes
    twice, the second during the cleanup of the first or during the shutdown: nothing is left."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", BUSY_CHILD, str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = child.stdout.readline()
        while line and not line.startswith("FOLDER "):
            line = child.stdout.readline()
        folder = Path(line.split(" ", 1)[1].strip())
        for _ in range(120):  # wait until it serves
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert any(folder.rglob("frame.png"))
        child.send_signal(signal.SIGTERM)
        time.sleep(gap_s)
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    left = [str(p) for p in folder.parent.glob(folder.name + "*")]
    assert not left, (left, child.returncode, out[-2000:])
