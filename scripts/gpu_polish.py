"""Phase 3 ("polish") of the digits recipe on one GPU, sized to a time budget.

Phase 3 continues phase 2's ARPG weights on many more images of the generator's data style,
with a larger batch and an exponential moving average of the weights.  On a CUDA machine,
from the repository root, with phase 2's weights given by ``--phase2`` (they were the shipped
weights before phase 3 existed: ``git show 15c28fd:assets/models/arpg.safetensors > phase2.safetensors``):

    python scripts/gpu_polish.py --phase2 phase2.safetensors --minutes 6 --pack OUT_DIR

It renders and encodes the token set, times a few training steps, picks the step count that
fills the budget, runs ``arpg.train.run.run_recipe`` with it, and writes the new weights to
OUT_DIR in parts small enough to copy back (plus the loss curve and a JSON of what ran).
Back on the development machine ``python scripts/gpu_polish.py --unpack OUT_DIR`` joins the
parts into runs/digits/; ship one as assets/models/arpg.safetensors (in bf16, as the recipe's
``ship_bf16`` does) and set
``polish_steps`` in the recipe to the step count printed, so ``python -m arpg train
--recipe digits --device cuda`` repeats the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from arpg.checkpoints import save_checkpoint
from arpg.config import ARPGConfig, VQConfig
from arpg.model import ARPG
from arpg.state_dicts import read_state_dict
from arpg.tokenizer import VQModel
from arpg.train.loop import Stage, TokenSet, fit_arpg, load_weights, new_arpg_optimizer
from arpg.train.parts import join_parts, split_save
from arpg.train.plots import phase_losses
from arpg.train.recipes import RECIPES, Recipe
from arpg.train.run import run_recipe
from arpg.train.stages import encode_dataset

MODELS = Path("assets/models")


def step_seconds(r: Recipe, tokens: TokenSet, device: str, probe: int) -> float:
    """Seconds per training step of phase 3's shape (a throwaway model, same batch and EMA)."""
    model = ARPG(ARPGConfig.from_name(r.arpg)).init_weights().to(device)
    with tempfile.TemporaryDirectory() as tmp:
        st = Stage("probe", Path(tmp), model, new_arpg_optimizer(model, r.polish_lr), ema=r.polish_ema)
        st.save = lambda: None  # the real run checkpoints rarely; keep disk writes out of the timing
        fit = lambda n: fit_arpg(
            model,
            st,
            [tokens],
            n,
            r.polish_lr,
            r.polish_batch,  # noqa: E731
            r.label_dropout,
            0,
            r.bf16,
            desc="timing",
        )
        fit(5)  # warm-up (kernels, allocator)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fit(5 + probe)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / probe


def unpack(src: Path, run_dir: Path) -> None:
    """Join the parts written by ``--pack`` into ``run_dir`` (weights + configs + phase 3's losses)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    info = json.loads((src / "polish_info.json").read_text())
    for stem, names in info["parts"].items():
        state = join_parts(src, names)
        save_checkpoint(state, run_dir / f"{stem}.safetensors", info["config"])
        print(f"wrote {run_dir / stem}.safetensors ({len(state)} tensors)")
    (run_dir / "arpg_polish_losses.json").write_text(json.dumps(info["losses"]))
    print(
        f"polish_steps={info['recipe']['polish_steps']} polish_batch={info['recipe']['polish_batch']} "
        f"({info['step_s'] * 1e3:.1f} ms/step, {info['train_s'] / 60:.1f} min)"
    )


def parser() -> argparse.ArgumentParser:
    """The script's options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=6.0, help="budget for everything, encoding included")
    ap.add_argument("--pack", type=Path, help="write the weights in parts (and logs) to this folder")
    ap.add_argument("--unpack", type=Path, help="join parts written by --pack into --run-dir")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/digits"))
    ap.add_argument("--phase2", type=Path, help="phase 2's ARPG weights (default: RUN_DIR/arpg_focus.safetensors)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--probe", type=int, default=20, help="steps timed to size the run")
    return ap


def sized_recipe(a: argparse.Namespace, deadline: float, workers: int) -> tuple[Recipe, dict]:
    """The digits recipe with phase 3 sized to end by ``deadline``; also what the sizing measured."""
    r = RECIPES["digits"]
    r = replace(r, polish_batch=a.batch or r.polish_batch, polish_images=a.images or r.polish_images)
    vq = load_weights(VQModel(VQConfig.from_name(r.vq)), MODELS / "vq.safetensors").to(a.device)
    t0 = time.time()
    tokens = encode_dataset(r, vq, a.run_dir, style=r.focus_style, n_images=r.polish_images, workers=workers)
    print(f"{len(tokens.codes)} images encoded in {time.time() - t0:.1f} s", flush=True)
    t_step = step_seconds(r, tokens, a.device, a.probe)
    room = deadline - time.time() - 60  # saving, packing and the copy back
    steps = max(10, int(room / t_step))
    print(f"{t_step * 1e3:.1f} ms/step at batch {r.polish_batch}: {steps} steps", flush=True)
    return replace(r, polish_steps=steps), {"step_s": t_step, "images": len(tokens.codes)}


def pack(a: argparse.Namespace, meta: dict) -> None:
    """Write phase 3's weights in parts plus ``polish_info.json`` (``meta`` and the configs) to ``a.pack``."""
    a.pack.mkdir(parents=True, exist_ok=True)
    parts = {
        stem: split_save(read_state_dict(a.run_dir / f"{stem}.safetensors"), a.pack / stem)
        for stem in ("arpg_polish", "arpg_polish_ema")
    }
    meta = {
        "config": json.loads((a.run_dir / "arpg_polish.json").read_text()),
        "losses": phase_losses(a.run_dir, "arpg_polish"),
        **meta,
        "parts": parts,
    }
    (a.pack / "polish_info.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"packed into {a.pack}: {sorted(p.name for p in a.pack.iterdir())}")


def main() -> int:
    ap = parser()
    a = ap.parse_args()
    if a.unpack:
        unpack(a.unpack, a.run_dir)
        return 0
    t_start = time.time()
    run_dir = a.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if a.phase2:
        shutil.copy(a.phase2, run_dir / "arpg_focus.safetensors")
        shutil.copy(MODELS / "arpg.json", run_dir / "arpg_focus.json")
    if not (run_dir / "arpg_focus.safetensors").exists():
        ap.error(f"phase 2's weights are needed: pass --phase2 or put them at {run_dir / 'arpg_focus.safetensors'}")
    device_name = torch.cuda.get_device_name() if a.device.startswith("cuda") else a.device
    print(f"torch {torch.__version__}, device {a.device} ({device_name})", flush=True)
    workers = a.workers or os.cpu_count() or 1
    r, sizing = sized_recipe(a, t_start + a.minutes * 60, workers)
    out = Path(tempfile.mkdtemp())
    for name in ("vq", "judge"):  # present, so run_recipe skips those stages
        for ext in (".safetensors", ".json"):
            shutil.copy(MODELS / f"{name}{ext}", out / f"{name}{ext}")
    t0 = time.time()
    info = run_recipe("digits", out=out, run_dir=run_dir, plots=out, device=a.device, workers=workers, recipe=r)
    train_s = time.time() - t0
    tail = phase_losses(run_dir, "arpg_polish")[-100:]
    print(
        f"phase 3: {r.polish_steps} steps in {train_s / 60:.1f} min; mean loss of the last {len(tail)} steps "
        f"{sum(tail) / len(tail):.3f}",
        flush=True,
    )
    if a.pack:
        pack(
            a,
            {
                "recipe": asdict(r),
                **sizing,
                "train_s": train_s,
                "total_s": time.time() - t_start,
                "device": device_name,
                "torch": torch.__version__,
                "run_info": info,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
