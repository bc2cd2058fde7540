"""Animations of the decoding order, for the app, slides and papers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .sampling import method_kwargs

MAX_FRAMES = 64  # long 1-token-per-step decodes are shown at this many evenly spaced steps


def _subsample(n_steps: int, max_frames: int) -> np.ndarray:
    if n_steps <= max_frames:
        return np.arange(n_steps)
    return np.unique(np.linspace(0, n_steps - 1, max_frames).round().astype(int))


def trace_frames(pipe, out, label_text: str | None = None, scale: int | None = None,
                 max_frames: int = MAX_FRAMES) -> list[Image.Image]:
    """Animation frames (partial image | order map) of the first image of a pipeline
    output generated with ``snapshots=True``."""
    from demo.render import decode_frames

    trace = out.trace
    keep = _subsample(len(trace.snapshots), max_frames)
    import torch

    snaps = torch.stack([trace.snapshots[i][0] for i in keep])
    imgs = [im for i in range(0, len(snaps), 16) for im in pipe.decode(snaps[i:i + 16])]
    step_of = trace.step_of.numpy().copy()
    dec = step_of >= 0
    step_of[dec] = np.searchsorted(keep, step_of[dec])  # a cell shows up at the first kept frame after it
    if scale is None:
        scale = max(1, 256 // max(imgs[0].shape[:2]))
    return decode_frames(imgs, step_of, scale=scale, label=label_text)


def method_title(method: str, steps: int, n_cells: int) -> str:
    return {"arpg": f"ARPG, {steps} steps", "raster": f"raster, 1 token/step ({n_cells} steps)",
            "random1": f"random, 1 token/step ({n_cells} steps)"}[method]


def strategy_frames(pipe, label: int, strategies: list[tuple[str, dict]], seed: int | None = 0, **options):
    """Several decodes of the same class and seed side by side; ``strategies`` holds
    (title, generate() arguments such as steps and order).  Returns (frames, outputs)."""
    from demo.render import side_by_side

    seed = pipe.resolve_seed(seed)
    cols, outs = [], []
    for _, kw in strategies:
        out = pipe.generate([label], seed=seed, snapshots=True, **{**options, **kw})
        outs.append(out)
        cols.append(trace_frames(pipe, out, scale=None))
    return side_by_side(cols, [t for t, _ in strategies]), outs


def comparison_frames(pipe, label: int, steps: int = 16, seed: int | None = 0,
                      methods: tuple[str, ...] = ("raster", "random1", "arpg"), **options):
    """The same class and seed decoded by the strategies of :data:`arpg.sampling.METHODS`
    (raster and random one token per step, ARPG in ``steps``), side by side."""
    n_cells = pipe.grid[0] * pipe.grid[1]
    options = {k: v for k, v in options.items() if k not in ("steps", "order")}
    strategies = [(method_title(m, steps, n_cells), method_kwargs(m, steps, n_cells)) for m in methods]
    return strategy_frames(pipe, label, strategies, seed, **options)


def decoding_animation(pipe, label: int, path: str | Path, compare: bool = False, fps: float = 6.0,
                       **options) -> Path:
    """Write a GIF/MP4 of one decode (or three strategies side by side with ``compare``)."""
    from demo.render import save_animation

    path = Path(path)
    if path.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"the animation must be a .gif or .mp4 file, got {path.name!r}")
    if compare:
        frames, _ = comparison_frames(pipe, label, **options)
    else:
        out = pipe.generate([label], snapshots=True, **options)
        frames = trace_frames(pipe, out, label_text=pipe.class_names[label])
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_animation(frames, path, fps=fps)
