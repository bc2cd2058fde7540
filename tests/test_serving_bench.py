"""The GPU serving benchmark and the CPU end-to-end benchmark (scripts run in their own process), on a tiny
config on the CPU."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_script

TINY = ["--models", "ARPG-tiny", "--vq", "VQ-tiny", "--device", "cpu", "--batches", "1,2", "--steps", "2"]


@pytest.mark.slow  # a script run: a few seconds
def test_gpu_serve_bench_writes_every_row_on_a_tiny_cpu_run(tmp_path):
    out = tmp_path / "gpu.json"
    run = run_script(
        "gpu_serve_bench.py", *TINY, "--modes", "eager,static", "--warmup", "0", "--repeats", "1", "--json", str(out)
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    rows = {(r["model"], r["steps"], r["batch"], r["mode"]): r for r in report["rows"]}
    assert set(rows) == {("ARPG-tiny", 2, b, m) for b in (1, 2) for m in ("eager", "static")}
    assert all(r["images_per_s"] > 0 and r["peak_bytes"] > 0 and len(r["all_s"]) == 1 for r in rows.values())
    assert [(v["dtype"], v["batch"]) for v in report["vq"]] == [
        ("float32", 1),
        ("float32", 2),
        ("bfloat16", 1),
        ("bfloat16", 2),
    ]
    tiny = report["models"]["ARPG-tiny"]
    assert tiny["weights"] == "random" and tiny["weight_stream_floor_ms_per_step"] > 0
    assert report["machine"]["device"] == "cpu" and "paper" in report


@pytest.mark.slow  # a script run: a few seconds
def test_gpu_serve_bench_skips_past_its_budget_and_refuses_bad_input(tmp_path):
    out = tmp_path / "gpu.json"
    assert (
        run_script("gpu_serve_bench.py", *TINY, "--modes", "eager", "--budget-s", "1e-9", "--json", str(out)).returncode
        == 0
    )
    assert all(r.get("skipped") for r in json.loads(out.read_text())["rows"])
    graph = run_script("gpu_serve_bench.py", *TINY, "--modes", "graph", "--json", str(out))
    assert graph.returncode == 2 and "error: --modes graph needs a CUDA device" in graph.stderr
    assert run_script("gpu_serve_bench.py", *TINY, "--modes", "fast").returncode == 2
    huge = ["--models", "ARPG-huge", "--device", "cpu", "--modes", "eager", "--json", str(out)]
    assert run_script("gpu_serve_bench.py", *huge).returncode == 2


@pytest.mark.slow  # a script run: a few seconds
def test_cpu_space_bench_times_the_transformer_and_both_vq_decodes(tmp_path):
    out = tmp_path / "e2e.json"
    args = ["--model", "ARPG-tiny", "--tokenizer", "VQ-tiny", "--batches", "1", "--steps", "2", "--warmup", "0"]
    run = run_script("cpu_space_bench.py", *args, "--repeats", "1", "--json", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["transformer_s"] > 0 and row["vq_fp32_s"] > 0 and report["rss_mb"]["model_and_both_tokenizers_loaded"]
    if report["dtype"] == "bfloat16":  # a CPU with bf16 instructions: the fast decode is measured beside fp32
        assert row["vq_fast_s"] > 0 and report["fast_vq_psnr_db"] >= 40
    assert report["command"].startswith("python scripts/cpu_space_bench.py")
