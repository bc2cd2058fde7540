"""Machine probes: peak memory of a block, the matmul peak, the machine line."""

from __future__ import annotations

import torch

from arpg.measure.probes import PeakMemory, machine_info, machine_string, matmul_peak_gflops


def test_peak_memory_sees_an_allocation():
    with PeakMemory("cpu") as pm:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, pages touched
        x.add_(1)
    assert pm.peak >= pm.baseline
    if pm.method.startswith("RSS"):
        assert pm.delta >= 48 * 2**20
    del x


def test_matmul_peak_small():
    peak = matmul_peak_gflops("cpu", size=64, min_seconds=0.0, min_reps=1)
    assert set(peak) == {"float32", "bfloat16"}
    assert peak["float32"] > 0


def test_machine_info_on_the_cpu():
    info = machine_info(torch.device("cpu"))
    assert info["device"] == "cpu" and "gpu" not in info and info["cores"] >= 1
    assert f"{info['threads']} threads" in machine_string(info)
