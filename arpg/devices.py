"""Which device to run on: the one function every command, the app and the benchmarks use.

Also which dtype weights run in by default there (:func:`default_dtype`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

#: CPU flags (``/proc/cpuinfo``) of native bf16 matmul instructions.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` means CUDA when present, else the CPU.

    Raises ``ValueError`` with a plain sentence for an unknown name or CUDA asked for on a
    machine without it.
    """
    if device is None or device == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be cpu or cuda (optionally cuda:<n>), got {str(device)[:80]!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but this machine has no CUDA device; use --device cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {dev.type!r}")
    return dev


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (x86 Linux); empty where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bf16() -> bool:
    """Whether bf16 matmuls run natively here: a bf16 instruction flag (AVX512-BF16 or AMX-BF16)
    and PyTorch's oneDNN backend, which uses them."""
    return bool(BF16_CPU_FLAGS & cpu_flags()) and torch.backends.mkldnn.is_available()


def default_dtype(device: str | torch.device | None = None) -> torch.dtype:
    """The dtype weights run in by default on ``device`` (resolved by :func:`resolve_device`):
    bf16 on a CUDA GPU that supports it; on a CPU bf16 where it has native bf16 instructions
    (faster matmuls than fp32: docs/benchmarks/README.md, "Speed options"), fp32 elsewhere (emulated
    bf16 would be slower than fp32)."""
    dev = resolve_device(device)
    fast = torch.cuda.is_bf16_supported() if dev.type == "cuda" else cpu_has_bf16()
    return torch.bfloat16 if fast else torch.float32
