"""Security: checkpoints never run code, no endpoint reads or serves arbitrary paths,
uploads are bounded, and nothing reaches the network at import or start-up.

The app checks run against the in-process app of ``tests/conftest.py`` (random tiny model,
launched with ``demo.ui.launch_options()``, as ``app.py`` does).
"""

from __future__ import annotations

import base64
import functools
import io
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from PIL import Image

from arpg.pipeline import Pipeline
from arpg.state_dicts import CheckpointError, read_state_dict
from tests.conftest import RunningApp, free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWD_LINE = re.compile(r"root:[^:\n]*:0:0:")  # what /etc/passwd would leak
OPTS = [2, "arccos", 2.0, "linear", 1.0, 0, 1.0, "random"]  # steps .. order of every decoding endpoint


# -- checkpoints: weights_only or safetensors, a malicious pickle is refused ---------------------------
class Payload:
    """Unpickling this object creates the directory ``marker`` (a harmless stand-in for any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return os.mkdir, (self.marker,)


def write_malicious(path: Path, marker: Path, how: str) -> Path:
    """A checkpoint-looking file whose unpickling runs ``os.mkdir(marker)``."""
    state = {"state_dict": {"w": torch.zeros(2)}, "extra": Payload(marker)}
    if how == "torch.save":
        torch.save(state, path)
    else:  # a raw pickle under a checkpoint extension
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=int(how.split("-")[1]))
    return path


def test_the_payload_is_live_when_unpickled_unsafely(tmp_path: Path) -> None:
    """Guard for the tests below: the same file does run code through an unsafe load."""
    marker = tmp_path / "pwned"
    path = write_malicious(tmp_path / "evil.pt", marker, "torch.save")
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("how", ["torch.save", "pickle-2", "pickle-4"])
@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt"])
def test_malicious_pickle_is_refused_by_read_state_dict(tmp_path: Path, how: str, suffix: str) -> None:
    marker = tmp_path / "pwned"
    path = write_malicious(tmp_path / f"evil{suffix}", marker, how)
    with pytest.raises(CheckpointError, match="refusing|corrupt|unreadable"):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("which", ["weights", "tokenizer"])
def test_malicious_pickle_is_refused_by_the_pipeline_and_the_cli(
    tmp_path: Path, tiny_files: tuple[Path, Path], capsys: pytest.CaptureFixture, which: str
) -> None:
    from arpg import cli

    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "evil.pt", marker, "torch.save")
    weights, tokenizer = (evil, tiny_files[1]) if which == "weights" else (tiny_files[0], evil)
    with pytest.raises(CheckpointError, match="refusing"):
        Pipeline.from_files(weights, tokenizer, device="cpu")
    assert (
        cli.main(
            [
                "sample",
                "--weights",
                str(weights),
                "--tokenizer",
                str(tokenizer),
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "refusing" in err
    assert not marker.exists() and not (tmp_path / "x.png").exists()


def test_malicious_pickle_makes_the_app_fall_back_without_running_it(
    tmp_path: Path, tiny_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import arpg.pipeline
    from arpg.hub import load_app_pipeline

    monkeypatch.setattr(arpg.pipeline, "SHIPPED_DIR", tmp_path / "no-models")  # fall back to a random model
    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "evil.pt", marker, "torch.save")
    pipe = load_app_pipeline(str(evil), str(tiny_files[1]), device="cpu")
    assert not marker.exists()
    assert "Could not load the requested weights" in pipe.notice and "refusing" in pipe.notice


@pytest.mark.parametrize(
    "name, data", [("weights.pkl", b"\x80\x04K\x01."), ("weights.npy", b"\x93NUMPY"), ("weights", b"\x80\x04K\x01.")]
)
def test_other_file_types_are_refused(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="unsupported file type"):
        read_state_dict(path)


@pytest.mark.parametrize(
    "header",
    [
        b"\xff" * 8 + b"{}",
        (10**15).to_bytes(8, "little") + b"{}",
        (64).to_bytes(8, "little") + b'{"w": {"dtype": "F32", "shape": [1000000000], "data_offsets": [0, 4000000000]}}',
    ],
)
def test_corrupt_safetensors_are_refused(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(header)
    with pytest.raises(CheckpointError):
        read_state_dict(path)


# -- the app: no arbitrary paths through the file routes or the file inputs ---------------------------------
TRAVERSALS = [
    "gradio_api/file=/etc/passwd",
    "file=/etc/passwd",
    "gradio_api/file=../../../etc/passwd",
    "gradio_api/file=..%2F..%2F..%2Fetc%2Fpasswd",
    "gradio_api/file=%2Fetc%2Fpasswd",
    "gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "gradio_api/file=//etc/passwd",
    "gradio_api/file=/tmp/gradio/../../etc/passwd",
    "gradio_api/file/etc/passwd",
    "gradio_api/file/../../etc/passwd",
    "file/etc/passwd",
    "gradio_api/file=file:///etc/passwd",
    "gradio_api/file=/proc/self/environ",
    "gradio_api/file=app.py",
    "gradio_api/file=" + str(ROOT / "app.py"),
    "gradio_api/file=" + str(ROOT / "demo"),
    "static/../../../../etc/passwd",
    "assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "gradio_api/file=\\etc\\passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_file_routes_refuse_paths_outside_the_upload_and_cache_dirs(app_server: RunningApp, path: str) -> None:
    for method in ("GET", "HEAD"):
        r = httpx.request(method, app_server.url + path, timeout=30)
        assert 400 <= r.status_code < 500, (method, path, r.status_code)
        assert not PASSWD_LINE.search(r.text) and "def main" not in r.text


def _call(url: str, api: str, data: list[Any]) -> str:
    """Call ``api`` with a raw JSON payload (what any client can send); the whole event stream."""
    r = httpx.post(f"{url}gradio_api/call/{api}", json={"data": data}, timeout=30)
    if r.status_code != 200:
        return f"HTTP {r.status_code} {r.text}"
    return httpx.get(f"{url}gradio_api/call/{api}/{r.json()['event_id']}", timeout=120).text


@functools.cache
def _parameters(url: str) -> dict[str, list[tuple[str, Any]]]:
    """Each endpoint's (parameter name, default) from the app's API page."""
    info = httpx.get(f"{url}gradio_api/info", timeout=30).json()["named_endpoints"]
    return {
        api: [(p["parameter_name"], p.get("parameter_default")) for p in ep["parameters"]] for api, ep in info.items()
    }


def _payload(url: str, api: str, *values: Any) -> list[Any]:
    """A raw JSON payload for ``api``: ``values`` first, the defaults of the other parameters after."""
    params = _parameters(url)[f"/{api}"]
    return [*values, *(default for _, default in params[len(values) :])]


def _file_inputs(url: str, fd: dict) -> dict[str, list[Any]]:
    """A payload for every endpoint with a file input, ``fd`` in each file slot."""
    return {
        "outpaint": _payload(url, "outpaint", fd, "class 1", ["right"], 2, 1, False, *OPTS),
        "panorama": _payload(url, "panorama", fd, "class 1", "right", 2, 1, False, *OPTS),
        "resize": _payload(url, "resize", fd, "class 1", 2.0, "lattice", 0.5, 1, False, *OPTS),
        "inpaint": _payload(
            url, "inpaint", {"background": fd, "layers": [fd], "composite": fd}, "class 1", 0, True, 1, False, *OPTS
        ),
    }


@pytest.mark.parametrize(
    "target",
    [
        "/etc/passwd",
        "../../../../../../etc/passwd",
        str(ROOT / "app.py"),
        "/proc/self/environ",
        "url:http://127.0.0.1:{port}/gradio_api/file=/etc/passwd",
        "url:file:///etc/passwd",
    ],
)
def test_file_inputs_refuse_files_that_were_not_uploaded(app_server: RunningApp, target: str) -> None:
    port = app_server.url.rstrip("/").rsplit(":", 1)[1]
    if target.startswith("url:"):
        fd = {"path": "image.png", "url": target[4:].format(port=port), "meta": {"_type": "gradio.FileData"}}
    else:
        fd = {"path": target, "meta": {"_type": "gradio.FileData"}}
    for api, data in _file_inputs(app_server.url, fd).items():
        stream = _call(app_server.url, api, data)
        assert "event: error" in stream or stream.startswith("HTTP 4"), (api, stream[-300:])
        assert not PASSWD_LINE.search(stream) and "def main" not in stream


def test_saved_results_never_reads_outside_its_folder(app_server: RunningApp) -> None:
    for name in ("../../../../../../etc/passwd", "/etc/passwd", "..", "tiny.json/../../../etc/passwd", ""):
        stream = _call(app_server.url, "saved_results", _payload(app_server.url, "saved_results", name))
        assert not PASSWD_LINE.search(stream)
        assert "tiny.json" in stream  # the choice falls back to a file of the listing


# -- uploads: bounded in bytes and in pixels; served as attachments -----------------------------------------
def test_upload_limit_is_the_app_setting(app_server: RunningApp) -> None:
    from demo.ui import launch_options

    assert launch_options()["max_file_size"] == "10mb"
    assert app_server.demo.max_file_size == 10 * 1024 * 1024


def test_uploads_over_the_limit_are_refused(app_server: RunningApp) -> None:
    limit = app_server.demo.max_file_size
    r = httpx.post(
        app_server.url + "gradio_api/upload", files={"files": ("big.png", b"\0" * (limit + 1), "image/png")}, timeout=60
    )
    assert r.status_code == 413 and "maximum allowed size" in r.text
    r = httpx.post(
        app_server.url + "gradio_api/upload", files={"files": ("ok.png", b"\0" * 1024, "image/png")}, timeout=60
    )
    assert r.status_code == 200


def test_uploads_over_the_limit_are_refused_through_the_client(app_server: RunningApp, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (app_server.demo.max_file_size + 1))
    client = Client(app_server.url, verbose=False)
    with pytest.raises(Exception, match="413|size|large"):
        client.predict(handle_file(str(big)), "class 1", ["right"], 2, 1, False, *OPTS, api_name="/outpaint")


def _upload_png(url: str, image: Image.Image) -> dict:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    r = httpx.post(url + "gradio_api/upload", files={"files": ("image.png", buf.getvalue(), "image/png")}, timeout=60)
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("size", [(8000, 8000), (9000, 9000), (20000, 20000)])
def test_images_with_too_many_pixels_are_refused(app_server: RunningApp, size: tuple[int, int]) -> None:
    """A few kB of PNG can claim tens or hundreds of megapixels (8000x8000 is exactly 64 MP): the
    app makes Pillow refuse anything over the decoded-size budget (arpg.images.MAX_PIXELS, 16 MP)
    when the upload is opened, before it is decoded, and says so in one plain sentence."""
    fd = _upload_png(app_server.url, Image.new("1", size))
    stream = _call(app_server.url, "outpaint", _file_inputs(app_server.url, fd)["outpaint"])
    megapixels = f"{size[0] * size[1] / 1e6:.1f}"
    assert f"The image is too large ({megapixels} megapixels): at most 16 megapixels" in stream, stream[-300:]
    assert "/tmp" not in stream and "decompression bomb" not in stream


def test_undecodable_uploads_get_one_plain_sentence(app_server: RunningApp) -> None:
    r = httpx.post(
        app_server.url + "gradio_api/upload", files={"files": ("x.png", b"not a PNG", "image/png")}, timeout=30
    )
    fd = {"path": r.json()[0], "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}}
    stream = _call(app_server.url, "outpaint", _file_inputs(app_server.url, fd)["outpaint"])
    assert "The uploaded file is not an image that can be read: use PNG, JPEG or WebP." in stream, stream[-300:]
    assert "/tmp" not in stream and "preprocess" not in stream


def test_a_30_mb_data_url_gets_413_before_it_is_decoded(app_server: RunningApp) -> None:
    """The 10 MB upload limit cannot be bypassed by sending the image inside the JSON body."""
    fd = {
        "url": "data:image/png;base64," + base64.b64encode(os.urandom(30 * 2**20)).decode(),
        "meta": {"_type": "gradio.FileData"},
    }
    for api in ("outpaint", "resize"):
        r = httpx.post(
            f"{app_server.url}gradio_api/call/{api}", json={"data": _file_inputs(app_server.url, fd)[api]}, timeout=60
        )
        assert r.status_code == 413 and "too large" in r.text, (api, r.status_code, r.text[:200])


def test_uploaded_html_is_served_as_an_attachment(app_server: RunningApp) -> None:
    r = httpx.post(
        app_server.url + "gradio_api/upload",
        files={"files": ("x.html", b"<script>alert(1)</script>", "text/html")},
        timeout=30,
    )
    served = httpx.get(app_server.url + "gradio_api/file=" + r.json()[0], timeout=30)
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["content-disposition"].startswith("attachment")


# -- no network at import or start-up; no secrets in the tree ------------------------------------------------
NETWORK_PROBE = textwrap.dedent("""
    import json, os, socket, sys, time
    attempts = {"phase": "import", "import": [], "start-up, analytics off": [], "start-up, defaults": []}
    LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0", None}
    real_connect, real_gai = socket.socket.connect, socket.getaddrinfo

    def connect(self, addr):
        if isinstance(addr, tuple) and addr[0] not in LOCAL:
            attempts[attempts["phase"]].append(f"connect {addr[0]}")
            raise OSError("network disabled by the test")
        return real_connect(self, addr)

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOCAL:
            attempts[attempts["phase"]].append(f"resolve {host}")
            raise socket.gaierror("network disabled by the test")
        return real_gai(host, *args, **kwargs)

    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
    sys.path.insert(0, os.getcwd())
    import torch
    torch.set_num_threads(1)
    import arpg, arpg.cli, arpg.pipeline, arpg.sampling, arpg.tasks, arpg.checkpoints
    import arpg.hub, arpg.viz.animate, arpg.viz.plots, demo.ui, app
    from demo.parts import decoding, downloads, errors, gpu, model_choice, pictures, runner, widgets
    from demo.tabs import generate, inpaint, outpaint, resolution, tradeoffs, tradeoffs_results, visualize

    def start(phase):
        attempts["phase"] = phase
        pipe = arpg.hub.load_app_pipeline(device="cpu")
        ui = demo.ui.build_demo(pipe)
        ui.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=int(sys.argv[1]), quiet=True,
                  **demo.ui.launch_options())
        time.sleep(3)  # background threads started by the launch
        ui.close()

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    start("start-up, analytics off")
    del os.environ["GRADIO_ANALYTICS_ENABLED"]
    start("start-up, defaults")
    time.sleep(2)
    print("ATTEMPTS " + json.dumps(attempts))
""")


@pytest.fixture(scope="module")
def network_attempts() -> dict[str, list[str]]:
    """Import everything, then start the app twice, in a subprocess whose sockets refuse
    anything but loopback; ``HF_HUB_OFFLINE`` and ``GRADIO_ANALYTICS_ENABLED`` unset."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "GRADIO_ANALYTICS_ENABLED")}
    r = subprocess.run(
        [sys.executable, "-c", NETWORK_PROBE, str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("ATTEMPTS ")), None)
    assert r.returncode == 0 and line, r.stderr[-2000:]
    return json.loads(line[len("ATTEMPTS ") :])


@pytest.mark.slow
def test_no_network_at_import(network_attempts: dict[str, list[str]]) -> None:
    assert network_attempts["import"] == []


def test_no_network_at_start_up_with_analytics_off(network_attempts: dict[str, list[str]]) -> None:
    """As the tests and ``scripts/test.sh`` run it (``GRADIO_ANALYTICS_ENABLED=False``)."""
    assert network_attempts["start-up, analytics off"] == []


def test_no_network_at_start_up_with_gradio_defaults(network_attempts: dict[str, list[str]]) -> None:
    assert network_attempts["start-up, defaults"] == []


SECRET_PATTERNS = {
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "AWS key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9]{32,}\b"),
    "password assignment": re.compile(r"(?i)\b(password|passwd|secret|api_key|token)\s*=\s*['\"][^'\"\s]{8,}['\"]"),
}


def test_no_secrets_in_tracked_files() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000 or path.suffix in (".png", ".gif", ".safetensors"):
            continue
        text = path.read_text(errors="ignore")
        found += [f"{name}: {what}" for what, pattern in SECRET_PATTERNS.items() if pattern.search(text)]
    assert found == []


def test_secret_patterns_catch_a_planted_token() -> None:
    token = "hf_" + "a1B2" * 9
    assert SECRET_PATTERNS["Hugging Face token"].search(f"token: {token}")
    assert SECRET_PATTERNS["password assignment"].search('api_key = "' + 'abcdefgh12345"')
