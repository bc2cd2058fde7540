"""The benchmark run on tiny models (no timing is asserted)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from arpg.measure import bench, evaluate
from arpg.measure.report import format_table
from arpg.options import model_defaults
from arpg.pipeline import Pipeline
from arpg.sampling import METHODS


@pytest.fixture(scope="module")
def tiny():
    return bench.random_model("ARPG-tiny", seed=0)


@pytest.fixture(scope="module")
def results(tiny):
    seen = []
    res = bench.run_bench(
        tiny, steps=(2, 4), batch=2, repeats=2, warmup=1, measure_peak=False, progress=lambda f, t: seen.append((f, t))
    )
    res["_progress"] = seen
    return res


def test_random_model_is_materialised_and_seeded():
    m = bench.random_model("ARPG-tiny", dtype=torch.bfloat16, seed=3)
    assert all(not p.is_meta and p.dtype == torch.bfloat16 for p in m.parameters())
    assert torch.all(m.norm.weight == 1) and m.head.weight.std() > 0
    again = bench.random_model("ARPG-tiny", dtype=torch.bfloat16, seed=3)
    assert torch.equal(m.head.weight, again.head.weight)


def test_rows_for_every_method_and_step(results, tiny):
    n_cells = tiny.cfg.grid_size**2
    keys = [(r["method"], r["steps"]) for r in results["rows"]]
    assert keys == [("arpg", 2), ("arpg", 4), ("raster", n_cells), ("random1", n_cells)]
    for r in results["rows"]:
        assert r["forward_passes"] == (r["steps"] if r["method"] == "arpg" else n_cells)
        assert r["batch"] == 2
        assert math.isclose(r["images_per_s"], r["batch"] / r["latency_s"])
        assert math.isclose(r["latency_per_image_s"], r["latency_s"] / r["batch"])
        assert len(r["latency_runs_s"]) == 2
        assert r["per_layer_cache_bytes"] > r["kv_cache_bytes"] > 0
        assert r["peak_mem_bytes"] > 0 and r["achieved_gflops"] > 0 and r["gflop"] > 0
        assert r["accuracy"] is None and r["frechet"] is None
        assert r["peak_fraction"] is None  # peak not measured here
    raster = next(r for r in results["rows"] if r["method"] == "raster")
    assert raster["speedup_vs_raster"] == 1.0


def test_results_shape_and_json(results):
    for key in ("model", "machine", "command", "torch", "dtype", "matmul_peak_gflops", "rows"):
        assert key in results
    assert set(results["matmul_peak_gflops"]) == {"float32", "bfloat16"}
    assert results["dtype"] == "float32" and results["batches"] == [2]
    assert all(r["batch_eff"] == 4 for r in results["rows"])  # guidance doubles the batch
    json.loads(json.dumps({k: v for k, v in results.items() if k != "_progress"}))


def test_progress_reaches_one(results):
    fracs = [f for f, _ in results["_progress"]]
    assert fracs == sorted(fracs) and fracs[-1] == pytest.approx(1.0)
    assert all(isinstance(t, str) for _, t in results["_progress"])


def test_format_table(results):
    text = format_table(results)
    for m in METHODS:
        assert m in text
    assert "img/s" in text and "perlayer" in text
    assert format_table({"rows": []})  # tolerates missing fields


def test_pipeline_with_decode_and_subset_of_methods():
    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    res = bench.run_bench(pipe, steps=[3], batch=1, methods=("arpg", "raster"), repeats=1, warmup=0, measure_peak=False)
    assert [r["method"] for r in res["rows"]] == ["arpg", "raster"]
    assert "decoded to pixels" in res["timed_call"]
    assert res["cfg_scale"] == pipe.defaults.cfg_scale


def test_several_batch_sizes_as_the_app_asks(tiny):
    res = bench.run_bench(
        tiny,
        steps=(2,),
        batch=(2, 1),
        methods=("arpg", "raster"),
        repeats=1,
        warmup=0,
        measure_peak=False,
        options=model_defaults(tiny.cfg).replace(cfg_scale=1.0),
    )
    assert [(r["method"], r["batch"]) for r in res["rows"]] == [("arpg", 1), ("raster", 1), ("arpg", 2), ("raster", 2)]
    assert all(r["batch_eff"] == r["batch"] for r in res["rows"])  # no guidance, no doubling
    assert [s["batch"] for s in res["summary"]["speedup_vs_raster"]] == [1, 2]
    assert res["rows"][1]["speedup_vs_raster"] == 1.0


def test_quality_wiring(monkeypatch):
    """quality: images per class from evaluate.generated, scored once per (method, steps)."""
    calls = []

    def fake_generated(pipe, per_class, steps, method, **kw):
        calls.append((method, steps, per_class, kw["options"].cfg_scale))
        return np.zeros((per_class * 10, 4, 4, 3), np.uint8), np.zeros(per_class * 10, int)

    monkeypatch.setattr(evaluate, "generated", fake_generated)
    monkeypatch.setattr(evaluate, "reference_features", lambda pipe: np.zeros((4, 2)))
    monkeypatch.setattr(
        evaluate, "generation_quality", lambda pipe, imgs, labels, ref: {"accuracy": 0.5, "frechet": 1.5}
    )
    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    pipe.judge = object()  # only its presence matters here
    res = bench.run_bench(
        pipe,
        steps=(2, 3),
        batch=(1, 2),
        methods=("arpg", "raster"),
        repeats=1,
        warmup=0,
        quality=True,
        quality_per_class=3,
        measure_peak=False,
        options=pipe.defaults.replace(cfg_scale=2.0),
    )
    assert calls == [("arpg", 2, 3, 2.0), ("arpg", 3, 3, 2.0), ("raster", 16, 3, 2.0)]
    assert all(r["accuracy"] == 0.5 and r["frechet"] == 1.5 and r["quality_samples"] == 30 for r in res["rows"])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(steps=[17], batch=1), "steps"),
        (dict(steps=[2], methods=["nope"]), "methods"),
        (dict(steps=[2], methods=[]), "methods"),
        (dict(steps=[2], batch=0), "batch"),
        (dict(steps=[2], repeats=0), "repeats"),
        (dict(steps=[2], quality=True), "judge"),
    ],
)
def test_bad_arguments(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.run_bench(tiny, measure_peak=False, **kwargs)


def test_compile_failure_is_reported_and_run_continues(tiny, monkeypatch):
    def broken(fn, **kw):
        def raise_(*a, **k):
            raise RuntimeError("no compiler here\nsecond line")

        return raise_

    monkeypatch.setattr(bench.torch, "compile", broken)
    res = bench.run_bench(
        tiny, steps=[2], batch=1, methods=("arpg",), repeats=1, warmup=1, compile=True, measure_peak=False
    )
    assert res["compile"]["requested"] and res["compile"]["ok"] is False
    assert "no compiler here" in res["compile"]["error"] and "\n" not in res["compile"]["error"]
    assert len(res["rows"]) == 1
    assert "extend" not in tiny.__dict__ and "query" not in tiny.__dict__  # eager methods restored
    assert "failed" in format_table(res)
