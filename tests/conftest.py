"""Shared test setup: no analytics, no proxy for local servers, one in-process app (random tiny model) for
the API and browser tests, a script run in its own process, and tiny model folders of the data sets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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


ROOT = Path(__file__).resolve().parents[1]
SCENES_GRIDS = ((16, 16), (16, 24), (16, 32), (24, 24))


def run_script(
    name: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``python scripts/<name> args...`` in its own process (scripts are run, never imported), from ``cwd``
    (default the repository root) with ``env`` added to the environment; its output as text."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tiny_folder(d: Path, data: str = "scenes") -> Path:
    """A folder :meth:`Pipeline.shipped` loads: random ARPG-tiny on 16x16 tokens (scenes: on the scenes grids,
    64 px high at 4 px per token), random VQ-tiny, the shipped judge of ``data``; its JSON says ``data`` and
    4 steps."""
    import shutil
    from dataclasses import replace

    import torch

    from arpg.checkpoints import save_checkpoint
    from arpg.config import ARPGConfig, VQConfig
    from arpg.model import ARPG
    from arpg.tokenizer import VQModel
    from arpg.zoo import MODELS

    torch.manual_seed(0)
    grids = SCENES_GRIDS if data == "scenes" else ((16, 16),)
    cfg = replace(ARPGConfig.from_name("ARPG-tiny"), grid_size=16, trained_grids=grids)
    save_checkpoint(
        ARPG(cfg).init_weights(0.2),
        d / "arpg.safetensors",
        {**cfg.to_dict(), "data": data, "sampling": {"steps": 4}},
    )
    save_checkpoint(VQModel(VQConfig.from_name("VQ-tiny")), d / "vq.safetensors")
    shutil.copyfile(MODELS[data].folder / "judge.safetensors", d / "judge.safetensors")
    return d


def tiny_scenes_folder(d: Path) -> Path:
    """:func:`tiny_folder` of the scenes data set (the shipped scenes judge reads real renders as their class)."""
    return tiny_folder(d, "scenes")


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
