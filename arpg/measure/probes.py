"""The machine a benchmark runs on: what it is, its matmul peak, and peak memory of a block."""

from __future__ import annotations

import logging
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

#: dtype names the benchmarks and the command line accept.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or the platform's answer)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model, cores, torch threads, torch/Python versions and the GPU if one is used."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    loads = load_average()
    if loads is not None:
        info["load_average"] = loads
    return info


def machine_string(info: dict[str, Any]) -> str:
    """One line for plots and tables."""
    if info.get("gpu"):
        return f"{info['gpu']} (host: {info['cpu']}, {info['cores']} cores)"
    return f"{info['cpu']}, {info['cores']} cores, {info['threads']} threads"


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(
    device: torch.device | str = "cpu",
    dtypes: Iterable[str] = ("float32", "bfloat16"),
    size: int | None = None,
    min_seconds: float = 0.3,
    min_reps: int = 3,
) -> dict[str, float | None]:
    """Best observed GFLOP/s of a square ``size`` x ``size`` matmul per dtype.

    One untimed call, then timed calls until ``min_reps`` and ``min_seconds`` are both
    reached; the best rate is reported (a peak, not a median).  A dtype the device
    cannot multiply gives None.
    """
    device = torch.device(device)
    n = size or (8192 if device.type == "cuda" else 2048)
    out: dict[str, float | None] = {}
    for name in dtypes:
        try:
            dt = DTYPES[name]
            a = torch.randn(n, n, device=device).to(dt)
            b = torch.randn(n, n, device=device).to(dt)
            torch.matmul(a, b)
            sync(device)
            best, spent, reps = float("inf"), 0.0, 0
            while reps < min_reps or spent < min_seconds:
                t0 = time.perf_counter()
                torch.matmul(a, b)
                sync(device)
                dt_s = time.perf_counter() - t0
                best, spent, reps = min(best, dt_s), spent + dt_s, reps + 1
            out[name] = 2 * n**3 / best / 1e9
        except (RuntimeError, TypeError) as e:  # dtype not supported here
            log.warning("matmul peak for %s not measured: %s", name, e)
            out[name] = None
    return out


# -- memory -----------------------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int | None:
    """Resident set size of this process from /proc/self/statm (None where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


MB = 2**20


def rss_bytes(pid: int | None = None, key: str = "VmRSS") -> int | None:
    """Resident memory of process ``pid`` (this one when None) from /proc: ``VmRSS`` now, or ``VmHWM``
    the peak since :func:`reset_peak`; None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid or 'self'}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) * 1024 for line in text.splitlines() if line.startswith(key + ":")), None)


def reset_peak(pid: int | None = None) -> None:
    """Start a new peak-resident measurement of process ``pid`` (Linux: ``5`` to ``clear_refs`` resets
    ``VmHWM``); nothing where that cannot be written."""
    try:
        Path(f"/proc/{pid or 'self'}/clear_refs").write_text("5")
    except OSError:
        pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PeakMemory:
    """Peak memory while a block runs.

    * CUDA: ``torch.cuda.max_memory_allocated`` after a reset (accelerator memory);
    * Linux: a daemon thread samples the resident set size from /proc/self/statm every
      ``interval`` seconds (plus one sample at entry and at exit): the peak RSS of the
      whole process, weights included;
    * elsewhere: ``ru_maxrss``, the peak since the process started.

    ``peak`` is absolute bytes, ``baseline`` the value at entry, ``delta = peak - baseline``.
    On the CPU the delta is a lower bound: memory the process freed earlier but kept (the
    allocator's free lists) is reused without raising the resident set size.
    """

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.005):
        self.device = torch.device(device)
        self.interval = interval
        self.peak = self.baseline = 0
        if self.device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated"
        elif _rss_bytes() is not None:
            self.method = f"RSS sampled from /proc/self/statm every {interval * 1000:g} ms"
        else:
            self.method = "ru_maxrss (peak since process start)"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def delta(self) -> int:
        """Bytes above the value at entry (never negative)."""
        return max(0, self.peak - self.baseline)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _rss_bytes()
            if rss is not None and rss > self.peak:
                self.peak = rss

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = self.peak = torch.cuda.memory_allocated(self.device)
        elif self.method.startswith("RSS"):
            self.baseline = self.peak = _rss_bytes() or 0
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        else:
            self.baseline = self.peak = _maxrss_bytes()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.peak = max(self.peak, _rss_bytes() or 0)
        else:
            self.peak = _maxrss_bytes()
