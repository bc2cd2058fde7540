"""Try a recipe's image model (ARPG, or LlamaGen in raster order) before its training ends: pack the weights
reached so far (the resumable checkpoint of the phase in progress, or the last finished phase) with the recipe's
tokenizer and judge into a folder that :meth:`arpg.pipeline.Pipeline.shipped` loads.

The folder is not the recipe's ``out``: the recipe takes ``out/arpg.safetensors`` as "the ARPG
stage is finished", so a preview written there would stop the training from resuming.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from ..checkpoints import save_checkpoint
from ..config import VQConfig
from .recipes import RECIPES, arpg_phases
from .stages import model_config, new_model


def _latest_weights(r: Any, run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The newest ARPG weights in ``run_dir`` and where they come from (phase, step, steps)."""
    for ph in reversed([p for p in arpg_phases(r) if p.steps > 0]):
        ckpt = run_dir / f"{ph.name}_ckpt.pt"
        if ckpt.exists():
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
            return state["model"], {"phase": ph.name, "step": int(state["step"]), "steps": ph.steps}
    raise FileNotFoundError(f"no ARPG checkpoint (*_ckpt.pt) in {run_dir}: the ARPG training has not started")


def pack_preview(
    recipe: str, out: str | Path, run_dir: str | Path | None = None, models: str | Path | None = None
) -> dict[str, Any]:
    """Write ``out/arpg.safetensors`` (+ JSON, whose ``"preview"`` says how far training was) and
    copies of the tokenizer and judge in ``models`` (default: the recipe's ``tokenizer_from`` folder,
    else where it ships); returns the ``"preview"`` record."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {sorted(RECIPES)}")
    r = RECIPES[recipe]
    run_dir, out, shipped = Path(run_dir or Path("runs") / recipe), Path(out), Path(models or r.tokenizer_from or r.out)
    if out.resolve() in (shipped.resolve(), Path(r.out).resolve()):
        raise ValueError(f"{out} is where the finished model goes; write the preview elsewhere")
    weights, where = _latest_weights(r, run_dir)
    cfg = model_config(r, VQConfig.from_name(r.vq).downsample)
    model = new_model(r, cfg)
    model.load_state_dict(weights)
    save_checkpoint(model, out / "arpg.safetensors", {**r.arpg_meta(cfg), "preview": where})
    for part in ("vq", "judge"):
        for suffix in (".safetensors", ".json"):
            src = shipped / f"{part}{suffix}"
            if src.exists():
                shutil.copyfile(src, out / src.name)
    return where
