"""The default dtype per device: bf16 where the hardware runs it natively, fp32 elsewhere."""

from __future__ import annotations

import pytest
import torch

from arpg import devices


@pytest.fixture
def cpu(monkeypatch):
    """Set the CPU's flags and whether oneDNN is there; returns a setter."""

    def set_cpu(flags: set[str], mkldnn: bool = True) -> None:
        monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: mkldnn)

    return set_cpu


@pytest.mark.parametrize(
    "flags,mkldnn,dtype",
    [
        ({"avx2", "avx512f", "avx512_bf16"}, True, torch.bfloat16),
        ({"avx2", "amx_tile", "amx_bf16"}, True, torch.bfloat16),
        ({"avx2", "avx512f"}, True, torch.float32),  # AVX-512 without bf16: emulated, slower than fp32
        (set(), True, torch.float32),  # no /proc/cpuinfo flags (macOS, ARM)
        ({"avx512_bf16"}, False, torch.float32),  # no oneDNN to use the instructions
    ],
)
def test_cpu_default_dtype(cpu, flags, mkldnn, dtype):
    cpu(flags, mkldnn)
    assert devices.default_dtype("cpu") is dtype


def test_cuda_default_dtype_is_bf16_where_supported(cpu, monkeypatch):
    cpu(set())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert devices.default_dtype("cuda") is torch.bfloat16
    assert devices.default_dtype(None) is torch.bfloat16  # None resolves to CUDA when present
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert devices.default_dtype("cuda") is torch.float32


def test_cpu_flags_read_from_proc_cpuinfo(monkeypatch, tmp_path):
    info = tmp_path / "cpuinfo"
    cpu = "processor\t: {}\nflags\t\t: fpu avx2 avx512_bf16\n"
    info.write_text(cpu.format(0) + "\n" + cpu.format(1))
    real = devices.Path
    monkeypatch.setattr(devices, "Path", lambda p: info if p == "/proc/cpuinfo" else real(p))
    devices.cpu_flags.cache_clear()
    try:
        assert devices.cpu_flags() == {"fpu", "avx2", "avx512_bf16"}
        info.unlink()
        devices.cpu_flags.cache_clear()
        assert devices.cpu_flags() == frozenset()
    finally:
        devices.cpu_flags.cache_clear()
