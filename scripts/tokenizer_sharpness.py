"""Tokenizers of one model side by side: PSNR and sharpness of their reconstructions of held-out images.

    OMP_NUM_THREADS=1 python scripts/tokenizer_sharpness.py --model scenes \\
        --tokenizer runs/vq-sharp-scenes/vq_decoder/vq.safetensors --images 200 \\
        --json docs/benchmarks/tokenizer-sharp-scenes.json --grid docs/examples/tokenizer_sharp_scenes.png

The model's own tokenizer (``--model``: digits, scenes or a folder) comes first, then every
``--tokenizer`` file (e.g. a decoder sharpened by ``train --stage vq-decoder``, or the one it left
so far, ``vq_decoder_latest.safetensors``): see :mod:`arpg.measure.tokenizers`. ``--grid`` writes a
picture: one row per class, the real image then each tokenizer's reconstruction.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from arpg.checkpoints import load_vq
from arpg.measure.probes import machine_info
from arpg.measure.report import write_outputs
from arpg.measure.tokenizers import compare_tokenizers, tokenizer_grid
from arpg.model_flags import model_pipeline


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="scenes", help="digits, scenes or a model folder (its tokenizer comes first)")
    p.add_argument("--tokenizer", action="append", default=[], help="a vq.safetensors to compare (repeatable)")
    p.add_argument("--images", type=int, default=200, help="held-out images per canvas")
    p.add_argument("--json", default=None, help="where the results go")
    p.add_argument("--grid", default=None, help="a PNG of real images beside every tokenizer's reconstruction")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def main() -> int:
    a = _args()
    torch.set_num_threads(a.threads)
    pipe = model_pipeline(a.model)
    names = [f"{a.model} (shipped)" if a.model in ("digits", "scenes") else a.model, *a.tokenizer]
    vqs = dict(zip(names, [pipe.vq, *(load_vq(t, device=pipe.device) for t in a.tokenizer)], strict=True))
    t0 = time.time()
    results = compare_tokenizers(pipe, vqs, a.images, lambda name, row: print(name, json.dumps(row), flush=True))
    if a.grid:
        tokenizer_grid(pipe, list(vqs.values()), Path(a.grid))
    out = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info(pipe.device),
        "images": a.images,
        "seconds": time.time() - t0,
        "tokenizers": results,
    }
    write_outputs(out, a.json, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
