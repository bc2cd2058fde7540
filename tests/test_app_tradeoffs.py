"""The Trade-offs tab through its API (gradio_client) and its handlers: saved results, the Measure
button (strings as the API docs list them), the time estimate said before measuring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_RESULTS, RunningApp

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402


@pytest.fixture(scope="module")
def client(app_server: RunningApp) -> Client:
    return Client(app_server.url, verbose=False)


def load_shape(path: str) -> tuple[int, ...]:
    from PIL import Image

    with Image.open(path) as im:
        return (im.height, im.width)


def test_saved_results(client: Client) -> None:
    plot, table, info, saved = client.predict("tiny.json", api_name="/saved_results")
    assert load_shape(plot)[1] > 600
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


@pytest.mark.parametrize("batches, steps", [([1, 4], [4, 8]), (["1", "4"], ["4", "8"])])  # as the API docs list them
def test_measure_runs_the_quick_measurement(
    client: Client, monkeypatch: pytest.MonkeyPatch, batches: list, steps: list
) -> None:
    from arpg.measure import quick

    calls = []

    def run_quick(pipe, plan, progress=None, check_cancel=None):
        calls.append(plan)
        if progress:
            progress(0.5, "measuring")
        order_rows = [
            {
                "order": "random",
                "steps": 4,
                "samples": 2,
                "accuracy": None,
                "frechet": None,
                "seconds_per_image": 0.1,
                "queries_per_image": 16,
            }
        ]
        return {**SAMPLE_RESULTS, "orders": {"rows": order_rows}, "estimate_s": 3.0, "seconds": 2.0}

    monkeypatch.setattr(quick, "run_quick", run_quick)
    plot, table, info, path, orders = client.predict(batches, steps, True, 1, ["spiral-in"], 2, api_name="/measure")
    assert calls == [quick.QuickPlan((4, 8), (1, 4), True, 1, ("spiral-in",), 2)]
    assert json.loads(Path(path).read_text())["model"] == SAMPLE_RESULTS["model"]
    assert len(table["data"]) == len(SAMPLE_RESULTS["rows"]) and "Measured" in info and "estimated 3 s" in info
    assert "seconds per call" in table["headers"] and "images/s" in table["headers"]
    assert orders["data"][0][:3] == ["random", 4, 2] and "no judge" in info


def test_measure_refuses_other_values_in_words(client: Client) -> None:
    with pytest.raises(Exception, match=r"not .*(in the list of|one of the) choices"):
        client.predict(["3"], [4], True, 1, api_name="/measure")
    with pytest.raises(Exception, match="at least one batch size"):
        client.predict([], [4], True, 1, api_name="/measure")


def test_the_estimate_is_said_before_measuring() -> None:
    from arpg.pipeline import Pipeline
    from demo.tabs.tradeoffs_results import estimate_text

    pipe = Pipeline.random()
    text = estimate_text(pipe, [1, 4], [4, 8], True, 1, ["raster"], 2)
    assert text.startswith("Estimated time: **about") and "on this machine" in text
    assert "Pick at least one" in estimate_text(pipe, [], [4], True, 1, [], 2)


def test_saved_files_lists_only_bench_results(tmp_path: Path) -> None:
    from demo.tabs.tradeoffs_results import order_rows, saved_files

    (tmp_path / "shipped.json").write_text(json.dumps(SAMPLE_RESULTS))
    orders = {
        "model": "m",
        "rows": [
            {
                "order": "raster",
                "steps": 32,
                "accuracy": 0.9,
                "frechet": 1.5,
                "seconds_per_image": 0.1,
                "queries_per_image": 256,
            }
        ],
    }
    (tmp_path / "orders.json").write_text(json.dumps(orders))
    (tmp_path / "quality.json").write_text(json.dumps({"generation": []}))
    (tmp_path / "broken.json").write_text("{")
    assert saved_files(tmp_path) == ["shipped.json"]
    assert order_rows(orders) == [["raster", 32, None, None, 0.9, 1.5, 0.1, 256]]
    unmeasured = {
        "rows": [
            {
                "order": "random",
                "steps": 4,
                "samples": 8,
                "accuracy": None,
                "frechet": None,
                "seconds_per_image": 0.01,
                "queries_per_image": 16,
            }
        ]
    }
    assert order_rows(unmeasured) == [["random", 4, 8, None, None, None, 0.01, 16]]


def test_no_estimate_is_said_in_words_when_calibrating_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from arpg.measure import quick
    from arpg.pipeline import Pipeline
    from demo.tabs.tradeoffs_results import estimate_text

    def no_gpu(pipe, plan):
        raise RuntimeError("CUDA is not available outside a GPU request")

    monkeypatch.setattr(quick, "estimate", no_gpu)
    assert "No time estimate here yet" in estimate_text(Pipeline.random(), [1], [4], False, 1, [], 1)


def test_zerogpu_reserves_more_for_more_orders_and_raster() -> None:
    from demo.parts.gpu import GPU_CAP_S
    from demo.tabs.tradeoffs_results import measure_seconds

    base = dict(batches=[4], steps=[16], raster=False, repeats=1, orders=[], per_class=1)
    plain = measure_seconds(*base.values(), "model", "progress")  # the callback's arguments, in order
    assert plain < measure_seconds(*{**base, "orders": ["raster", "spiral-in"]}.values()) <= GPU_CAP_S
    assert plain < measure_seconds(*{**base, "raster": True}.values())


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_figures_get_a_white_band_for_the_image_toolbar() -> None:
    import numpy as np
    from PIL import Image

    from demo.tabs.tradeoffs_results import TOOLBAR_ROOM, published_image, toolbar_room

    fig = Image.new("RGB", (200, 100), (10, 20, 30))
    out = np.asarray(toolbar_room(fig))
    band = round(TOOLBAR_ROOM * 200)
    assert out.shape == (100 + band, 200, 3) and (out[:band] == 255).all() and (out[band:] == (10, 20, 30)).all()
    published = np.asarray(published_image())
    assert (published[: round(TOOLBAR_ROOM * published.shape[1])] == 255).all()  # the title starts below the band


# -- every panel follows the session's model ---------------------------------------------------------
BENCH = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


class Named:
    """What the saved-results panels read of a model: its name."""

    def __init__(self, name: str) -> None:
        self.name = name


@pytest.mark.slow  # draws the saved figures
def test_saved_results_and_the_orders_chart_are_the_session_models() -> None:
    """The scenes model was shown the digits model's shipped.json and orders chart."""
    from demo.tabs.tradeoffs import orders_updates
    from demo.tabs.tradeoffs_results import saved_results

    scenes, digits = Named("shipped scenes model"), Named("shipped digits model")
    plot, table, info, saved = saved_results(scenes, BENCH, "shipped.json")  # a digits file asked for
    assert plot is None and table == [] and "No saved results for shipped scenes model" in info
    assert saved["choices"] == [] and "press Measure" in info
    plot, table, info, saved = saved_results(digits, BENCH, None)
    assert "shipped.json" in info and "shipped digits model" in info and plot is not None
    assert saved["value"] == "shipped.json" and "arpg-l-bf16.json" not in saved["choices"]
    assert all(json.loads((BENCH / n).read_text())["model"].startswith("shipped digits") for n in saved["choices"])
    box, caption, chart, rows = orders_updates(scenes, BENCH)  # its own orders table (orders-scenes.json)
    assert box["visible"] is True and chart is not None and [r[0] for r in rows["value"]][:2] == ["random", "raster"]
    assert orders_updates(Named("ARPG-L"), BENCH)[0]["visible"] is False  # none saved for it
    box, caption, chart, rows = orders_updates(digits, BENCH)
    assert box["visible"] is True and chart is not None and rows["value"][0][0] == "random"


def test_a_result_names_its_model_before_what_it_adds() -> None:
    from demo.tabs.tradeoffs_results import belongs

    assert belongs("shipped digits model (6.69M params)", "shipped digits model")
    assert belongs("ARPG-L, random weights (320M params)", "ARPG-L")
    assert not belongs("ARPG-L, random weights", "ARPG-XL") and not belongs("ARPG-XL", "ARPG-X")
    assert not belongs("shipped digits model", "shipped scenes model") and not belongs("", "ARPG-L")


def test_the_orders_table_says_the_batch_and_names_the_paper_fid_once() -> None:
    """Seconds per image (0.084) did not match the trade-off table's seconds per call / batch (0.503 / 4):
    they came from decodes of another batch. The paper's FID repeated on every row of the table."""
    from arpg.viz.plots import ORDER_COLUMNS, order_rows, paper_order_fids

    rows = [{"order": "random", "steps": s, "samples": 20, "batch": 20, "seconds_per_image": 0.01} for s in (8, 16)]
    assert "batch" in ORDER_COLUMNS and not any("paper" in c for c in ORDER_COLUMNS)
    assert [r[ORDER_COLUMNS.index("batch")] for r in order_rows({"rows": rows})] == [20, 20]
    assert paper_order_fids(["raster", "random"]) == "random 2.44 · raster 2.49"
