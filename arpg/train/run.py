"""``python -m arpg train``: every stage of a recipe in order, skipping (and saying so) the finished ones.

The command writes ``<out>/{vq,judge,arpg}.safetensors`` (+ a JSON config each; ``out`` defaults
to the recipe's, under ``assets/models``) and loss curves under ``<plots>/``.  Every stage
saves a resumable checkpoint under ``runs/<recipe>/``; rerunning the command continues where it
stopped, so a long recipe can run in chunks of ``max_minutes``.  A stage whose weights are already
in ``<out>`` is skipped with one log line naming the file and what to delete to train it again (on a
fresh clone the shipped weights are there, so nothing is retrained); weights of another model there
(another data set or preset) are an error, never silently kept or overwritten.  A recipe with a
``tokenizer_from`` folder trains only its image model (ARPG, or LlamaGen in raster order) on that
folder's tokenizer, and links that tokenizer and judge into ``<out>`` once the model is written there
(nothing appears in ``<out>`` before: a half-made model folder is never one the app lists).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..config import ARPGConfig, LlamaGenConfig, VQConfig, arpg_preset_name, llamagen_preset_name
from ..devices import resolve_device
from ..sidecar import read_sidecar
from ..tokenizer import VQModel
from ..validation import check_choice
from .loop import Budget, load_weights
from .recipes import RECIPES, Recipe
from .sharpen import run_vq_decoder
from .stages import train_judge, train_model, train_vq

log = logging.getLogger(__name__)
#: What ``train --stage`` runs: every stage of the recipe, or only the sharper tokenizer decoder.
STAGES = ("all", "vq-decoder")
#: The files a recipe's ``tokenizer_from`` folder lends it: the tokenizer and the judge, weights and JSON.
SHARED_FILES = ("vq.safetensors", "vq.json", "judge.safetensors", "judge.json")


def _sidecar(weights: Path) -> dict[str, Any] | None:
    """The JSON config beside ``weights`` (:func:`arpg.sidecar.read_sidecar`), or None when there is none."""
    return read_sidecar(weights) or None


def _same_model(r: Recipe, what: str, weights: Path) -> None:
    """Raise ``ValueError`` when the JSON beside ``weights`` describes another model than recipe ``r`` trains."""
    d = _sidecar(weights)
    if d is None:
        return
    if what == "tokenizer":
        found, wanted = VQConfig.from_dict(d), VQConfig.from_name(r.vq)
    elif what == r.model_title:
        found, wanted = (_preset_of(d), d.get("data", "digits")), (r.arpg, r.data)
    else:
        found, wanted = d.get("data", "digits"), r.data
    if found != wanted:
        raise ValueError(
            f"{weights} is another {what} ({found}) than this recipe trains ({wanted}); "
            f"give another output folder (the recipe's own is {r.out})"
        )


def _preset_of(d: dict[str, Any]) -> str | None:
    """The preset an image model's JSON ``d`` describes (ARPG's or LlamaGen's, by its ``family``), or None."""
    family = d.get("family", "arpg")
    if family == "arpg":
        return arpg_preset_name(ARPGConfig.from_dict(d))
    return llamagen_preset_name(LlamaGenConfig.from_dict(d)) if family == "llamagen" else None


def _shared_tokenizer(r: Recipe) -> VQModel:
    """The tokenizer of ``r.tokenizer_from``, checked as the recipe's; ``ValueError`` when that folder lacks
    one of :data:`SHARED_FILES` or holds another tokenizer."""
    src = Path(r.tokenizer_from or ".")
    missing = [name for name in SHARED_FILES if not (src / name).is_file()]
    if missing:
        raise ValueError(f"the recipe reuses the tokenizer and judge of {src}, which has no {', '.join(missing)}")
    _same_model(r, "tokenizer", src / "vq.safetensors")
    log.info("training on the tokenizer of %s (linked with its judge into the output once the model is written)", src)
    return load_weights(VQModel(VQConfig.from_name(r.vq)), src / "vq.safetensors")


def link_shared(r: Recipe, out: Path) -> None:
    """Link the tokenizer and judge of ``r.tokenizer_from`` into ``out`` (relative symbolic links; a file
    already there stays: the next run checks it as any other)."""
    if r.tokenizer_from is None:
        return
    src = Path(r.tokenizer_from)
    for name in SHARED_FILES:
        if not ((out / name).exists() or (out / name).is_symlink()):
            (out / name).symlink_to(os.path.relpath((src / name).resolve(), out.resolve()))
            log.info("linked %s to %s", out / name, src / name)


def run_folder(name: str, run_dir: str | Path | None = None) -> Path:
    """Where a recipe's run keeps its checkpoints: ``run_dir``, else ``runs/<name>``."""
    return Path(run_dir or Path("runs") / name)


def _finished(r: Recipe, what: str, weights: Path, run_dir: Path, leftovers: tuple[str, ...]) -> bool:
    """Whether ``weights`` exist; if so, log that the stage ``what`` is skipped and how to train it again.

    ``leftovers``: glob patterns in ``run_dir`` of the files a retraining must not resume from
    (named in the message only when some exist).  Weights of another model: ``ValueError``.
    """
    if not weights.exists():
        return False
    _same_model(r, what, weights)
    found = [f"{run_dir / pattern}" for pattern in leftovers if any(run_dir.glob(pattern))]
    also = f" and {', '.join(found)}" if found else ""
    log.warning("skipping the %s: %s exists; to train it again delete it%s", what, weights, also)
    return True


def _tokenizer(r: Recipe, out: Path, run_dir: Path, plots: Path, budget: Budget) -> VQModel | None:
    """The recipe's tokenizer: its ``tokenizer_from`` folder's, else the one in ``out``, else trained now (None
    when ``budget`` ran out first)."""
    if r.tokenizer_from is not None:
        return _shared_tokenizer(r)
    # Token caches and the image model are made with the tokenizer: retraining it means retraining them.
    if _finished(r, "tokenizer", out / "vq.safetensors", run_dir, ("vq_ckpt.pt", "tokens*.pt")):
        return load_weights(VQModel(VQConfig.from_name(r.vq)), out / "vq.safetensors")
    return train_vq(r, run_dir, out, plots, budget)


def run_recipe(
    name: str,
    out: str | Path | None = None,
    run_dir: str | Path | None = None,
    plots: str | Path | None = None,
    threads: int | None = None,
    device: str = "cpu",
    workers: int | None = None,
    recipe: Recipe | None = None,
    max_minutes: float | None = None,
    stage: str = "all",
) -> dict:
    """Run every stage of recipe ``name`` (or ``recipe``, saved under that name): tokenizer, judge, image model.

    Finished stages (weights in ``out``, default the recipe's ``out``) are skipped, each with a log
    line.  ``device`` runs the ARPG phases and the token encoding there (the small tokenizer and
    judge train on the CPU); ``workers`` processes render images for encoding; ``max_minutes``
    stops the run (state saved) after that long, to be continued by the next run.  Returns what
    ran: the recipe's fields, seconds per stage and ``finished`` (False when the time ran out).
    ``stage="vq-decoder"`` runs only :func:`arpg.train.sharpen.run_vq_decoder` on the tokenizer in ``out``.
    """
    if recipe is None and name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {sorted(RECIPES)}")
    r = recipe or RECIPES[name]
    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    workers = workers or min(8, os.cpu_count() or 1)
    budget = Budget(max_minutes)
    out, plots = Path(out or r.out), Path(plots or r.plots)
    run_dir = run_folder(name, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if check_choice("stage", stage, STAGES) == "vq-decoder":
        return run_vq_decoder(name, r, out, run_dir, plots, budget)
    times, t0 = {}, time.time()
    vq = _tokenizer(r, out, run_dir, plots, budget)
    times["tokenizer_s"], t0 = time.time() - t0, time.time()
    done, judge = vq is not None, out / "judge.safetensors"
    if done and r.tokenizer_from is None and not _finished(r, "judge", judge, run_dir, ("judge_ckpt.pt",)):
        done = train_judge(r, run_dir, out, plots, budget) is not None
    times["judge_s"], t0 = time.time() - t0, time.time()
    if done and not _finished(r, r.model_title, out / "arpg.safetensors", run_dir, (f"{r.prefix}*",)):
        done = train_model(r, vq.to(dev), run_dir, out, plots, device=dev, workers=workers, budget=budget) is not None
        vq.cpu()
    if done:
        link_shared(r, out)
    times["arpg_s"] = time.time() - t0
    if not done:
        log.warning(
            "recipe %s stopped after %.1f minutes; run the same command again to continue",
            name,
            sum(times.values()) / 60,
        )
    info = {"recipe": name, **asdict(r), **times, "finished": done}
    (run_dir / "train_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
