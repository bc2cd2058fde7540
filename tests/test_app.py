"""The web app through its API (gradio_client), on a random tiny model served in-process."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import RunningApp

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

ENDPOINTS = (
    "/generate",
    "/inpaint",
    "/outpaint",
    "/panorama",
    "/resize",
    "/animate",
    "/side_by_side",
    "/compare",
    "/saved_results",
    "/measure",
)
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
    return {
        "background": handle_file(image) if image else None,
        "layers": [handle_file(p) for p in layers],
        "composite": None,
    }


def generate_ok(client: Client, seed: int = 3) -> tuple:
    return client.predict("class 3", 2, seed, False, **FAST, api_name="/generate")


# -- endpoints -----------------------------------------------------------------------------------
def test_every_action_has_a_named_endpoint(client: Client) -> None:
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ENDPOINTS:
        assert name in named, f"{name} missing from {sorted(named)}"


def test_sampling_controls_are_named_parameters_of_the_api(client: Client) -> None:
    """The sampling controls reach each handler as one SamplingOptions, yet the API keeps one
    named parameter per control, after the tab's own inputs; the model comes last."""
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    sampling = ["steps", "schedule", "cfg_scale", "cfg_schedule", "temperature", "top_k", "top_p", "order"]
    own = {
        "/generate": ["class_name", "n_images", "seed", "randomize"],
        "/inpaint": ["editor", "class_name", "dilate", "blend", "seed", "randomize"],
        "/outpaint": ["image", "class_name", "directions", "amount", "seed", "randomize"],
        "/panorama": ["image", "class_name", "side", "times", "seed", "randomize"],
        "/resize": ["image", "class_name", "scale", "strategy", "regenerate", "seed", "randomize"],
    }
    for api, names in own.items():
        canvas = ["decoding"] if api in ("/outpaint", "/panorama", "/resize") else []  # windowed or whole
        assert [p["parameter_name"] for p in named[api]["parameters"]] == names + sampling + canvas + ["model"], api
    for api in ("/animate", "/side_by_side", "/compare", "/saved_results", "/measure"):
        assert named[api]["parameters"][-1]["parameter_name"] == "model", api


def test_building_the_app_writes_no_files_into_the_source_tree(app_server: RunningApp) -> None:
    demo_dir = Path(__file__).resolve().parents[1] / "demo"
    assert not list(demo_dir.rglob("*.pyi"))  # component subclasses would make gradio write stubs there


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
    assert img.shape == (16, 16, 3)  # the native pixels of the tiny model (the page enlarges them)


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
    result, seed, info = client.predict(
        editor(digit_png, mask_png), "class 7", 0, True, 9, False, **FAST, api_name="/inpaint"
    )
    (before, after), orig = result, load(digit_png)  # a before/after slider: the image as the task saw it, the result
    out = load(after)
    assert seed == 9 and "regenerated" in info
    assert (
        out.shape[:2] == load(before).shape[:2] == (16, 16)
    )  # native pixels of the tiny model (the page enlarges them)
    small = np.asarray(Image.fromarray(out).resize((16, 16), Image.NEAREST), np.int32)
    ref = np.asarray(Image.fromarray(orig).resize((16, 16), Image.BICUBIC), np.int32)
    # the bottom-right quarter was not painted: those cells are context and stay close to the input
    assert np.abs(small[10:, 10:] - ref[10:, 10:]).mean() < 60


def test_outpaint_and_panorama(client: Client, digit_png: str) -> None:
    img = handle_file(digit_png)
    (before, result), _, info = client.predict(img, "class 1", ["right"], 2, 4, False, **FAST, api_name="/outpaint")
    h, w = load(result).shape[:2]
    assert (h, w) == (16, 24) == load(before).shape[:2]  # native pixels: 4 cells + 2 cells to the right, 4 px per cell
    (before, result), _, info = client.predict(img, "class 1", "bottom", 2, 4, False, **FAST, api_name="/panorama")
    h, w = load(result).shape[:2]
    assert h / w == pytest.approx(2.0) and load(before).shape[:2] == (h, w)


@pytest.mark.parametrize("strategy", ["lattice", "reencode"])
def test_resize(client: Client, digit_png: str, strategy: str) -> None:
    (plain, result), _, info = client.predict(
        handle_file(digit_png), "class 1", 2.0, strategy, 0.5, 4, False, **FAST, api_name="/resize"
    )
    assert load(result).shape[:2] == load(plain).shape[:2] == (32, 32)  # native pixels; beside plain bicubic
    assert "8×8 tokens" in info


@pytest.mark.parametrize("order", ["raster", "confidence"])
def test_animate_other_orders(client: Client, order: str) -> None:
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
    gif, download, heat, seed, info = client.predict(
        "class 2", "confidence", "spiral-out", 4, 3, False, 8, api_name="/side_by_side"
    )
    with Image.open(gif) as im:
        assert im.n_frames >= 5
    assert seed == 3 and "confidence vs spiral-out" in info
    # confidence-first queries every remaining cell at each step: more queries than cells
    q1, q2 = info.split("queries: ")[1].split(" ")[0:3:2]
    assert int(q1) > 16 and int(q2) == 16


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(steps=0), "Steps must be between 1 and 16"),
        (dict(steps=10**6), "Steps must be between 1 and 16"),
        (dict(temperature=0), r"Temperature must be in \[0.05, 3\], got 0"),
        (dict(top_p=0), r"Top-p must be in \[0.05, 1\], got 0"),
        (dict(n_images=100), "Number of images must be between 1 and 8"),
        (dict(seed=-1), "Seed must be between 0"),
        (dict(seed=1.5, randomize=False), "Seed must be a whole number"),
        (dict(class_name="not a class"), "Unknown class 'not a class': random ARPG-tiny has 10 classes"),
        (dict(class_name="10"), "Class must be in 0..9, got 10"),
        (dict(model="ARPG-XXXL"), "is not one of the choices: 'random ARPG-tiny'"),
        (dict(schedule="fastest"), "is not one of the choices: 'arccos', 'cosine', 'linear'"),
    ],
)
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

    r = httpx.post(
        f"{url}gradio_api/call/{api}", content=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    r.raise_for_status()
    event = r.json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/{api}/{event}", timeout=60).text


@pytest.mark.parametrize("field, index", [("temperature", 8), ("steps", 4), ("seed", 2)])
def test_nan_is_refused(app_server: RunningApp, client: Client, field: str, index: int) -> None:
    data = [
        '"class 3"',
        "1",
        "1",
        "false",
        "4",
        '"arccos"',
        "2.0",
        '"linear"',
        "1.0",
        "0",
        "1.0",
        '"random"',
        '"random ARPG-tiny"',
    ]
    data[index] = "NaN"
    stream = _raw_call(app_server.url, "generate", '{"data": [' + ", ".join(data) + "]}")
    assert "event: error" in stream and "finite number" in stream, stream[-500:]
    generate_ok(client)


def test_inpaint_without_image_or_mask(client: Client, digit_png: str, empty_mask_png: str) -> None:
    with pytest.raises(Exception, match="Upload an image first") as err:
        client.predict(editor(None), "class 1", **FAST, api_name="/inpaint")
    assert "press" not in str(err.value).lower()  # API callers have no buttons
    with pytest.raises(Exception, match="mask is empty"):
        client.predict(editor(digit_png, empty_mask_png), "class 1", **FAST, api_name="/inpaint")
    with pytest.raises(Exception, match="mask is empty"):
        client.predict(editor(digit_png), "class 1", **FAST, api_name="/inpaint")
    generate_ok(client)


@pytest.mark.parametrize(
    "api, args", [("/outpaint", (["right"], 2)), ("/panorama", ("right", 2)), ("/resize", (2.0, "lattice", 0.5))]
)
def test_no_image_is_refused_in_words_for_api_callers_too(client: Client, api: str, args: tuple) -> None:
    with pytest.raises(Exception, match="Upload an image first") as err:
        client.predict(None, "class 1", *args, **FAST, api_name=api)
    assert "press" not in str(err.value).lower()  # API callers have no buttons


def test_other_bad_inputs(client: Client, digit_png: str) -> None:
    with pytest.raises(Exception, match="at least one direction"):
        client.predict(handle_file(digit_png), "class 1", [], 2, **FAST, api_name="/outpaint")
    with pytest.raises(Exception, match=r"Scale must be in \[1, 4\]"):
        client.predict(handle_file(digit_png), "class 1", 10.0, "lattice", 0.5, **FAST, api_name="/resize")
    with pytest.raises(Exception, match="Times as long must be between 2 and 8"):
        client.predict(handle_file(digit_png), "class 1", "right", 100, **FAST, api_name="/panorama")
    with pytest.raises(Exception, match="at least one batch size"):
        client.predict([], [4], False, 1, api_name="/measure")
    generate_ok(client)


def test_steps_beyond_the_cells_to_decode_are_reduced(client: Client, digit_png: str, mask_png: str) -> None:
    """16 steps asked, only a few cells painted: one step per cell, and the summary says so once."""
    result, _, info = client.predict(editor(digit_png, mask_png), "class 1", 0, True, 1, False, 16, api_name="/inpaint")
    assert "steps were used" in info and info.count("to decode") == 1, info
    result, _, info = client.predict(
        handle_file(digit_png), "class 1", ["right"], 2, 1, False, 16, api_name="/outpaint"
    )
    assert "8 steps were used" in info and info.count("to decode") == 1, info


def test_one_cell_to_decode_is_one_step_in_the_singular(client: Client, digit_png: str, tmp_path: Path) -> None:
    brush = np.zeros((64, 64, 4), np.uint8)
    brush[20:28, 20:28] = (255, 46, 136, 255)  # inside one 16 px cell of the 64 px input
    Image.fromarray(brush).save(tmp_path / "one-cell.png")
    _, _, info = client.predict(
        editor(digit_png, str(tmp_path / "one-cell.png")), "class 1", 0, True, 1, False, 4, api_name="/inpaint"
    )
    assert "regenerated in 1 step" in info and "1 steps" not in info, info
    assert "only 1 token to decode, so 1 step was used" in info, info


def test_server_survives_a_burst(client: Client) -> None:
    jobs = [client.submit("class 5", 1, i, False, **FAST, api_name="/generate") for i in range(4)]
    t0 = time.time()
    for job in jobs:
        assert job.result(timeout=120)[1] in range(4)
    assert time.time() - t0 < 120


def test_gpu_decorator_only_with_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    from demo.parts.gpu import on_gpu

    def fn() -> int:
        return 1

    def duration() -> int:
        return 20

    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    assert on_gpu(fn) is fn and on_gpu(fn, duration) is fn
    fake = types.ModuleType("spaces")

    def gpu(f=None, duration=None):
        return ("on gpu", f) if f is not None else (lambda g: ("on gpu", g, duration))

    fake.GPU = gpu
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert on_gpu(fn) == ("on gpu", fn)
    assert on_gpu(fn, duration) == ("on gpu", fn, duration)


def test_gpu_time_grows_with_steps_and_images_between_a_floor_and_a_cap() -> None:
    from demo.parts.gpu import GPU_CAP_S, GPU_FLOOR_S, gpu_duration, gpu_seconds, request_seconds

    assert gpu_seconds(1) == GPU_FLOOR_S and gpu_seconds(10**6, 8) == GPU_CAP_S
    assert gpu_seconds(64, 8) == 36  # 10 s + 64 steps x 8 images x 0.05 s, rounded up
    assert gpu_seconds(64, 8) > gpu_seconds(32, 8) > gpu_seconds(32, 4)
    assert gpu_seconds(32, 4, area=4) > gpu_seconds(32, 4)
    # from a request's values: steps, number of images, scale, measured lists
    assert request_seconds(64, images=8) == gpu_seconds(64, 8)
    assert request_seconds(32, scale=2.0) == gpu_seconds(32, 1, 4.0)
    assert request_seconds([8, 16], images=[1, 4], repeats=2) == gpu_seconds(24, 10)
    assert request_seconds(float("nan"), images="x") == gpu_seconds(32)  # malformed: defaults
    assert request_seconds(None) == gpu_seconds(32)  # left out: the default
    assert request_seconds(16, decodes=2, extra_steps=512) == gpu_seconds(544)
    assert request_seconds(16, times=4) == gpu_seconds(16, 1, 8.0)  # a panorama: about two windows per time

    def seconds(class_name, n_images, steps, *rest):  # an endpoint's, on the callback's arguments
        return request_seconds(steps, images=n_images)

    duration = gpu_duration(seconds)
    assert duration("class 1", 8, 64, "m", "progress") == gpu_seconds(64, 8)
    assert duration(1, 2) == GPU_CAP_S  # arguments that do not fit: the cap


def test_every_endpoints_gpu_seconds_read_the_callbacks_arguments_in_its_order() -> None:
    """An endpoint's ZeroGPU seconds get the arguments of its callback: the parameters they name are the
    callback's first ones, and the values that count are read from there."""
    import inspect

    from demo.parts.gpu import gpu_seconds
    from demo.tabs import generate, inpaint, outpaint, resolution, tradeoffs, tradeoffs_results, visualize

    pairs = [
        (generate.generate_callback, generate.generate_seconds),
        (inpaint.inpaint_callback, inpaint.inpaint_seconds),
        (outpaint.outpaint_callback, outpaint.outpaint_seconds),
        (outpaint.panorama_callback, outpaint.panorama_seconds),
        (resolution.resize_callback, resolution.resize_seconds),
        (visualize.animate_callback, visualize.animate_seconds),
        (visualize.side_by_side_callback, visualize.side_by_side_seconds),
        (visualize.compare_callback, visualize.compare_seconds(16)),
        (tradeoffs.measure_callback, tradeoffs_results.measure_seconds),
    ]
    for make, seconds in pairs:
        named = [p.name for p in inspect.signature(seconds).parameters.values() if p.kind != p.VAR_POSITIONAL]
        params = list(inspect.signature(make(None)).parameters)  # (the model is looked up only when called)
        assert params[: len(named)] == named and params[-2:] == ["model", "progress"], make.__name__
        values = dict.fromkeys(params)
        few, many = seconds(*{**values, "steps": 8}.values()), seconds(*{**values, "steps": 800}.values())
        assert few < many, make.__name__  # the steps are read where the callback takes them
    generate_args = dict.fromkeys(inspect.signature(generate.generate_callback(None)).parameters)
    assert generate.generate_seconds(*{**generate_args, "steps": 64, "n_images": 8}.values()) == gpu_seconds(64, 8)


def test_default_steps_are_32_for_the_small_model_and_16_for_a_large_one_on_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from arpg.pipeline import Pipeline
    from demo.parts import widgets

    pipe = Pipeline.random()  # a few parameters, on the CPU
    assert widgets.default_steps(pipe, cells=256) == 32 and widgets.default_steps(pipe, cells=10) == 10
    monkeypatch.setattr(widgets, "LARGE_MODEL_PARAMS", 0)  # every model counts as large now
    assert widgets.default_steps(pipe, cells=256) == 16
