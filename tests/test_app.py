"""The web app through its API (gradio_client), on a random tiny model served in-process."""
from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SAMPLE_RESULTS, RunningApp

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ENDPOINTS = ("/generate", "/inpaint", "/outpaint", "/panorama", "/resize", "/animate", "/side_by_side",
             "/compare", "/saved_results", "/measure")
FAST = dict(steps=4)  # every call decodes the 16 cells of the tiny model in 4 steps


@pytest.fixture(scope="module")
def client(app_server: RunningApp) -> Client:
    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("inputs") / "digit.png"
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, :] = (30, 90, 200)
    img[16:48, 28:36] = (250, 250, 40)
    Image.fromarray(img).save(path)
    return str(path)


@pytest.fixture(scope="module")
def mask_png(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A brush layer: transparent except a painted square in the top-left quarter."""
    path = tmp_path_factory.mktemp("inputs") / "mask.png"
    m = np.zeros((64, 64, 4), np.uint8)
    m[4:28, 4:28] = (255, 46, 136, 255)
    Image.fromarray(m).save(path)
    return str(path)


@pytest.fixture(scope="module")
def empty_mask_png(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("inputs") / "empty.png"
    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(path)
    return str(path)


def load(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def editor(image: str | None, *layers: str) -> dict:
    return {"background": handle_file(image) if image else None, "layers": [handle_file(p) for p in layers],
            "composite": None}


def generate_ok(client: Client, seed: int = 3) -> tuple:
    return client.predict("class 3", 2, seed, False, **FAST, api_name="/generate")


# -- endpoints -----------------------------------------------------------------------------------
def test_every_action_has_a_named_endpoint(client: Client) -> None:
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ENDPOINTS:
        assert name in named, f"{name} missing from {sorted(named)}"


def test_building_the_app_writes_no_files_into_the_source_tree(app_server: RunningApp) -> None:
    tabs = Path(__file__).resolve().parents[1] / "demo" / "tabs"
    assert not list(tabs.glob("*.pyi"))  # component subclasses would make gradio write stubs there


def test_page_shows_model_and_notice(app_server: RunningApp) -> None:
    import httpx

    html = httpx.get(app_server.url, timeout=30).text
    config = httpx.get(app_server.url + "config", timeout=30).text
    assert "ARPG Sandbox" in html
    assert "random ARPG-tiny" in config and "Test notice" in config


def test_generate_returns_images_and_seed(client: Client) -> None:
    gallery, seed, info = generate_ok(client, seed=11)
    assert seed == 11 and "seed 11" in info
    assert len(gallery) == 2
    img = load(gallery[0]["image"])
    assert img.shape[0] >= 256 and img.shape[0] % 16 == 0  # 16 px upscaled (nearest) for display


def test_generate_is_reproducible_and_randomize_draws_a_seed(client: Client) -> None:
    a, _, _ = generate_ok(client, seed=5)
    b, _, _ = generate_ok(client, seed=5)
    assert np.array_equal(load(a[0]["image"]), load(b[0]["image"]))
    _, seed, _ = client.predict("class 1", 1, 5, True, **FAST, api_name="/generate")
    assert isinstance(seed, int) and 0 <= seed < 2**31


def test_generate_streams_partial_images(client: Client) -> None:
    job = client.submit("class 2", 1, 1, False, **FAST, api_name="/generate")
    job.result(timeout=120)
    outputs = job.outputs()
    assert len(outputs) >= 2, "the decode should be streamed step by step"
    assert "step" in outputs[0][2]


def test_inpaint(client: Client, digit_png: str, mask_png: str) -> None:
    result, seed, info = client.predict(editor(digit_png, mask_png), "class 7", 0, True, 9, False, **FAST,
                                        api_name="/inpaint")
    out, orig = load(result), load(digit_png)
    assert seed == 9 and "regenerated" in info
    assert out.shape[0] >= 256
    small = np.asarray(Image.fromarray(out).resize((16, 16), Image.NEAREST), np.int32)
    ref = np.asarray(Image.fromarray(orig).resize((16, 16), Image.BICUBIC), np.int32)
    # the bottom-right quarter was not painted: those cells are context and stay close to the input
    assert np.abs(small[10:, 10:] - ref[10:, 10:]).mean() < 60


def test_outpaint_and_panorama(client: Client, digit_png: str) -> None:
    img = handle_file(digit_png)
    result, _, info = client.predict(img, "class 1", ["right"], 2, 4, False, **FAST, api_name="/outpaint")
    h, w = load(result).shape[:2]
    assert w / h == pytest.approx(1.5)  # 4 cells + 2 cells to the right
    result, _, info = client.predict(img, "class 1", "bottom", 2, 4, False, **FAST, api_name="/panorama")
    h, w = load(result).shape[:2]
    assert h / w == pytest.approx(2.0)


@pytest.mark.parametrize("strategy", ["lattice", "reencode"])
def test_resize(client: Client, digit_png: str, strategy: str) -> None:
    result, _, info = client.predict(handle_file(digit_png), "class 1", 2.0, strategy, 0.5, 4, False, **FAST,
                                     api_name="/resize")
    assert load(result).shape[0] == 2 * 256  # 32 px at the input's display zoom (16x)
    assert "8×8 tokens" in info


@pytest.mark.parametrize("order", ["raster", "confidence"])
def test_animate_other_orders(client: Client, order: str) -> None:
    from demo.tabs.common import order_choices

    if order not in order_choices():
        pytest.skip(f"the sampler has no {order!r} order")
    gif, _, _, _, info = client.predict("class 4", order, 4, 2, False, 8, api_name="/animate")
    assert Path(gif).suffix == ".gif" and f"{order} order" in info


def test_animate_and_compare(client: Client) -> None:
    gif, download, heat, seed, info = client.predict("class 4", "spiral-in", 4, 2, False, 8, api_name="/animate")
    assert Path(gif).suffix == ".gif" and Path(download).suffix == ".gif"
    with Image.open(gif) as im:
        assert im.n_frames >= 5  # frame 0 + one per step
    assert load(heat).shape[0] > 100 and seed == 2
    gif, download, heat, seed, info = client.predict("class 4", 4, 2, False, 8, api_name="/compare")
    with Image.open(gif) as im:
        assert im.n_frames > 5
    assert "16 / 16 / 4" in info  # forward passes: raster / random one-at-a-time / ARPG


def test_side_by_side_two_orders(client: Client) -> None:
    gif, download, heat, seed, info = client.predict("class 2", "confidence", "spiral-out", 4, 3, False, 8,
                                                     api_name="/side_by_side")
    with Image.open(gif) as im:
        assert im.n_frames >= 5
    assert seed == 3 and "confidence vs spiral-out" in info
    # confidence-first queries every remaining cell at each step: more queries than cells
    q1, q2 = info.split("queries: ")[1].split(" ")[0:3:2]
    assert int(q1) > 16 and int(q2) == 16


def test_saved_results(client: Client) -> None:
    plot, table, info, saved = client.predict("tiny.json", api_name="/saved_results")
    assert load(plot).shape[1] > 600
    assert len(table["data"]) == len(SAMPLE_RESULTS["rows"])
    assert "tiny.json" in info


def test_saved_results_missing_says_press_measure(app_server: RunningApp, client: Client) -> None:
    moved = app_server.bench_dir / "tiny.json.off"
    (app_server.bench_dir / "tiny.json").rename(moved)
    try:
        plot, table, info, _ = client.predict("tiny.json", api_name="/saved_results")
        assert plot is None and "press Measure" in info
    finally:
        moved.rename(app_server.bench_dir / "tiny.json")


def test_measure_calls_the_benchmark(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import arpg

    calls = []

    def run_bench(pipe, steps=(8, 16, 32), batch=(1,), methods=("arpg",), repeats=1, progress=None):
        calls.append(dict(steps=steps, batch=batch, methods=methods, repeats=repeats))
        if progress:
            progress(1, 2)
        return SAMPLE_RESULTS

    fake = types.ModuleType("arpg.bench")
    fake.run_bench = run_bench
    monkeypatch.setitem(sys.modules, "arpg.bench", fake)
    monkeypatch.setattr(arpg, "bench", fake, raising=False)
    plot, table, info, path = client.predict([1, 4], [4, 8], True, 1, api_name="/measure")
    assert calls == [dict(steps=(4, 8), batch=(1, 4), methods=("arpg", "raster"), repeats=1)]
    assert json.loads(Path(path).read_text())["model"] == SAMPLE_RESULTS["model"]
    assert len(table["data"]) == len(SAMPLE_RESULTS["rows"]) and "Measured" in info


def test_measure_without_benchmark_module_says_so(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    import arpg

    monkeypatch.setitem(sys.modules, "arpg.bench", None)  # import fails
    monkeypatch.delattr(arpg, "bench", raising=False)
    with pytest.raises(Exception, match="benchmark module"):
        client.predict([1], [4], False, 1, api_name="/measure")


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (dict(steps=0), "Steps must be between 1 and 16"),
    (dict(steps=10**6), "Steps must be between 1 and 16"),
    (dict(temperature=0), "Temperature must be between"),
    (dict(top_p=0), "Top-p must be between"),
    (dict(n_images=100), "Number of images must be between 1 and 8"),
    (dict(seed=-1), "Seed must be between 0"),
    (dict(seed=1.5, randomize=False), "Seed must be a whole number"),
    (dict(class_name="not a class"), "not in the list of choices"),
    (dict(schedule="fastest"), "not in the list of choices"),
])
def test_bad_generate_input_is_refused_in_plain_words(client: Client, change: dict, message: str) -> None:
    kw = dict(class_name="class 3", n_images=1, seed=1, randomize=False, steps=4)
    kw.update(change)
    with pytest.raises(Exception, match=message) as err:
        client.predict(**kw, api_name="/generate")
    assert "Traceback" not in str(err.value)
    generate_ok(client)  # still serving


def _raw_call(url: str, api: str, body: str) -> str:
    """Call an endpoint with a raw JSON body (gradio_client cannot send NaN); the event stream."""
    import httpx

    r = httpx.post(f"{url}gradio_api/call/{api}", content=body, headers={"Content-Type": "application/json"},
                   timeout=30)
    r.raise_for_status()
    event = r.json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/{api}/{event}", timeout=60).text


@pytest.mark.parametrize("field, index", [("temperature", 8), ("steps", 4), ("seed", 2)])
def test_nan_is_refused(app_server: RunningApp, client: Client, field: str, index: int) -> None:
    data = ['"class 3"', "1", "1", "false", "4", '"arccos"', "2.0", '"linear"', "1.0", "0", "1.0", '"random"']
    data[index] = "NaN"
    stream = _raw_call(app_server.url, "generate", '{"data": [' + ", ".join(data) + "]}")
    assert "event: error" in stream and "finite number" in stream, stream[-500:]
    generate_ok(client)


def test_inpaint_without_image_or_mask(client: Client, digit_png: str, empty_mask_png: str) -> None:
    with pytest.raises(Exception, match="Upload an image first"):
        client.predict(editor(None), "class 1", **FAST, api_name="/inpaint")
    with pytest.raises(Exception, match="mask is empty"):
        client.predict(editor(digit_png, empty_mask_png), "class 1", **FAST, api_name="/inpaint")
    with pytest.raises(Exception, match="mask is empty"):
        client.predict(editor(digit_png), "class 1", **FAST, api_name="/inpaint")
    generate_ok(client)


def test_other_bad_inputs(client: Client, digit_png: str) -> None:
    with pytest.raises(Exception, match="Upload an image first"):
        client.predict(None, "class 1", ["right"], 2, **FAST, api_name="/outpaint")
    with pytest.raises(Exception, match="at least one direction"):
        client.predict(handle_file(digit_png), "class 1", [], 2, **FAST, api_name="/outpaint")
    with pytest.raises(Exception, match="Scale must be between 1 and 4"):
        client.predict(handle_file(digit_png), "class 1", 10.0, "lattice", 0.5, **FAST, api_name="/resize")
    with pytest.raises(Exception, match="Times as long must be between 2 and 8"):
        client.predict(handle_file(digit_png), "class 1", "right", 100, **FAST, api_name="/panorama")
    with pytest.raises(Exception, match="at least one batch size"):
        client.predict([], [4], False, 1, api_name="/measure")
    generate_ok(client)


def test_steps_beyond_the_cells_to_decode_are_reduced(client: Client, digit_png: str, mask_png: str) -> None:
    """16 steps asked, only a few cells painted: one step per cell, and the summary says so."""
    result, _, info = client.predict(editor(digit_png, mask_png), "class 1", 0, True, 1, False, 16,
                                     api_name="/inpaint")
    assert "steps were used" in info


def test_server_survives_a_burst(client: Client) -> None:
    jobs = [client.submit("class 5", 1, i, False, **FAST, api_name="/generate") for i in range(4)]
    t0 = time.time()
    for job in jobs:
        assert job.result(timeout=120)[1] in range(4)
    assert time.time() - t0 < 120


# -- weights: local files, the hub cache, fallbacks -------------------------------------------------------
REV = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(root: Path) -> Path:
    """A hub cache (``models--org--name/snapshots/<rev>/file`` + ``refs/main``) holding tiny
    checkpoints under the released file names."""
    import torch

    from arpg.pipeline import Pipeline

    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    files = {("hp-l33", "ARPG", "arpg_300m.pt"): {"model": pipe.model.state_dict()},
             ("FoundationVision", "LlamaGen", "vq_ds16_c2i.pt"): {"model": pipe.vq.state_dict()}}
    for (org, name, filename), obj in files.items():
        repo = root / f"models--{org}--{name}"
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(REV)
        snap = repo / "snapshots" / REV
        snap.mkdir(parents=True)
        torch.save(obj, snap / filename)
    return root


def test_resolve_weights_from_the_hub_cache_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from demo.weights import resolve_weights

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

    from demo.weights import WeightsUnavailable, resolve_weights

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
    from demo.weights import load_app_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = fake_hub_cache(tmp_path / "hub")
    pipe = load_app_pipeline("ARPG-L", device="cpu", cache_dir=cache)  # tokenizer: LlamaGen's by default
    assert pipe.notice is None and pipe.name == "arpg_300m" and pipe.grid == (4, 4)
    assert pipe.generate([1], seed=0, steps=2).images.shape == (1, 16, 16, 3)


def test_app_pipeline_falls_back_with_a_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import arpg.pipeline

    from demo.weights import load_app_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(arpg.pipeline, "SHIPPED_DIR", tmp_path / "no-models")
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
    assert (a.host, a.port, a.share, a.weights, a.tokenizer, a.device) == ("127.0.0.1", 7860, False, None, None,
                                                                           None)
    a = app.parse_args(["--weights", "ARPG-L", "--tokenizer", "vq.pt", "--device", "cpu", "--port", "9000",
                        "--host", "0.0.0.0", "--share"])
    assert (a.weights, a.tokenizer, a.device, a.port, a.host, a.share) == ("ARPG-L", "vq.pt", "cpu", 9000,
                                                                           "0.0.0.0", True)


def test_gpu_decorator_only_with_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    from demo.tabs.common import on_gpu

    def fn() -> int:
        return 1

    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    assert on_gpu(fn) is fn
    fake = types.ModuleType("spaces")
    fake.GPU = lambda f: ("on gpu", f)
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert on_gpu(fn) == ("on gpu", fn)


def test_saved_files_lists_only_bench_results(tmp_path: Path) -> None:
    from demo.tabs.tradeoffs import order_rows, saved_files

    (tmp_path / "shipped.json").write_text(json.dumps(SAMPLE_RESULTS))
    orders = {"model": "m", "rows": [{"order": "raster", "steps": 32, "accuracy": 0.9, "frechet": 1.5,
                                      "seconds_per_image": 0.1, "queries_per_image": 256}]}
    (tmp_path / "orders.json").write_text(json.dumps(orders))
    (tmp_path / "quality.json").write_text(json.dumps({"generation": []}))
    (tmp_path / "broken.json").write_text("{")
    assert saved_files(tmp_path) == ["shipped.json"]
    assert order_rows(orders) == [["raster", 32, 0.9, 1.5, 0.1, 256, 2.49]]


def test_default_steps_are_32_for_the_small_model_and_16_for_a_large_one_on_cpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from arpg.pipeline import Pipeline
    from demo.tabs import common

    pipe = Pipeline.random()  # a few parameters, on the CPU
    assert common.default_steps(pipe, cells=256) == 32 and common.default_steps(pipe, cells=10) == 10
    monkeypatch.setattr(common, "LARGE_MODEL_PARAMS", 0)  # every model counts as large now
    assert common.default_steps(pipe, cells=256) == 16
