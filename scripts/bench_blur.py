"""What the judge does not see, on models trained here: blur and seams, before and after a change.

    OMP_NUM_THREADS=2 python scripts/bench_blur.py --json docs/benchmarks/blur-before.json

For each model: the tokenizer's PSNR and sharpness, generated images at 32 steps (judge accuracy, Frechet
distances in judge and texture features, sharpness), the canvas tasks against true renders and inpainting
the right half of held-out images (seams, sharpness): see :mod:`arpg.measure.blur`. The counts are flags
(smaller than ``eval``'s and ``bench_windows.py``'s defaults on a busy 2-core machine). The JSON keeps the
command, the machine and the results; the tables are printed.
"""

from __future__ import annotations

import argparse
import sys

import torch

from arpg.measure import evaluate
from arpg.measure.blur import PARTS, blur_text, measure_blur
from arpg.measure.probes import machine_info, machine_string
from arpg.measure.report import names_arg, script_command, write_outputs
from arpg.model_flags import model_pipeline

MODELS = ("digits", "scenes")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, help="where the results go")
    p.add_argument("--models", type=names_arg(MODELS), default=list(MODELS), help=f"some of {','.join(MODELS)}")
    p.add_argument("--parts", type=names_arg(PARTS), default=list(PARTS), help=f"some of {','.join(PARTS)}")
    p.add_argument("--tokenizer-images", type=int, default=evaluate.PSNR_IMAGES, help="held-out images encoded")
    p.add_argument("--per-class", type=int, default=100, help="generated images per class at 32 steps")
    p.add_argument("--outpaint", type=int, default=100, help="outpaint trials")
    p.add_argument("--panorama", type=int, default=20, help="panorama trials")
    p.add_argument("--resize", type=int, default=20, help="resize trials per strategy")
    p.add_argument("--inpaint", type=int, default=40, help="inpaint trials")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p.parse_args()


def main() -> None:
    a = _args()
    if a.threads:
        torch.set_num_threads(a.threads)
    info = machine_info(torch.device("cpu"))
    counts = dict(tokenizer_images=a.tokenizer_images, per_class=a.per_class, inpaint=a.inpaint)
    trials = {"outpaint": a.outpaint, "panorama": a.panorama, "resize": a.resize}
    out = {
        "command": script_command("bench_blur.py", sys.argv[1:]),
        "machine": machine_string(info),
        "machine_info": info,
        "models": {m: measure_blur(model_pipeline(m), a.parts, trials=trials, **counts) for m in a.models},
    }
    print("wrote", *write_outputs(out, a.json, None, None))
    print(blur_text(out["models"]))


if __name__ == "__main__":
    main()
