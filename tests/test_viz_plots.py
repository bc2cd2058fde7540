"""Fast tests of arpg.viz.plots: the benchmark trade-off figure and the published numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from arpg.viz import plots as P


def is_grey(px: np.ndarray) -> np.ndarray:
    """True where R == G == B."""
    return (px[..., 0] == px[..., 1]) & (px[..., 1] == px[..., 2])


def results(quality: bool) -> dict:
    rows = []
    for method, steps_list in (("arpg", [4, 8, 16, 32]), ("raster", [48]), ("random1", [48])):
        for steps in steps_list:
            rows.append(
                {
                    "method": method,
                    "steps": steps,
                    "batch": 4,
                    "images_per_s": 100.0 / steps,
                    "latency_s": steps / 25.0,
                    "kv_cache_bytes": 1 << 20,
                    "per_layer_cache_bytes": 1 << 18,
                    "peak_mem_bytes": 1 << 24,
                    "accuracy": (0.5 + steps / 100) if quality else None,
                    "frechet": (40.0 - steps / 2) if quality and method != "random1" else None,
                }
            )
    return {"model": "tiny", "machine": "CPU", "rows": rows}


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
@pytest.mark.parametrize("quality", [True, False])
def test_tradeoff_figure_image(quality: bool) -> None:
    im = P.tradeoff_figure(results(quality))
    assert im.mode == "RGB"
    assert im.width > 800 and 250 < im.height < im.width
    assert not is_grey(np.asarray(im)).all()


def test_tradeoff_plot_series_per_batch_and_unknown_methods() -> None:
    res = results(quality=False)
    res["rows"] += [dict(r, batch=1) for r in res["rows"] if r["method"] == "arpg"]
    res["rows"].append({"method": "mystery", "steps": 8, "images_per_s": 3.0, "latency_s": 0.3})
    fig = P.tradeoff_plot(res)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "ARPG (random, parallel), batch 1" in labels and "ARPG (random, parallel), batch 4" in labels
    assert "mystery" in labels
    assert fig.axes[2].texts[0].get_text() == "not measured"


def test_tradeoff_figure_empty_rows() -> None:
    im = P.tradeoff_figure({"model": "tiny", "machine": "CPU", "rows": []})
    assert im.mode == "RGB" and im.width > 800


def test_published_figure_and_table() -> None:
    assert len(P.PUBLISHED) == 8
    assert {"model", "steps", "images_per_s", "memory_gb", "fid"} <= set(P.PUBLISHED[0])
    arpg_l32 = next(r for r in P.PUBLISHED if r["model"] == "ARPG-L" and r["steps"] == 32)
    assert arpg_l32["images_per_s"] == pytest.approx(130.1) and arpg_l32["fid"] == 2.3  # the paper's v5
    assert arpg_l32["source"].startswith("ARPG v5") and arpg_l32["earlier"]["images_per_s"] == pytest.approx(113.01)
    im = P.published_figure()
    assert im.mode == "RGB" and im.width > 500 and im.height > 300
    assert not is_grey(np.asarray(im)).all()


def test_published_numbers_are_data(tmp_path) -> None:
    caption, rows = P.load_published()
    assert caption == P.PUBLISHED_CAPTION and rows == P.PUBLISHED
    data = json.loads(P.PUBLISHED_FILE.read_text())
    assert set(data["columns"]) >= set().union(*data["rows"])  # every key of a row is described
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {"caption": "mine", "rows": [{"model": "M", "steps": 4, "images_per_s": 1.0, "memory_gb": 1.0, "fid": 9.0}]}
        )
    )
    assert P.load_published(path) == (
        "mine",
        [{"model": "M", "steps": 4, "images_per_s": 1.0, "memory_gb": 1.0, "fid": 9.0}],
    )
    assert len(P.published_plot(P.load_published(path)[1]).axes[0].collections) == 1
