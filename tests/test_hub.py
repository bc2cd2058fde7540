"""Weight resolution (arpg.hub), the model store (arpg.store) and the app's flags and variables."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from arpg.zoo import MODELS

# -- weights: local files, the hub cache, fallbacks -------------------------------------------------------
REV = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(root: Path, num_classes: int = 10) -> Path:
    """A hub cache (``models--org--name/snapshots/<rev>/file`` + ``refs/main``) holding tiny
    checkpoints (ARPG-tiny with ``num_classes`` classes, VQ-tiny: 16 px images from 4x4 tokens)
    under the released file names."""
    import dataclasses

    import torch

    from arpg.config import ARPGConfig
    from arpg.model import ARPG
    from arpg.pipeline import Pipeline

    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    model = pipe.model
    if num_classes != model.cfg.num_classes:
        torch.manual_seed(0)
        model = ARPG(dataclasses.replace(ARPGConfig.from_name("ARPG-tiny"), num_classes=num_classes)).init_weights(0.2)
    files = {
        ("hp-l33", "ARPG", "arpg_300m.pt"): {"model": model.state_dict()},
        ("FoundationVision", "LlamaGen", "vq_ds16_c2i.pt"): {"model": pipe.vq.state_dict()},
    }
    for (org, name, filename), obj in files.items():
        repo = root / f"models--{org}--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(REV)
        snap = repo / "snapshots" / REV
        snap.mkdir(parents=True)
        torch.save(obj, snap / filename)
    if num_classes != pipe.model.cfg.num_classes:  # no preset has these shapes: the sidecar gives the grid (4x4)
        side = root / "models--hp-l33--ARPG" / "snapshots" / REV / "arpg_300m.json"
        side.write_text(json.dumps(model.cfg.to_dict()))
    return root


def test_resolve_weights_from_the_hub_cache_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from arpg.hub import resolve_weights

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_hub_cache(tmp_path / "hub")
    t0 = time.time()
    path = resolve_weights("hf://hp-l33/ARPG/arpg_300m.pt", cache_dir=cache)
    assert path == cache / "models--hp-l33--ARPG" / "snapshots" / REV / "arpg_300m.pt"
    assert resolve_weights("ARPG-L", cache_dir=cache) == path  # short name of the released file
    assert resolve_weights("VQ-16", cache_dir=cache).name == "vq_ds16_c2i.pt"
    assert time.time() - t0 < 2


def test_resolve_weights_fails_fast_without_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from arpg.hub import WeightsUnavailable, resolve_weights

    cache = fake_hub_cache(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(WeightsUnavailable, match="HF_HUB_OFFLINE"):
        resolve_weights("hf://hp-l33/ARPG/arpg_1b.pt", cache_dir=cache)
    with pytest.raises(WeightsUnavailable, match="no such file"):
        resolve_weights(tmp_path / "missing.pt")
    with pytest.raises(WeightsUnavailable, match="hf://<org>/<repo>/<filename>"):
        resolve_weights("hf://just-a-name")
    # not offline, but the hub does not answer: a quick failure, no hang
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(WeightsUnavailable, match="unreachable"):
        resolve_weights("hf://hp-l33/ARPG/arpg_1b.pt", cache_dir=cache, timeout=1.0)
    assert time.time() - t0 < 5


def test_app_pipeline_loads_released_names_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from arpg.hub import load_app_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_hub_cache(tmp_path / "hub")
    pipe = load_app_pipeline("ARPG-L", device="cpu", cache_dir=cache)  # tokenizer: LlamaGen's by default
    assert pipe.notice is None and pipe.name == "ARPG-L" and pipe.grid == (4, 4)
    assert pipe.generate([1], seed=0, steps=2).images.shape == (1, 16, 16, 3)


def test_app_pipeline_falls_back_with_a_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import arpg.hub
    from arpg.hub import load_app_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(arpg.hub, "SHIPPED_DIR", tmp_path / "no-models")
    pipe = load_app_pipeline("hf://hp-l33/ARPG/arpg_300m.pt", device="cpu", cache_dir=tmp_path / "empty")
    assert "Could not load the requested weights" in pipe.notice and "HF_HUB_OFFLINE" in pipe.notice
    assert "shipped model files are missing" in pipe.notice and pipe.grid == (16, 16)  # random digits model
    plain = load_app_pipeline(device="cpu")
    assert plain.notice.startswith("The shipped model files are missing")


def test_app_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    a = app.parse_args([])
    assert (a.host, a.port, a.share, a.weights, a.tokenizer, a.device) == ("127.0.0.1", 7860, False, None, None, None)
    a = app.parse_args(
        [
            "--weights",
            "ARPG-L",
            "--tokenizer",
            "vq.pt",
            "--device",
            "cpu",
            "--port",
            "9000",
            "--host",
            "0.0.0.0",
            "--share",
        ]
    )
    assert (a.weights, a.tokenizer, a.device, a.port, a.host, a.share) == (
        "ARPG-L",
        "vq.pt",
        "cpu",
        9000,
        "0.0.0.0",
        True,
    )


def test_variables_choose_the_model_and_a_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    from arpg.hub import env_choice

    monkeypatch.delenv("ARPG_WEIGHTS", raising=False)
    monkeypatch.delenv("ARPG_TOKENIZER", raising=False)
    assert env_choice() == (None, None)
    monkeypatch.setenv("ARPG_WEIGHTS", " ARPG-L ")
    monkeypatch.setenv("ARPG_TOKENIZER", "")
    assert env_choice() == ("ARPG-L", None)
    assert env_choice("ARPG-XL", "vq.pt") == ("ARPG-XL", "vq.pt")


def test_released_models_present_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from arpg.hub import released_present

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert released_present(tmp_path / "empty") == []
    cache = fake_hub_cache(tmp_path / "hub")
    assert released_present(cache) == ["ARPG-L"]  # XL and XXL are not in the cache


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_store_loads_lazily_keeps_one_released_model_and_frees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import weakref

    from arpg.hub import RELEASED, WeightsUnavailable
    from arpg.pipeline import Pipeline
    from arpg.store import SHIPPED_NAME, ModelStore

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_hub_cache(tmp_path / "hub")
    # a second released file under another name, so two released models can be switched between
    src = cache / "models--hp-l33--ARPG" / "snapshots" / REV
    (src / "arpg_700m.pt").write_bytes((src / "arpg_300m.pt").read_bytes())
    first = Pipeline.random("ARPG-tiny", "VQ-tiny")
    store = ModelStore(first, device="cpu", cache_dir=cache, shipped=lambda: Pipeline.random("ARPG-tiny", "VQ-tiny"))
    assert store.names() == [first.name, SHIPPED_NAME, "ARPG-L", "ARPG-XL"]
    assert store.resident() == [first.name]  # nothing loaded before it is asked for
    large = store.get("ARPG-L")
    assert large.name == "ARPG-L" and store.get("ARPG-L") is large
    ref = weakref.ref(large.model)
    del large
    assert store.get("ARPG-XL").name == "ARPG-XL"
    gc.collect()
    assert ref() is None, "the previous released model must be freed"
    assert sorted(store.resident()) == sorted([first.name, "ARPG-XL"])
    assert store.get(SHIPPED_NAME).name == SHIPPED_NAME
    assert store.get(None) is first
    with pytest.raises(ValueError, match="unknown model"):
        store.get("ARPG-XXL")
    assert RELEASED["ARPG-XXL"].endswith("arpg_1b.pt")
    with pytest.raises(WeightsUnavailable):
        ModelStore(first, extra=["/no/such/file.pt"], device="cpu", cache_dir=cache).get("/no/such/file.pt")


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_app_offers_the_requested_model_the_shipped_one_and_the_cached_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    from arpg.store import SHIPPED_NAME
    from demo.ui import model_store

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fake_hub_cache(tmp_path / "hub")))
    for name in ("scenes", "raster"):  # whether these models ship (are trained here) or not
        monkeypatch.setitem(MODELS, name, dataclasses.replace(MODELS[name], folder=tmp_path / f"no-{name}"))
    monkeypatch.delenv("ARPG_SCENES", raising=False)
    store = model_store("ARPG-L", None, "cpu")
    assert store.first.name == "ARPG-L" and store.names() == ["ARPG-L", SHIPPED_NAME]
    assert store.get(SHIPPED_NAME).grid == (16, 16)  # the shipped digits model, loaded when first asked for
    # not in the cache: the shipped model serves (with a notice), and the requested name stays offered
    fallback = model_store("ARPG-XL", None, "cpu")
    assert fallback.first.name == SHIPPED_NAME and "HF_HUB_OFFLINE" in fallback.first.notice
    assert fallback.names() == [SHIPPED_NAME, "ARPG-L", "ARPG-XL"]
    assert model_store(None, None, "cpu").names() == [SHIPPED_NAME, "ARPG-L"]


# -- the app served on a released model chosen by $ARPG_WEIGHTS (a server subprocess) -------------------
ROOT = Path(__file__).resolve().parents[1]


def native_size(image: np.ndarray) -> int:
    """The height of a nearest-neighbour upscaled image before upscaling (the largest factor
    whose blocks are all one colour)."""
    for f in (16, 8, 4, 2):
        small = image[::f, ::f]
        if image.shape[0] % f == 0 and np.array_equal(np.repeat(np.repeat(small, f, 0), f, 1), image):
            return image.shape[0] // f
    return image.shape[0]


def config_components(url: str) -> dict[str, dict]:
    """The page's components with an elem_id, by elem_id (their props), and the class pickers under "Class"."""
    comps = httpx.get(url + "config", timeout=30).json()["components"]
    out = {c["props"]["elem_id"]: c["props"] for c in comps if c.get("props", {}).get("elem_id")}
    out["Class"] = next(c["props"] for c in comps if c.get("props", {}).get("label") == "Class")
    return out


@pytest.fixture(scope="module")
def released_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ARPG_WEIGHTS=ARPG-L python app.py`` (no flag) on a fake hub cache whose ARPG-L is a tiny
    1000-class model: 16 px images from 4x4 tokens."""
    from tests.conftest import free_port

    tmp = tmp_path_factory.mktemp("released")
    cache = fake_hub_cache(tmp / "hub", num_classes=1000)
    port = free_port()
    env = {
        **os.environ,
        "ARPG_WEIGHTS": "ARPG-L",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "HUGGINGFACE_HUB_CACHE": str(cache),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("ARPG_TOKENIZER", None)
    log = (tmp / "app.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None, (tmp / "app.log").read_text()[-3000:]
            assert time.time() < deadline, "the app did not start in 180 s"
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def gallery_image(result: tuple) -> np.ndarray:
    return np.asarray(Image.open(result[0][0]["image"]).convert("RGB"))


@pytest.mark.slow
def test_the_variable_serves_that_model_with_imagenet_class_names(released_app: str) -> None:
    from gradio_client import Client

    from arpg.store import SHIPPED_NAME

    page = config_components(released_app)
    assert "**Model:** ARPG-L" in page["model-line"]["value"] and "1000 classes" in page["model-line"]["value"]
    choice = page["model-choice"]
    offered = [c[0] for c in choice["choices"] if "scenes" not in c[0]]  # the scenes model once it ships
    assert choice["value"] == "ARPG-L" and offered == ["ARPG-L", SHIPPED_NAME]
    classes = [c[0] for c in page["Class"]["choices"]]
    assert len(classes) == 1000 and classes[207] == "golden retriever" and page["Class"]["filterable"]
    out = Client(released_app, verbose=False).predict("golden retriever", 1, 3, False, steps=2, api_name="/generate")
    assert out[1] == 3 and "**golden retriever**" in out[2]
    assert native_size(gallery_image(out)) == 16
    out = Client(released_app, verbose=False).predict("207", 1, 3, False, steps=2, api_name="/generate")
    assert "**golden retriever**" in out[2]  # a class number names the class in the summary


@pytest.mark.slow
def test_two_sessions_use_two_models_at_once(released_app: str) -> None:
    from gradio_client import Client

    from arpg.store import SHIPPED_NAME

    a, b = Client(released_app, verbose=False), Client(released_app, verbose=False)
    jobs = [
        a.submit("golden retriever", 2, 1, False, steps=2, model="ARPG-L", api_name="/generate"),
        b.submit("three", 2, 1, False, steps=2, model=SHIPPED_NAME, api_name="/generate"),
        a.submit("tench", 1, 2, False, steps=2, api_name="/generate"),
    ]  # no model: the first one
    large, shipped, default = (job.result(timeout=180) for job in jobs)
    assert native_size(gallery_image(large)) == 16 and "golden retriever" in large[2]
    assert native_size(gallery_image(shipped)) == 64 and "**three**" in shipped[2]
    assert native_size(gallery_image(default)) == 16 and "tench" in default[2]
    with pytest.raises(Exception, match="Unknown class 'golden retriever'"):  # not a class of the digits model
        b.predict("golden retriever", 1, 1, False, steps=2, model=SHIPPED_NAME, api_name="/generate")
