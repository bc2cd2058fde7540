"""The model and sampling flags of the command line read into what a command runs.

The flags are defined in :mod:`arpg.cli` (``add_model_args``, ``add_sampling_args``); the handlers of
:mod:`arpg.commands` and the scripts under ``scripts/`` read them here: ``--model`` (a registry name or a
folder, :func:`model_pipeline`) or ``--weights``/``--tokenizer`` into a :class:`~arpg.pipeline.Pipeline`
(:func:`load_pipeline`), and the sampling flags into :class:`~arpg.options.SamplingOptions`
(:func:`sampling_options`: ``pipe.defaults`` with the flags given).  Bad input raises ``ValueError``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from . import hub, zoo
from .measure.probes import DTYPES
from .options import SamplingOptions
from .pipeline import Pipeline


def model_pipeline(model: str, device: str | None = None, dtype: torch.dtype | None = None) -> Pipeline:
    """A model by registry name (:mod:`arpg.zoo`, e.g. "digits" or "ARPG-L") or a folder of
    arpg/vq/judge weights such as a preview packed by ``arpg train --preview DIR``. ``ValueError`` (one
    line) when a folder or weights file is missing; :class:`~arpg.hub.WeightsUnavailable` when a
    released model's files cannot be had offline."""
    entry = zoo.find(model)
    if entry is not None and not entry.trained_here:
        return hub.load_pipeline(entry.name, None, device=device, dtype=dtype)
    if entry is not None:
        if zoo.missing_files(entry.folder):
            raise ValueError(
                f"the {entry.name} model is not trained yet: {entry.folder / 'arpg.safetensors'} is missing; run "
                f"`python -m arpg train --recipe {entry.recipe or entry.name}` (or pack a preview with --preview DIR "
                "and pass --model DIR)"
            )
        return Pipeline.shipped(entry.folder, device=device, dtype=dtype, name=entry.title())
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ValueError(f"--model: {folder}: no such folder (give {model_names()} or a model folder)")
    try:
        folder = zoo.check_folder(folder)
    except ValueError as exc:
        raise ValueError(f"--model: {exc}") from None
    return Pipeline.shipped(folder, device=device, dtype=dtype)


def model_names() -> str:
    """The registry's names, for help texts and messages, comma-separated."""
    return ", ".join(zoo.MODELS)


def load_pipeline(a: argparse.Namespace, model: str | None = None) -> Pipeline:
    """The pipeline the model flags of :func:`arpg.cli.add_model_args` name: ``--weights``/``--tokenizer``
    (a path, ``hf://org/repo/file`` or ``ARPG-L``/``-XL``/``-XXL``; the tokenizer defaults to LlamaGen's
    VQ-16), or ``model`` (the value of ``--model``, see :func:`model_pipeline`), else the shipped digits model."""
    dtype = DTYPES[a.dtype] if getattr(a, "dtype", None) else None
    if model is not None and (a.weights or a.tokenizer):
        raise ValueError("--model and --weights/--tokenizer are alternatives: give one")
    if a.tokenizer and not a.weights:
        raise ValueError("--tokenizer needs --weights (the ARPG checkpoint it was trained with)")
    if a.weights:
        return hub.load_pipeline(a.weights, a.tokenizer, device=a.device, dtype=dtype)
    return model_pipeline(model or "digits", device=a.device, dtype=dtype)


def sampling_options(a: argparse.Namespace, base: SamplingOptions) -> SamplingOptions:
    """``base`` (usually ``pipe.defaults``) with the sampling flags that were given (validated)."""
    return base.replace(
        steps=a.steps,
        schedule=a.schedule,
        cfg_scale=a.cfg,
        cfg_schedule=a.cfg_schedule,
        temperature=a.temperature,
        top_k=a.top_k,
        top_p=a.top_p,
        order=a.order,
        step_attention=a.step_attention,
    )
