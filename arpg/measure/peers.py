"""``bench --models A,B,...``: several models raced on one machine, each at its own native settings.

Every model decodes the same class with the same seed and batch, at the steps its family decodes with
by default (ARPG 32 or 64 parallel steps, LlamaGen one token per step in raster order, RandAR 88 steps)
unless ``steps`` names others; each row is the median of timed runs after a warm-up, with peak memory
(:class:`~arpg.measure.probes.PeakMemory`) and forward passes, and beside it the figure the ARPG paper
publishes for that model and steps when there is one (``arpg/viz/published.json``, which names the paper
version of each row), so a reader sees what this machine gives next to what the paper measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..pipeline import Pipeline
from ..viz.compare import RACE_MODELS
from ..viz.plots import load_published
from .probes import PeakMemory, machine_info
from .timing import median

#: How many models one race takes (the same bound as a race drawn on one clock).
MIN_MODELS, MAX_MODELS = RACE_MODELS


def family_of(pipe: Pipeline) -> str:
    """The model family's name (ARPG, LlamaGen, RandAR), from the model's class."""
    return type(pipe.model).__name__


def published_row(name: str, steps: int) -> dict[str, Any] | None:
    """The paper's figures for model ``name`` at ``steps`` steps (``arpg/viz/published.json``), or None."""
    _, rows = load_published()
    return next((r for r in rows if r["model"] == name and int(r["steps"]) == steps), None)


def _timed(pipe: Pipeline, labels: list[int], steps: int, seed: int) -> tuple[float, int]:
    """Seconds of one generate call, images decoded to pixels as a user gets them, and its forward passes."""
    opts = pipe.defaults.replace(steps=steps)
    sync = torch.cuda.synchronize if pipe.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    out = pipe.generate(labels, opts, seed=seed)
    sync()
    return time.perf_counter() - t0, int(out.trace.forward_passes)


def race_one(
    pipe: Pipeline, steps: int, batch: int, label: int, seed: int, repeats: int, warmup: int
) -> dict[str, Any]:
    """One model's row: median seconds per call over ``repeats`` timed calls after ``warmup`` untimed ones."""
    labels = [label] * batch
    for _ in range(warmup):
        _timed(pipe, labels, steps, seed)
    with PeakMemory(pipe.device) as mem:
        runs = [_timed(pipe, labels, steps, seed) for _ in range(repeats)]
    seconds = median([s for s, _ in runs])
    return {
        "model": pipe.name,
        "family": family_of(pipe),
        "steps": steps,
        "batch": batch,
        "seconds_per_call": seconds,
        "images_per_s": batch / seconds,
        "seconds_per_image": seconds / batch,
        "forward_passes": runs[0][1],
        "peak_mb": mem.peak / 2**20,
        "memory_method": mem.method,
        "published": published_row(pipe.name, steps),
    }


def race(
    pipes: Sequence[Pipeline],
    steps: Mapping[str, int] | None = None,
    batch: int = 1,
    label: int = 0,
    seed: int = 0,
    repeats: int = 3,
    warmup: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Race ``pipes`` (2-4 models) one after another on this machine; ``steps``: steps by model name
    (default: each model's own, ``pipe.defaults.steps``). Returns the rows and the machine."""
    if not MIN_MODELS <= len(pipes) <= MAX_MODELS:
        raise ValueError(f"a race takes {MIN_MODELS} to {MAX_MODELS} models, got {len(pipes)}")
    names = [p.name for p in pipes]
    if len(set(names)) != len(names):
        raise ValueError(f"each model once, got {', '.join(names)}")
    rows = []
    for pipe in pipes:
        n = int((steps or {}).get(pipe.name, pipe.defaults.steps))
        if progress is not None:
            progress(f"{pipe.name}: {n} steps, batch {batch}")
        rows.append(race_one(pipe, n, batch, label % pipe.num_classes, seed, repeats, warmup))
    return {"rows": rows, "machine": machine_info(pipes[0].device), "label": label, "seed": seed}


def format_race(res: Mapping[str, Any]) -> str:
    """The race as a text table: this machine's figures, and the paper's beside them where it has one."""
    head = (
        f"{'model':<28} {'family':<9} {'steps':>5} {'batch':>5} {'img/s':>9} {'s/img':>8} {'passes':>6} {'peak MB':>8}"
    )
    lines = [head + "  published (img/s, GB, FID; A800, batch 64)"]
    for r in res["rows"]:
        pub = r["published"]
        paper = f"{pub['images_per_s']:g}, {pub['memory_gb']:g}, {pub['fid']:g} ({pub['source']})" if pub else "-"
        lines.append(
            f"{r['model'][:28]:<28} {r['family']:<9} {r['steps']:>5} {r['batch']:>5} {r['images_per_s']:>9.2f} "
            f"{r['seconds_per_image']:>8.3f} {r['forward_passes']:>6} {r['peak_mb']:>8.0f}  {paper}"
        )
    return "\n".join(lines)
