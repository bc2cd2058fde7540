"""Shared test setup: no analytics, no proxy for local servers, and one in-process app
(random tiny model) for the API and browser tests."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ["NO_PROXY"] = "localhost,127.0.0.1"
os.environ["no_proxy"] = "localhost,127.0.0.1"

#: A small benchmark result in the documented JSON shape (see arpg.viz.plots.tradeoff_plot).
SAMPLE_RESULTS: dict[str, Any] = {
    "model": "random ARPG-tiny",
    "machine": "CPU, test",
    "rows": [
        {
            "method": "arpg",
            "steps": s,
            "batch": b,
            "images_per_s": b * 40.0 / s,
            "latency_s": s / 40.0,
            "kv_cache_bytes": 4096 * s,
            "per_layer_cache_bytes": 1024 * s,
            "peak_mem_bytes": 10**7,
            "accuracy": 0.5 + s / 100,
            "frechet": 30.0 - s,
        }
        for s in (4, 8, 16)
        for b in (1, 4)
    ]
    + [
        {
            "method": "raster",
            "steps": 16,
            "batch": 1,
            "images_per_s": 2.0,
            "latency_s": 0.5,
            "kv_cache_bytes": 65536,
            "per_layer_cache_bytes": 16384,
            "peak_mem_bytes": 10**7,
            "accuracy": 0.7,
            "frechet": 12.0,
        },
    ],
}


def load_script(name: str) -> Any:
    """The module of ``scripts/<name>.py`` (scripts are not a package), loaded from its file."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port that is free right now on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(demo: Any) -> Iterator[str]:
    """Launch ``demo`` on a free port of 127.0.0.1, yield its URL, close it afterwards."""
    from demo.ui import launch_options

    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, server_name="127.0.0.1", quiet=True, **launch_options())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@dataclass
class RunningApp:
    url: str
    demo: Any
    pipe: Any
    bench_dir: Path


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app on a random tiny model (4x4 tokens, 16 px images), served on a free port."""
    from arpg.pipeline import Pipeline
    from demo.ui import build_demo, launch_options

    bench_dir = tmp_path_factory.mktemp("benchmarks")
    (bench_dir / "tiny.json").write_text(json.dumps(SAMPLE_RESULTS))
    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    pipe.notice = "Test notice: a random model."
    demo = build_demo(pipe, benchmarks_dir=bench_dir)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, server_name="127.0.0.1", quiet=True, **launch_options())
    try:
        yield RunningApp(f"http://127.0.0.1:{port}/", demo, pipe, bench_dir)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    models this small run fastest so, and the other core stays free; the old count comes back after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny random model and tokenizer as .safetensors files (+ .json configs)."""
    from arpg.checkpoints import save_checkpoint as save_model
    from arpg.pipeline import Pipeline

    d = tmp_path_factory.mktemp("tiny")
    p = Pipeline.random("ARPG-tiny", "VQ-tiny")
    save_model(p.model, d / "arpg.safetensors")
    save_model(p.vq, d / "vq.safetensors")
    return d / "arpg.safetensors", d / "vq.safetensors"


#: Fixtures that start a server or a browser: tests using them belong to the slow tier.
SERVER_FIXTURES = {"app_server", "client", "page", "browser", "network_attempts", "app"}  # "app": test_faults


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark server, browser and whole-app tests ``slow`` (``pytest -m "not slow"`` is the fast tier)."""
    for item in items:
        in_e2e = "e2e" in Path(str(item.fspath)).parts
        if in_e2e or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
