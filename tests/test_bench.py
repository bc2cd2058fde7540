"""Fast tests of the benchmark (tiny models; no timing is asserted)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from arpg import bench
from arpg.config import ARPGConfig
from arpg.sampling import METHODS, Context, generate

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny():
    return bench.random_model("ARPG-tiny", seed=0)


@pytest.fixture(scope="module")
def results(tiny):
    seen = []
    res = bench.run_bench(tiny, steps=(2, 4), batch=2, repeats=2, warmup=1, measure_peak=False,
                          progress=lambda f, t: seen.append((f, t)))
    res["_progress"] = seen
    return res


# -- analytic counts ----------------------------------------------------------------------------
@pytest.mark.parametrize("steps,cfg_scale,dtype", [(1, 4.0, torch.float32), (3, 4.0, torch.float32),
                                                   (16, 1.0, torch.float32), (5, 2.0, torch.bfloat16)])
def test_cache_formula_matches_allocated_bytes(steps, cfg_scale, dtype):
    model = bench.random_model("ARPG-tiny", dtype=dtype)
    cfg, B = model.cfg, 3
    tr = generate(model, [0, 1, 2], steps=steps, cfg_scale=cfg_scale, generator=1).trace
    b_eff = B * (2 if cfg_scale != 1.0 else 1)
    length = bench.cache_length(sum(tr.counts), tr.counts)
    elem = torch.empty((), dtype=dtype).element_size()
    assert bench.cache_bytes(cfg, b_eff, length, elem) == tr.kv_cache_bytes
    assert bench.cache_bytes(cfg, b_eff, length, elem, per_layer=True) > tr.kv_cache_bytes


def test_cache_formula_with_context(tiny):
    known = torch.zeros(4, 4, dtype=torch.bool)
    known[0] = True
    ctx = Context(torch.zeros(4, 4, dtype=torch.long), known)
    tr = generate(tiny, [1, 2], steps=3, generator=0, context=ctx).trace
    length = bench.cache_length(sum(tr.counts), tr.counts, n_context=4)
    assert bench.cache_bytes(tiny.cfg, 4, length, 4) == tr.kv_cache_bytes


def test_released_sizes_save_kv_bytes():
    for name in ("ARPG-L", "ARPG-XL", "ARPG-XXL"):
        cfg = ARPGConfig.from_name(name)
        ours = bench.cache_bytes(cfg, 2, 256, 2)
        per_layer = bench.cache_bytes(cfg, 2, 256, 2, per_layer=True)
        assert 1 - ours / per_layer >= 0.45, name  # ARPG-L: 1 - 26/48 = 45.8%


@pytest.mark.parametrize("steps,order,cfg_scale", [(4, "random", 4.0), (16, "raster", 4.0), (3, "random", 1.0)])
def test_flop_formula_matches_torch_flop_counter(tiny, steps, order, cfg_scale):
    # the math SDPA backend runs attention as bmm, which the counter sees
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        tr = generate(tiny, [1, 2, 3], steps=steps, order=order, cfg_scale=cfg_scale, generator=0).trace
    b_eff = 3 * (2 if cfg_scale != 1.0 else 1)
    assert bench.decode_flops(tiny.cfg, tr.counts, b_eff) == counter.get_total_flops()


def test_param_count_and_random_model():
    for name in ("ARPG-tiny", "ARPG-digits"):
        cfg = ARPGConfig.from_name(name)
        with torch.device("meta"):
            from arpg.model import ARPG

            n = sum(p.numel() for p in ARPG(cfg).parameters())
        assert bench.param_count(cfg) == n
    m = bench.random_model("ARPG-tiny", dtype=torch.bfloat16, seed=3)
    assert all(not p.is_meta and p.dtype == torch.bfloat16 for p in m.parameters())
    assert torch.all(m.norm.weight == 1) and m.head.weight.std() > 0
    again = bench.random_model("ARPG-tiny", dtype=torch.bfloat16, seed=3)
    assert torch.equal(m.head.weight, again.head.weight)


# -- measurement helpers --------------------------------------------------------------------------
def test_peak_memory_sees_an_allocation():
    with bench.PeakMemory("cpu") as pm:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, pages touched
        x.add_(1)
    assert pm.peak >= pm.baseline
    if pm.method.startswith("RSS"):
        assert pm.delta >= 48 * 2**20
    del x


def test_matmul_peak_small():
    peak = bench.matmul_peak_gflops("cpu", size=64, min_seconds=0.0, min_reps=1)
    assert set(peak) == {"float32", "bfloat16"}
    assert peak["float32"] > 0


# -- the run ----------------------------------------------------------------------------------------
def test_rows_for_every_method_and_step(results, tiny):
    n_cells = tiny.cfg.grid_size ** 2
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
    text = bench.format_table(results)
    for m in METHODS:
        assert m in text
    assert "img/s" in text and "perlayer" in text
    assert bench.format_table({"rows": []})  # tolerates missing fields


def test_pipeline_with_decode_and_subset_of_methods():
    from arpg.pipeline import Pipeline

    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    res = bench.run_bench(pipe, steps=[3], batch=1, methods=("arpg", "raster"), repeats=1, warmup=0,
                          measure_peak=False)
    assert [r["method"] for r in res["rows"]] == ["arpg", "raster"]
    assert "decoded to pixels" in res["timed_call"]


def test_several_batch_sizes_as_the_app_asks(tiny):
    res = bench.run_bench(tiny, steps=(2,), batch=(2, 1), methods=("arpg", "raster"), repeats=1, warmup=0,
                          measure_peak=False, cfg_scale=1.0)
    assert [(r["method"], r["batch"]) for r in res["rows"]] == [("arpg", 1), ("raster", 1), ("arpg", 2),
                                                                ("raster", 2)]
    assert all(r["batch_eff"] == r["batch"] for r in res["rows"])  # no guidance, no doubling
    assert [s["batch"] for s in res["summary"]["speedup_vs_raster"]] == [1, 2]
    assert res["rows"][1]["speedup_vs_raster"] == 1.0


def test_quality_wiring(monkeypatch):
    """--quality: images per class from arpg.evaluate.generated, scored once per (method, steps)."""
    import numpy as np

    from arpg import evaluate
    from arpg.pipeline import Pipeline

    calls = []

    def fake_generated(pipe, per_class, steps, method, **kw):
        calls.append((method, steps, per_class, kw["cfg_scale"]))
        return np.zeros((per_class * 10, 4, 4, 3), np.uint8), np.zeros(per_class * 10, int)

    monkeypatch.setattr(evaluate, "generated", fake_generated)
    monkeypatch.setattr(evaluate, "reference_features", lambda pipe: np.zeros((4, 2)))
    monkeypatch.setattr(evaluate, "generation_quality",
                        lambda pipe, imgs, labels, ref: {"accuracy": 0.5, "frechet": 1.5})
    pipe = Pipeline.random("ARPG-tiny", "VQ-tiny")
    pipe.judge = object()  # only its presence matters here
    res = bench.run_bench(pipe, steps=(2, 3), batch=(1, 2), methods=("arpg", "raster"), repeats=1, warmup=0,
                          quality=True, quality_per_class=3, measure_peak=False, cfg_scale=2.0)
    assert calls == [("arpg", 2, 3, 2.0), ("arpg", 3, 3, 2.0), ("raster", 16, 3, 2.0)]
    assert all(r["accuracy"] == 0.5 and r["frechet"] == 1.5 and r["quality_samples"] == 30 for r in res["rows"])


def test_bad_arguments(tiny):
    with pytest.raises(ValueError, match="steps"):
        bench.run_bench(tiny, steps=[17], batch=1, measure_peak=False)
    with pytest.raises(ValueError, match="methods"):
        bench.run_bench(tiny, steps=[2], methods=["nope"], measure_peak=False)
    with pytest.raises(ValueError, match="batch"):
        bench.run_bench(tiny, steps=[2], batch=0, measure_peak=False)
    with pytest.raises(ValueError, match="judge"):
        bench.run_bench(tiny, steps=[2], quality=True, measure_peak=False)


def test_compile_failure_is_reported_and_run_continues(tiny, monkeypatch):
    def broken(fn, **kw):
        def raise_(*a, **k):
            raise RuntimeError("no compiler here\nsecond line")
        return raise_

    monkeypatch.setattr(bench.torch, "compile", broken)
    res = bench.run_bench(tiny, steps=[2], batch=1, methods=("arpg",), repeats=1, warmup=1,
                          compile=True, measure_peak=False)
    assert res["compile"]["requested"] and res["compile"]["ok"] is False
    assert "no compiler here" in res["compile"]["error"] and "\n" not in res["compile"]["error"]
    assert len(res["rows"]) == 1
    assert "extend" not in tiny.__dict__ and "query" not in tiny.__dict__  # eager methods restored
    assert "failed" in bench.format_table(res)


# -- the command line --------------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "arpg", "bench", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    p = _cli("--model", "ARPG-tiny", "--steps", "2,4", "--batch", "2", "--repeats", "1", "--json", str(out))
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert [(r["method"], r["steps"]) for r in res["rows"]] == [("arpg", 2), ("arpg", 4), ("raster", 16),
                                                                   ("random1", 16)]
    assert res["command"].startswith("python -m arpg bench --model ARPG-tiny --batch 2 --steps 2,4")
    assert res["matmul_peak_gflops"]["float32"] > 0
    assert "arpg" in p.stdout and "wrote" in p.stdout


def _main(argv: list[str]) -> int:
    from arpg.cli import main

    try:
        return main(argv)
    except SystemExit as e:  # argparse errors
        return int(e.code)


@pytest.mark.parametrize("args", [["--steps", "0"], ["--steps", "2,x"], ["--batch", "x"], ["--model", "nope"],
                                  ["--repeats", "0"], ["--cfg", "abc"], ["--steps", "99"], ["--methods", "a,b"]])
def test_cli_bad_flags_one_line(args, capsys):
    argv = ["bench", *args] if "--model" in args else ["bench", "--model", "ARPG-tiny", *args]
    assert _main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), lines


def test_cli_bad_flag_exit_code_in_a_process():
    p = _cli("--model", "ARPG-tiny", "--batch", "0")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["error: --batch must be an integer >= 1, got '0'"]
