"""The scenes recipe's ARPG model trained on one GPU in one call, and brought back here.

On the GPU machine (the device tool runs commands in a copy of this repository; its files come
back from ``$OUT`` in files under 16 MiB), from the repository root:

    PYTHONPATH=. PYTHONUNBUFFERED=1 python3 scripts/gpu_scenes.py --pack "$OUT/scenes" --max-minutes 8

renders and encodes the recipe's token sets (the committed scenes tokenizer, on the GPU), trains
the ARPG phase there (``python -m arpg train --recipe scenes --device cuda`` with a fresh run
folder: the CPU run's checkpoints in runs/ are too large to carry), and writes the finished
weights in parts, with their config, the loss curve and what ran, to the ``--pack`` folder.  If
the time runs out first, the weights reached so far are packed instead (marked unfinished).
Back here:

    python scripts/gpu_scenes.py --unpack FOLDER

joins the parts into ``assets/models/scenes/arpg.safetensors`` (+ JSON; ``--out`` for another
folder, which a preview-style name then marks) and the losses into ``runs/scenes-gpu/``.
``--recipe scenes-smoke --device cpu`` runs the same path on tiny models in seconds (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

from arpg.checkpoints import save_checkpoint
from arpg.state_dicts import read_state_dict
from arpg.train.parts import join_parts, split_save
from arpg.train.plots import phase_losses
from arpg.train.recipes import RECIPES
from arpg.train.run import run_recipe

INFO = "scenes_info.json"


def parser() -> argparse.ArgumentParser:
    """The script's options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="scenes", choices=("scenes", "scenes-smoke"))
    ap.add_argument("--pack", type=Path, help="train, then write the weights in parts (and logs) to this folder")
    ap.add_argument("--unpack", type=Path, help="join parts written by --pack into --out")
    ap.add_argument("--out", type=Path, default=None, help="where --unpack writes (default: the recipe's folder)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--max-minutes", type=float, default=8.0, help="training budget (the weights so far are packed)")
    ap.add_argument("--workers", type=int, default=None, help="processes rendering images (default: every core)")
    return ap


def _models_folder(recipe: str) -> Path:
    """A fresh output folder holding the recipe's committed tokenizer and judge (when it has them),
    so the recipe skips those stages and trains only the ARPG model."""
    out = Path(tempfile.mkdtemp(prefix="gpu-scenes-"))
    shipped = Path(RECIPES[recipe].out)
    for name in ("vq", "judge"):
        for ext in (".safetensors", ".json"):
            if (shipped / f"{name}{ext}").exists():
                shutil.copy(shipped / f"{name}{ext}", out / f"{name}{ext}")
    return out


def train_and_pack(a: argparse.Namespace) -> dict:
    """Run the recipe on ``a.device`` within ``a.max_minutes`` and pack the ARPG weights into ``a.pack``."""
    t0 = time.time()
    device_name = torch.cuda.get_device_name() if a.device.startswith("cuda") else a.device
    print(f"torch {torch.__version__}, device {a.device} ({device_name})", flush=True)
    out, run_dir = _models_folder(a.recipe), Path(tempfile.mkdtemp(prefix="gpu-scenes-run-"))
    info = run_recipe(
        a.recipe,
        out=out,
        run_dir=run_dir,
        plots=out,
        device=a.device,
        workers=a.workers or os.cpu_count() or 1,
        max_minutes=a.max_minutes,
    )
    finished = bool(info["finished"])
    weights = out / "arpg.safetensors" if finished else run_dir / "arpg_latest.safetensors"
    if not weights.exists():
        raise SystemExit(f"gpu_scenes: no ARPG weights were written in {a.max_minutes} minutes (encoding took them)")
    a.pack.mkdir(parents=True, exist_ok=True)
    losses = phase_losses(run_dir, "arpg")
    trained_here = [  # a tokenizer or judge the recipe's folder lacked was trained in this run: it goes back too
        f.name for f in [*out.glob("vq.*"), *out.glob("judge.*")] if not (Path(RECIPES[a.recipe].out) / f.name).exists()
    ]
    for name in trained_here:
        shutil.copy(out / name, a.pack / name)
    meta = {
        "finished": finished,
        "steps_done": len(losses),
        "config": json.loads(weights.with_suffix(".json").read_text()),
        "losses": losses,
        "parts": split_save(read_state_dict(weights), a.pack / "arpg"),
        "trained_here": trained_here,
        "recipe": asdict(RECIPES[a.recipe]),
        "run_info": info,
        "device": device_name,
        "torch": torch.__version__,
        "total_s": time.time() - t0,
    }
    (a.pack / INFO).write_text(json.dumps(meta, indent=2) + "\n")
    print(f"packed {len(losses)} steps ({'finished' if finished else 'NOT finished'}) into {a.pack}", flush=True)
    return meta


def unpack(src: Path, out: Path, run_dir: Path, shipped: Path) -> dict:
    """Join the parts of ``src`` into ``out/arpg.safetensors`` (+ JSON) and the losses into ``run_dir``.

    Unfinished weights are a preview (named so by :func:`arpg.pipeline.shipped_name`): they never go to
    ``shipped`` (the recipe would take them for a finished model) but to a folder of their own, with
    copies of the tokenizer and judge so the app (``--scenes``) and ``eval --model`` load it."""
    meta = json.loads((src / INFO).read_text())
    config = dict(meta["config"])
    if not meta["finished"]:
        if out.resolve() == shipped.resolve():
            raise SystemExit(f"gpu_scenes: {src} holds unfinished weights; unpack them with --out into another folder")
        config["preview"] = {"phase": "arpg", "step": meta["steps_done"], "steps": meta["recipe"]["arpg_steps"]}
        out.mkdir(parents=True, exist_ok=True)
        for f in [*shipped.glob("vq.*"), *shipped.glob("judge.*")]:
            shutil.copy(f, out / f.name)
    out.mkdir(parents=True, exist_ok=True)
    for name in meta.get("trained_here", []):
        shutil.copy(src / name, out / name)
    save_checkpoint(join_parts(src, meta["parts"]), out / "arpg.safetensors", config)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "arpg_losses.json").write_text(json.dumps(meta["losses"]))
    print(
        f"wrote {out / 'arpg.safetensors'}: {meta['steps_done']} steps on {meta['device']} "
        f"in {meta['total_s'] / 60:.1f} min ({'finished' if meta['finished'] else 'not finished: a preview'})"
    )
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    if bool(a.pack) == bool(a.unpack):
        ap.error("give exactly one of --pack FOLDER (on the GPU machine) or --unpack FOLDER (here)")
    if a.unpack:
        shipped = Path(RECIPES[a.recipe].out)
        unpack(a.unpack, a.out or shipped, Path("runs") / f"{a.recipe}-gpu", shipped)
        return 0
    train_and_pack(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
