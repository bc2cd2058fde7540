"""What serving costs: decode time per batch, steps and step mode, the VQ decode, memory, and the
weight-streaming floor of one step; the logic of ``scripts/gpu_serve_bench.py``.

Every measurement is a plain function of a model on a device, so the GPU script and its CPU test
(a tiny config) run the same code. Weights are the released ones when their files are present
(:func:`arpg.hub.cached_file`), else random ones of the same shapes: the time of a decode does not
depend on the values of its weights.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..capture import CapturedSteps
from ..checkpoints import load_vq
from ..config import ARPGConfig, VQConfig
from ..hub import RELEASED_TOKENIZER, cached_file
from ..model import ARPG
from ..options import model_defaults
from ..pipeline import load_fast
from ..sampling import EagerSteps, generate
from ..tokenizer import VQModel
from .probes import PeakMemory, machine_info, sync
from .timing import median

log = logging.getLogger(__name__)

#: The paper's throughput beside which the GPU numbers are read (ARPG v5, Table 2, one A800).
PAPER = {"ARPG-L 32 steps batch 64 images/s (A800)": 130.1, "ARPG-XL 64 steps batch 1 s (A100, LPD Table 1)": 1.71}


def build_arpg(name: str, device: torch.device, dtype: torch.dtype, real: bool = True) -> tuple[ARPG, str]:
    """The model called ``name`` in ``dtype``, fused: the released file when ``real`` and present, else
    random weights of its shapes. Returns (model, where its weights came from)."""
    path = cached_file(name) if real and name.startswith("ARPG-") and name != "ARPG-tiny" else None
    if path is not None:
        return load_fast(path, device, dtype), str(path)
    torch.manual_seed(0)
    with torch.device(device):
        model = ARPG(ARPGConfig.from_name(name)).to(dtype)
    model.init_weights().eval()
    return model.fuse().prepack(), "random"


def build_vq(name: str, device: torch.device, real: bool = True) -> tuple[VQModel, str]:
    """The VQ tokenizer ``name`` (float32): LlamaGen's file for VQ-16 when ``real`` and present, else random."""
    path = cached_file(RELEASED_TOKENIZER) if real and name == "VQ-16" else None
    if path is not None:
        return load_vq(path, device=device), str(path)
    torch.manual_seed(0)
    return VQModel(VQConfig.from_name(name)).to(device).eval(), "random"


def timed(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> dict[str, Any]:
    """``warmup`` untimed calls (the first one's seconds kept), then the median of ``repeats`` timed
    calls and the peak memory over them."""
    first = None
    for _ in range(warmup):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        first = first if first is not None else time.perf_counter() - t0
    times = []
    with PeakMemory(device) as pm:
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - t0)
    return {"seconds": median(times), "all_s": [round(t, 5) for t in times], "first_s": first, "peak_bytes": pm.peak}


def time_decode(
    model: ARPG, batch: int, steps: int, stepper: EagerSteps | None, warmup: int = 1, repeats: int = 3
) -> dict[str, Any]:
    """One ``generate`` call of ``batch`` images at ``steps`` steps with the model's default guidance."""
    opts = model_defaults(model.cfg).replace(steps=steps)
    labels = [i % model.cfg.num_classes for i in range(batch)]
    gen = torch.Generator(model.device)

    def call() -> None:
        generate(model, labels, opts, generator=gen.manual_seed(0), stepper=stepper)

    r = timed(call, model.device, warmup, repeats)
    return {**r, "images_per_s": batch / r["seconds"], "ms_per_step": 1000 * r["seconds"] / steps}


@torch.inference_mode()
def time_vq(vq: VQModel, grid: int, batch: int, warmup: int = 1, repeats: int = 3) -> dict[str, Any]:
    """The VQ decode of ``batch`` token grids of ``grid`` x ``grid``."""
    codes = torch.randint(0, vq.cfg.codebook_size, (batch, grid, grid), device=vq.device)
    r = timed(lambda: vq.decode(codes), vq.device, warmup, repeats)
    return {**r, "images_per_s": batch / r["seconds"]}


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the parameters (what one step reads at least once)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def copy_bandwidth(device: torch.device, mib: int | None = None, repeats: int = 5) -> float:
    """Device memory bandwidth in bytes/s from the best of ``repeats`` copies of ``mib`` MiB (read + write;
    default 1 GiB on a GPU, 128 MiB on a CPU, both well past the caches)."""
    mib = mib or (1024 if device.type == "cuda" else 128)
    src = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() / best


def steppers(model: ARPG, modes: Sequence[str]) -> dict[str, EagerSteps]:
    """``"eager"`` and the :class:`CapturedSteps` modes asked for (``"graph"``, ``"compile"``, ``"static"``)."""
    return {m: EagerSteps(model) if m == "eager" else CapturedSteps(model, m, max_plans=8) for m in modes}


def _free(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _model_rows(name: str, a: ServeBench, write: Callable[[], None], report: dict[str, Any]) -> None:
    """Every (steps, batch, mode) of one model, each row written as soon as it is measured."""
    model, source = build_arpg(name, a.device, a.dtype, a.real)
    floor_ms = 1000 * weight_bytes(model) / report["bandwidth_bytes_per_s"]
    report["models"][name] = {"weights": source, "params": sum(p.numel() for p in model.parameters())}
    report["models"][name].update(weight_bytes=weight_bytes(model), weight_stream_floor_ms_per_step=floor_ms)
    modes = steppers(model, a.modes)
    for steps in a.steps:
        for batch in a.batches:
            for mode, stepper in modes.items():
                row: dict[str, Any] = {"model": name, "steps": steps, "batch": batch, "mode": mode}
                if time.monotonic() > a.deadline:
                    row["skipped"] = "out of time (--budget-s)"
                else:
                    try:
                        row.update(time_decode(model, batch, steps, stepper, a.warmup, a.repeats))
                    except Exception as exc:  # noqa: BLE001 - e.g. out of memory: recorded, the rest still runs
                        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                        _free(a.device)
                report["rows"].append(row)
                log.info("%s", row)
                write()
    del model, modes
    _free(a.device)


@dataclass
class ServeBench:
    """What :func:`serving_bench` measures and how."""

    models: Sequence[str] = ("ARPG-L", "ARPG-XL")
    batches: Sequence[int] = (1, 64)
    steps: Sequence[int] = (32, 64)
    modes: Sequence[str] = ("eager", "graph")
    vq: str = "VQ-16"
    device: torch.device = field(default_factory=lambda: torch.device("cuda"))
    dtype: torch.dtype = torch.bfloat16
    warmup: int = 1
    repeats: int = 3
    real: bool = True
    deadline: float = float("inf")  # time.monotonic() after which the remaining rows are skipped


def serving_bench(a: ServeBench, out: str | Path | None = None) -> dict[str, Any]:
    """Decode time per model, steps, batch and step mode; the VQ decode per batch (float32 and bf16);
    peak memory; the weight-streaming floor of a step. The JSON is rewritten at ``out`` after each row,
    so a run cut short still leaves what it measured."""
    report: dict[str, Any] = {"machine": machine_info(a.device), "dtype": str(a.dtype).removeprefix("torch.")}
    report.update(paper=PAPER, bandwidth_bytes_per_s=copy_bandwidth(a.device), models={}, rows=[], vq=[])

    def write() -> None:
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(json.dumps(report, indent=2, default=str) + "\n")

    for name in a.models:
        _model_rows(name, a, write, report)
    vq, source = build_vq(a.vq, a.device, a.real)
    report["vq_weights"] = source
    grid = ARPGConfig.from_name(a.models[0]).grid_size if a.models else 16
    for dtype in (torch.float32, torch.bfloat16):
        if dtype != torch.float32:
            vq.fast_decoding(dtype, channels_last=True)
        for batch in a.batches:
            if time.monotonic() > a.deadline:
                break
            r = time_vq(vq, grid, batch, a.warmup, a.repeats)
            report["vq"].append({"dtype": str(dtype).removeprefix("torch."), "batch": batch, **r})
            write()
    return report
