"""A released-size model end to end on a CPU, as a free CPU Space would serve it: the transformer's
decode and the VQ decode timed apart, the VQ decode in float32 (before) and with
:meth:`~arpg.tokenizer.VQModel.fast_decoding` (after), their PSNR, and the process's memory.

The logic of ``scripts/cpu_space_bench.py``; the weights are the released ones when their files
are present, else random ones of their shapes (:func:`arpg.measure.serving.build_arpg`).
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..devices import default_dtype
from ..tokenizer import VQModel, to_uint8
from .pixels import psnr
from .probes import _rss_bytes, machine_info
from .serving import build_arpg, build_vq, time_decode, time_vq

MB = 2**20


def rss_mb() -> float | None:
    """This process's resident memory in MB (None where unknown)."""
    rss = _rss_bytes()
    return None if rss is None else round(rss / MB, 1)


@torch.inference_mode()
def fast_decode_psnr(vq: VQModel, fast: VQModel, grid: int, n: int = 1) -> float:
    """The lowest PSNR (dB) of ``fast``'s decode against ``vq``'s over ``n`` random token grids."""
    codes = torch.randint(0, vq.cfg.codebook_size, (n, grid, grid), generator=torch.Generator().manual_seed(0))
    ref, got = to_uint8(vq.decode(codes)).numpy(), to_uint8(fast.decode(codes)).numpy()
    return float(np.min(psnr(got, ref)))


def _row(model: Any, vq: VQModel, fast: VQModel | None, batch: int, steps: int, warmup: int, repeats: int) -> dict:
    """One batch size: the transformer, then the VQ decode before and after."""
    grid = model.cfg.grid_size
    arpg = time_decode(model, batch, steps, None, warmup, repeats)
    before = time_vq(vq, grid, batch, warmup, repeats)
    after = time_vq(fast, grid, batch, warmup, repeats) if fast is not None else None
    row: dict[str, Any] = {
        "batch": batch,
        "steps": steps,
        "transformer_s": round(arpg["seconds"], 4),
        "vq_fp32_s": round(before["seconds"], 4),
        "vq_fast_s": round(after["seconds"], 4) if after else None,
        "end_to_end_before_s": round(arpg["seconds"] + before["seconds"], 4),
        "end_to_end_after_s": round(arpg["seconds"] + after["seconds"], 4) if after else None,
        "peak_rss_mb": round(max(r["peak_bytes"] for r in (arpg, before, after or before)) / MB, 1),
        "all_s": {"transformer": arpg["all_s"], "vq_fp32": before["all_s"], "vq_fast": after and after["all_s"]},
    }
    row["images_per_s_after"] = round(batch / row["end_to_end_after_s"], 4) if after else None
    return row


def end_to_end(
    model_name: str = "ARPG-L",
    vq_name: str = "VQ-16",
    batches: Sequence[int] = (1, 4),
    steps: int = 32,
    warmup: int = 1,
    repeats: int = 2,
    real: bool = True,
) -> dict[str, Any]:
    """``model_name`` + ``vq_name`` on this CPU in its default dtype: one row per batch size (see the
    module's docstring), the memory with the model and the fast tokenizer loaded, and the fast
    decode's PSNR against float32."""
    cpu = torch.device("cpu")
    gc.collect()
    base = rss_mb()
    model, source = build_arpg(model_name, cpu, default_dtype(cpu), real)
    vq, vq_source = build_vq(vq_name, cpu, real)
    fast = copy.deepcopy(vq).fast_decoding() if default_dtype(cpu) == torch.bfloat16 else None
    gc.collect()
    report: dict[str, Any] = {
        "model": model_name,
        "weights": source,
        "tokenizer": vq_name,
        "tokenizer_weights": vq_source,
        "dtype": str(model.dtype).removeprefix("torch."),
        "image_px": model.cfg.grid_size * vq.factor,
        "machine": machine_info(cpu),
        "rss_mb": {"before_loading": base, "model_and_both_tokenizers_loaded": rss_mb()},
        "fast_vq_psnr_db": round(fast_decode_psnr(vq, fast, model.cfg.grid_size), 2) if fast else None,
    }
    report["rows"] = [_row(model, vq, fast, b, steps, warmup, repeats) for b in batches]
    return report
