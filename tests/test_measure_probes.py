"""Machine probes: peak memory of a block, the matmul peak, the machine line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from arpg.measure.probes import machine_info, machine_string, matmul_peak_gflops

_PEAK_SCRIPT = """
import torch
from arpg.measure.probes import PeakMemory
with PeakMemory("cpu") as pm:
    x = torch.ones(64 * 2**20 // 4)  # 64 MiB, pages touched
    x.add_(1)
print(pm.method.startswith("RSS"), pm.baseline, pm.peak, pm.delta)
"""


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_peak_memory_sees_an_allocation():
    # A fresh process: in a long test session the allocator may hand back pages an earlier test
    # freed but the process kept, which the resident set size (rightly) does not count again.
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, check=True)
    rss, baseline, peak, delta = out.stdout.split()
    assert int(peak) >= int(baseline)
    if rss == "True":
        assert int(delta) >= 48 * 2**20


def test_matmul_peak_small():
    peak = matmul_peak_gflops("cpu", size=64, min_seconds=0.0, min_reps=1)
    assert set(peak) == {"float32", "bfloat16"}
    assert peak["float32"] > 0


def test_machine_info_on_the_cpu():
    info = machine_info(torch.device("cpu"))
    assert info["device"] == "cpu" and "gpu" not in info and info["cores"] >= 1
    assert f"{info['threads']} threads" in machine_string(info)
