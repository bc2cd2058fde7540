"""Faults and concurrency: an exception inside one request (out of memory, a bug) reaches
that user only and the next request succeeds; concurrent decodes give exactly the images of
sequential ones (no shared mutable state); the queue is bounded and says so when full, and one
address cannot fill it (the fair queue of :mod:`demo.server`).

The app is launched in-process on a random tiny model, like ``tests/conftest.py`` does, but
on its own (this module patches its pipeline and fills its queue).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from arpg import tasks
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline
from arpg.tasks import canvas as canvas_tasks  # the canvas tasks' one decode, patched
from demo import server
from tests.conftest import free_port

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

FAULT_SEED = 666  # requests with this seed hit the simulated fault
OPTS = dict(steps=2)


class App:
    """The app on a random tiny model, hardened as ``app.py`` serves it; its pipeline and its URL."""

    def __init__(self) -> None:
        from demo.ui import build_demo, launch_options

        self.pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
        self.demo = server.harden(build_demo(self.pipe))
        port = free_port()
        self.demo.launch(
            prevent_thread_lock=True,
            server_port=port,
            server_name="127.0.0.1",
            quiet=True,
            **launch_options(app_kwargs=server.app_kwargs()),
        )
        self.url = f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def app() -> Iterator[App]:
    a = App()
    try:
        yield a
    finally:
        a.demo.close()


@pytest.fixture(scope="module")
def client(app: App) -> Client:
    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def image_png(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("inputs") / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def brush_png(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("inputs") / "brush.png"
    m = np.zeros((16, 16, 4), np.uint8)
    m[:8, :8] = (255, 46, 136, 255)
    Image.fromarray(m).save(path)
    return str(path)


def requests(image: str, brush: str, seed: int) -> dict[str, tuple[tuple, dict]]:
    """(args, kwargs) of one call of every endpoint that decodes, with ``seed``."""
    editor = {"background": handle_file(image), "layers": [handle_file(brush)], "composite": None}
    return {
        "/generate": (("class 3", 1, seed, False), OPTS),
        "/inpaint": ((editor, "class 1", 0, True, seed, False), OPTS),
        "/outpaint": ((handle_file(image), "class 1", ["right"], 2, seed, False), OPTS),
        "/panorama": ((handle_file(image), "class 1", "right", 2, seed, False), OPTS),
        "/resize": ((handle_file(image), "class 1", 2.0, "lattice", 0.5, seed, False), OPTS),
        "/animate": (("class 4", "random", 2, seed, False, 8), {}),
        "/side_by_side": (("class 4", "random", "raster", 2, seed, False, 8), {}),
        "/compare": (("class 4", 2, seed, False, 8), {}),
    }


def fail_on_seed(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, exc: Callable[[], BaseException]) -> list[int]:
    """Make ``pipe.generate`` raise ``exc()`` for :data:`FAULT_SEED` (and only for it); the
    list returned collects the seeds that failed."""
    real = pipe.generate
    failed: list[int] = []

    def generate(labels: Any, options: SamplingOptions | None = None, *, seed: int | None = None, **kw: Any) -> Any:
        if seed == FAULT_SEED:
            failed.append(seed)
            raise exc()
        return real(labels, options, seed=seed, **kw)

    def canvas(
        pipe_: Any, labels: Any, options: SamplingOptions | None = None, *, seed: int | None = None, **kw: Any
    ) -> Any:  # windowed decoding of a canvas larger than the trained grid
        if seed == FAULT_SEED:
            failed.append(seed)
            raise exc()
        return real_canvas(pipe_, labels, options, seed=seed, **kw)

    real_canvas = canvas_tasks.generate_canvas
    monkeypatch.setattr(pipe, "generate", generate)
    monkeypatch.setattr(canvas_tasks, "generate_canvas", canvas)
    return failed


# -- faults ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "endpoint", ["/generate", "/inpaint", "/outpaint", "/panorama", "/resize", "/animate", "/side_by_side", "/compare"]
)
def test_out_of_memory_reaches_that_user_only(
    app: App, client: Client, image_png: str, brush_png: str, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    """Two users at once: the one whose request runs out of memory gets a plain message, the
    other one its result; the first user's next request succeeds."""
    failed = fail_on_seed(
        app.pipe,
        monkeypatch,
        lambda: RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.15 GiB total capacity)"),
    )
    other = Client(app.url, verbose=False)
    args, kw = requests(image_png, brush_png, FAULT_SEED)[endpoint]
    ok_args, ok_kw = requests(image_png, brush_png, 5)[endpoint]
    bad_job = client.submit(*args, **kw, api_name=endpoint)
    good_job = other.submit(*ok_args, **ok_kw, api_name=endpoint)
    with pytest.raises(Exception, match="Out of memory") as err:
        bad_job.result(timeout=120)
    assert "Traceback" not in str(err.value) and "CUDA" not in str(err.value)
    good = good_job.result(timeout=120)
    assert good is not None and failed == [FAULT_SEED]
    again = client.predict(*ok_args, **ok_kw, api_name=endpoint)  # the same user, next request
    assert again is not None


@pytest.mark.parametrize(
    "exc, message",
    [
        (lambda: MemoryError(), "Out of memory"),
        (lambda: ZeroDivisionError("division by zero"), "Something went wrong (ZeroDivisionError"),
        (lambda: KeyError("lost"), "Lost"),
        (lambda: OSError("disk full"), "Something went wrong (OSError"),
    ],
)
def test_any_exception_is_one_plain_message_and_the_app_keeps_serving(
    app: App, client: Client, monkeypatch: pytest.MonkeyPatch, exc: Callable, message: str
) -> None:
    fail_on_seed(app.pipe, monkeypatch, exc)
    with pytest.raises(Exception, match=message.replace("(", r"\(")) as err:
        client.predict("class 3", 1, FAULT_SEED, False, **OPTS, api_name="/generate")
    assert "Traceback" not in str(err.value)
    gallery, seed, _ = client.predict("class 3", 1, 7, False, **OPTS, api_name="/generate")
    assert seed == 7 and len(gallery) == 1


def test_a_fault_in_the_tokenizer_is_contained_too(app: App, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    real = app.pipe.decode
    calls = {"n": 0}

    def decode(tokens: torch.Tensor) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(tokens)

    monkeypatch.setattr(app.pipe, "decode", decode)
    with pytest.raises(Exception, match="Something went wrong"):
        client.predict("class 4", "random", 2, 1, False, 8, api_name="/animate")
    assert client.predict("class 4", "random", 2, 1, False, 8, api_name="/animate")[3] == 1


# -- concurrency: no shared mutable state --------------------------------------------------------------------
def test_concurrent_generate_calls_equal_sequential_ones() -> None:
    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    seeds = list(range(12))
    options = SamplingOptions(steps=3, order="random", temperature=1.0, cfg_scale=3.0)

    def run(seed: int) -> np.ndarray:
        return pipe.generate([seed % 10, (seed + 3) % 10], options, seed=seed).images

    sequential = [run(s) for s in seeds]
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = list(pool.map(run, seeds))
    for s, a, b in zip(seeds, sequential, concurrent):
        assert np.array_equal(a, b), f"seed {s} differs when decoded concurrently"


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_concurrent_tasks_equal_sequential_ones() -> None:
    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    img = np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[:, 8:] = True
    two = pipe.defaults.replace(steps=2)
    jobs: list[Callable[[], np.ndarray]] = []
    for seed in range(4):
        jobs += [
            lambda s=seed: tasks.inpaint(pipe, img, mask, 1, two, seed=s).image,
            lambda s=seed: tasks.outpaint(pipe, img, 2, two, right=2, seed=s).image,
            lambda s=seed: tasks.resize(pipe, img, 3, two, scale=1.5, strategy="reencode", seed=s).image,
            lambda s=seed: tasks.panorama(pipe, img, 4, two, times=2, seed=s).image,
        ]
    sequential = [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = list(pool.map(lambda job: job(), jobs))
    for i, (a, b) in enumerate(zip(sequential, concurrent)):
        assert np.array_equal(a, b), f"job {i} differs when run concurrently"


def test_concurrent_users_get_the_images_of_sequential_calls(app: App) -> None:
    clients = [Client(app.url, verbose=False) for _ in range(3)]
    seeds = list(range(20, 26))

    def images(result: tuple) -> list[np.ndarray]:
        return [np.asarray(Image.open(item["image"]).convert("RGB")) for item in result[0]]

    sequential = [images(clients[0].predict("class 2", 2, s, False, **OPTS, api_name="/generate")) for s in seeds]
    jobs = [clients[i % 3].submit("class 2", 2, s, False, **OPTS, api_name="/generate") for i, s in enumerate(seeds)]
    for s, job, want in zip(seeds, jobs, sequential):
        got = images(job.result(timeout=120))
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), f"seed {s}"


# -- the queue: bounded, per-event limits, a plain message when full ----------------------------------------
@pytest.mark.slow  # a server
def test_queue_is_bounded_with_a_concurrency_limit_per_event(app: App) -> None:
    queue = app.demo._queue
    assert isinstance(queue.max_size, int) and 1 <= queue.max_size <= 256
    default = queue.default_concurrency_limit
    assert isinstance(default, int) and 1 <= default <= 8
    named = [fn for fn in app.demo.fns.values() if fn.api_name and fn.queue]
    assert {fn.api_name for fn in named} >= {
        "generate",
        "inpaint",
        "outpaint",
        "panorama",
        "resize",
        "animate",
        "side_by_side",
        "compare",
        "measure",
    }
    for fn in named:
        limit = default if fn.concurrency_limit == "default" else fn.concurrency_limit
        assert isinstance(limit, int) and 1 <= limit <= 8, (fn.api_name, fn.concurrency_limit)


def test_a_full_queue_says_so_and_drains(app: App, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding blocked: requests beyond the queue's size are refused with HTTP 503 and a
    message; once unblocked every accepted request completes and the app serves again. (The
    fair queue's per-address limit is lifted: all test clients share 127.0.0.1.)"""
    release = threading.Event()
    real = app.pipe.generate

    def blocked(*args: Any, **kw: Any) -> Any:
        release.wait(60)
        return real(*args, **kw)

    monkeypatch.setattr(app.pipe, "generate", blocked)
    monkeypatch.setattr(server.fair_queue(app.demo), "per_address", 10**6)
    max_size = app.demo._queue.max_size
    data = payload(client, "/generate", class_name="class 3", n_images=1, seed=1, randomize=False, steps=2)
    accepted, refused = [], []
    try:
        for _ in range(max_size + 8):
            r = httpx.post(f"{app.url}gradio_api/call/generate", json={"data": data}, timeout=30)
            (accepted if r.status_code == 200 else refused).append(r)
    finally:
        release.set()
    assert refused, "the queue never filled"
    assert all(r.status_code == 503 and "Queue is full" in r.text for r in refused)
    assert max_size <= len(accepted) <= max_size + app.demo._queue.default_concurrency_limit
    t0 = time.time()
    for r in accepted:  # every accepted request is answered
        stream = httpx.get(f"{app.url}gradio_api/call/generate/{r.json()['event_id']}", timeout=120).text
        assert "event: complete" in stream, stream[-300:]
    assert time.time() - t0 < 120
    monkeypatch.setattr(app.pipe, "generate", real)
    assert client.predict("class 3", 1, 2, False, **OPTS, api_name="/generate")[1] == 2


def payload(client: Client, api: str, **values: Any) -> list[Any]:
    """A raw JSON payload of ``api``: every parameter's default, ``values`` by parameter name."""
    params = client.view_api(print_info=False, return_format="dict")["named_endpoints"][api]["parameters"]
    return [values.get(p["parameter_name"], p.get("parameter_default")) for p in params]


def test_one_client_cannot_fill_the_queue(app: App, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding blocked: a client submitting 50 jobs gets at most ``PER_SESSION`` of them queued,
    the rest refused at once; a second client is still queued, and served once decoding resumes."""
    release = threading.Event()
    real = app.pipe.generate

    def blocked(*args: Any, **kw: Any) -> Any:
        release.wait(60)
        return real(*args, **kw)

    monkeypatch.setattr(app.pipe, "generate", blocked)
    greedy, other = Client(app.url, verbose=False), Client(app.url, verbose=False)
    try:
        jobs = [greedy.submit("class 3", 1, i, False, **OPTS, api_name="/generate") for i in range(50)]
        time.sleep(3)
        refused = [j for j in jobs if j.done() and j.exception() is not None]
        assert len(refused) == 50 - server.PER_SESSION
        waiting = other.submit("class 5", 1, 7, False, **OPTS, api_name="/generate")
        time.sleep(1)
        assert not waiting.done()  # queued, not refused
    finally:
        release.set()
    assert waiting.result(timeout=120)[1] == 7


# -- cancelled work stops ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["/animate", "/side_by_side", "/compare"])
def test_cancelled_requests_stop_within_2_s(
    app: App, client: Client, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every decode step made slow (0.25 s): after 6 x (submit, wait 1 s, cancel) no decode step
    starts later than 2 s after the last cancel, and never more requests decode at once than the
    concurrency limit (steps are recorded by the thread that runs them)."""
    calls: list[tuple[float, int]] = []

    def slow_step(*_: Any) -> None:
        calls.append((time.monotonic(), threading.get_ident()))
        time.sleep(0.25)

    hook = app.pipe.model.head.register_forward_pre_hook(slow_step)
    monkeypatch.setattr(server.fair_queue(app.demo), "per_address", 10**6)
    monkeypatch.setattr(server.fair_queue(app.demo), "per_session", 10**6)
    args = {
        "/animate": ("class 4", "random", 16, 1, False, 8),  # 16 steps of 0.25 s
        "/side_by_side": ("class 4", "random", "raster", 16, 1, False, 8),
        "/compare": ("class 4", 2, 1, False, 8),
    }[endpoint]  # two 16-step raster decodes first
    try:
        for _ in range(6):
            job = client.submit(*args, api_name=endpoint)
            time.sleep(1.0)
            job.cancel()
        last_cancel = time.monotonic()
        time.sleep(4.0)
    finally:
        hook.remove()
    assert calls, "nothing decoded"
    late = max(t for t, _ in calls) - last_cancel
    assert late <= 2.0, f"a cancelled request still decoded {late:.1f} s after the last cancel"
    for t, _ in calls:  # threads decoding within 0.3 s of each step
        busy = {ident for u, ident in calls if abs(u - t) < 0.3}
        assert len(busy) <= app.demo._queue.default_concurrency_limit, f"{len(busy)} requests decoding at once"
