"""Checkpoints and models: strict loading, JSON config sidecars, the one writer, conversion.

Loading (:func:`load_arpg`, :func:`load_llamagen`, :func:`load_randar`, :func:`load_vq`, and :func:`load_transformer`
for whichever image model a file holds) reads the file with
:func:`arpg.state_dicts.read_state_dict`, tells its family from the keys
(:func:`arpg.state_dicts.detect_family`), builds the model on the ``meta`` device,
compares every key and shape with the checkpoint *before* touching the model, then
loads with ``assign=True`` (no random init, the checkpoint's tensors become the
weights).  The config comes from a JSON sidecar (``<stem>.json``, the output of
``cfg.to_dict()``), else the caller, else the family's inference from shapes
(:func:`arpg.state_dicts.infer_arpg_config` and its siblings).

Writing goes through :func:`save_checkpoint` only (training, conversion, scripts): the
weights as ``.safetensors`` and the config as ``<stem>.json``, each written to a temporary
file in the same folder and moved into place with ``os.replace``, so a reader never sees
half a file.

Every failure raises :class:`arpg.state_dicts.CheckpointError` with a one-line message.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import save_file

from .config import ARPGConfig, LlamaGenConfig, RandARConfig, VQConfig
from .llamagen import LlamaGen
from .model import ARPG
from .randar import RandAR
from .sidecar import read_sidecar, sidecar_path
from .state_dicts import (
    FAMILY_BY_NAME,
    CheckpointError,
    PathLike,
    StateDict,
    detect_family,
    first_line,
    infer_arpg_config,
    infer_llamagen_config,
    infer_randar_config,
    infer_vq_config,
    read_state_dict,
    short_list,
)
from .tokenizer import VQModel

logger = logging.getLogger(__name__)


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


# -- loading into a model ------------------------------------------------------------------
def load_into(
    model: nn.Module, sd: Mapping[str, torch.Tensor], strict: bool = True, dtype: torch.dtype | None = None
) -> nn.Module:
    """Check keys and shapes, then ``model.load_state_dict(sd, assign=True)``.

    The model takes the checkpoint's tensors (their dtype and device; floating-point ones
    cast to ``dtype`` if given), so a model built on ``meta`` becomes real.  With
    ``strict=False`` missing and unexpected keys are logged instead of raised (a missing
    key of a meta model still raises); shape mismatches always raise.  Returns ``model``.
    """
    name = type(model).__name__
    expected = {k: _shape(v) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    wrong = [
        f"{k} (checkpoint {_shape(sd[k])} vs model {expected[k]})"
        for k in expected
        if k in sd and _shape(sd[k]) != expected[k]
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {short_list(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {short_list(wrong)}")
    if wrong or (strict and problems):
        raise CheckpointError(f"checkpoint does not match {name}: " + "; ".join(problems))
    if problems:
        logger.warning("loading %s non-strictly: %s", name, "; ".join(problems))
    tensors = {k: sd[k] for k in expected if k in sd}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    model.load_state_dict(tensors, strict=False, assign=True)  # keys already checked above
    still_meta = [k for k, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if still_meta:
        raise CheckpointError(f"{name} still has tensors on the meta device after loading: {short_list(still_meta)}")
    return model


@dataclass(frozen=True)
class _Loader:
    """How to load one family of :data:`arpg.state_dicts.FAMILIES`: its config class, its model class
    and how its config is inferred from shapes."""

    config: type
    model: type
    infer: Callable[[StateDict], Any]


#: The loadable families.
_LOADERS: dict[str, _Loader] = {
    "arpg": _Loader(ARPGConfig, ARPG, infer_arpg_config),
    "randar": _Loader(RandARConfig, RandAR, infer_randar_config),
    "llamagen": _Loader(LlamaGenConfig, LlamaGen, infer_llamagen_config),
    "vq": _Loader(VQConfig, VQModel, infer_vq_config),
}
#: The families whose models decode images (what ``--weights`` may name).
TRANSFORMERS = ("arpg", "randar", "llamagen")


def _loader(family: str) -> _Loader:
    if family not in _LOADERS:
        raise CheckpointError(f"{FAMILY_BY_NAME[family].title} checkpoints are recognised but cannot be loaded yet")
    return _LOADERS[family]


def _read_sidecar(path: Path, family: str) -> Any:
    """Config from ``<stem>.json`` next to ``path`` if it is one of ours."""
    side = sidecar_path(path)
    try:
        d = read_sidecar(path)
    except ValueError as exc:
        raise CheckpointError(first_line(exc)) from None
    if "family" not in d:
        logger.debug("%s has no 'family' entry; not a config sidecar, ignored", side)
        return None
    if d["family"] != family:
        raise CheckpointError(f"{side}: config family {d['family']!r} but the weights are a {family!r} checkpoint")
    try:
        return _loader(family).config.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{side}: invalid {family} config ({first_line(exc)})") from None


def _resolve_config(path: Path, sd: StateDict, family: str, config: Any) -> Any:
    cls = _loader(family).config
    if isinstance(config, str):
        try:
            config = cls.from_name(config)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
    if config is not None and type(config) is not cls:  # exact: a RandARConfig is a LlamaGenConfig too
        raise CheckpointError(f"config is a {type(config).__name__}, expected a {cls.__name__} or a preset name")
    side = _read_sidecar(path, family)
    if side is not None:
        if config is not None and config != side:
            logger.warning("%s: the JSON sidecar's config differs from the one given; using the sidecar", path)
        return side
    if config is not None:
        return config
    return _loader(family).infer(sd)


def _load(
    path: PathLike, families: tuple[str, ...], config: Any, device: torch.device | str, dtype: torch.dtype | None
) -> nn.Module:
    """The model of ``path`` if its keys say one of ``families``; CheckpointError naming what it is otherwise."""
    path = Path(path)
    sd = read_state_dict(path)
    found = detect_family(sd)
    if found not in families:
        names = [FAMILY_BY_NAME[f].what for f in families]
        wanted = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        raise CheckpointError(f"{path} looks like {FAMILY_BY_NAME[found].what} checkpoint, expected {wanted}")
    cfg = _resolve_config(path, sd, found, config)
    model = _build_empty(cfg)
    load_into(model, sd, strict=True, dtype=dtype)
    logger.info("loaded %s from %s", type(model).__name__, path)
    return model.to(device).eval()


def _build_empty(cfg: Any) -> nn.Module:
    """The model for ``cfg`` on the ``meta`` device (no memory, no random init)."""
    model_cls = next(loader.model for loader in _LOADERS.values() if type(cfg) is loader.config)
    with torch.device("meta"):
        return model_cls(cfg)


def load_arpg(
    path: PathLike,
    config: ARPGConfig | str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> ARPG:
    """Load an ARPG model (eval mode) from ``.safetensors`` / ``.pt`` etc.

    Config: the JSON sidecar ``<stem>.json`` if present, else ``config`` (object or preset
    name), else inferred from the shapes.  ``dtype`` None keeps the checkpoint's dtype.
    """
    return _load(path, ("arpg",), config, device, dtype)  # type: ignore[return-value]


def load_llamagen(
    path: PathLike,
    config: LlamaGenConfig | str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> LlamaGen:
    """Load a LlamaGen model (eval mode), e.g. a released ``c2i_L_256.pt`` (``{"model": state_dict}``,
    read with ``weights_only=True``); config resolved as in :func:`load_arpg`."""
    return _load(path, ("llamagen",), config, device, dtype)  # type: ignore[return-value]


def load_randar(
    path: PathLike,
    config: RandARConfig | str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> RandAR:
    """Load a RandAR model (eval mode), e.g. a released ``.safetensors`` or a ``{"model": state_dict}``
    pickle (read with ``weights_only=True``); config resolved as in :func:`load_arpg`."""
    return _load(path, ("randar",), config, device, dtype)  # type: ignore[return-value]


def load_transformer(
    path: PathLike, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> ARPG | LlamaGen:
    """Load the image model of whichever family the file's keys say (:data:`TRANSFORMERS`), eval mode;
    config resolved as in :func:`load_arpg` (sidecar, else inferred)."""
    return _load(path, TRANSFORMERS, None, device, dtype)  # type: ignore[return-value]


def load_vq(
    path: PathLike,
    config: VQConfig | str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> VQModel:
    """Load a VQ tokenizer (eval mode); config resolved as in :func:`load_arpg`."""
    return _load(path, ("vq",), config, device, dtype)  # type: ignore[return-value]


# -- writing -------------------------------------------------------------------------------
def _tensors_to_write(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """CPU, contiguous, unshared copies safetensors accepts; meta tensors refused."""
    tensors: StateDict = {}
    seen: set[tuple[int, int]] = set()
    for k, v in sd.items():
        if v.is_meta:
            raise CheckpointError(f"cannot save {k!r}: it is on the meta device (weights were never loaded)")
        t = v.detach().cpu().contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key in seen or t.untyped_storage().nbytes() != t.numel() * t.element_size():
            t = t.clone()  # safetensors refuses shared or partial storages
        seen.add(key)
        tensors[k] = t
    return tensors


def _config_dict(weights: nn.Module | Mapping[str, torch.Tensor], config: Any) -> dict[str, Any] | None:
    """The JSON sidecar's content: ``config`` (a mapping or a config object), else the module's ``cfg``."""
    if config is None:
        config = getattr(weights, "cfg", None)
    if config is None:
        return None
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if isinstance(config, Mapping):
        return dict(config)
    raise CheckpointError(f"config is a {type(config).__name__}, expected a dict or a model config")


def _write_temp(path: Path, write: Callable[[Path], None]) -> Path:
    """Write a temporary sibling of ``path`` with ``write`` and flush it to disk; returns its path."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # safetensors writes 0600; weights and configs are for every user
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def save_checkpoint(
    weights: nn.Module | Mapping[str, torch.Tensor],
    path: PathLike,
    config: Mapping[str, Any] | ARPGConfig | LlamaGenConfig | VQConfig | None = None,
) -> Path:
    """Write ``weights`` (a module or a state dict) to ``path`` (.safetensors) and ``config`` to ``<stem>.json``.

    ``config`` is a dict or a model config; None means the module's ``cfg`` if it has one, else
    no JSON is written.  Both files are written to temporary files in the same folder first and
    then moved into place with ``os.replace`` (a reader sees the old file or the new one, never
    half of one).  Shared or non-contiguous tensors are copied; meta tensors raise
    :class:`CheckpointError`.  Returns ``path``.
    """
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{path}: output must end in .safetensors")
    sd = weights.state_dict() if isinstance(weights, nn.Module) else weights
    tensors = _tensors_to_write(sd)
    meta = _config_dict(weights, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    temps = [(_write_temp(path, lambda t: save_file(tensors, str(t), metadata={"format": "pt"})), path)]
    if meta is not None:
        side = path.with_suffix(".json")
        try:
            temps.append((_write_temp(side, lambda t: t.write_text(json.dumps(meta, indent=2) + "\n")), side))
        except BaseException:
            temps[0][0].unlink(missing_ok=True)
            raise
    for tmp, final in temps:
        os.replace(tmp, final)
    logger.info("wrote %d tensors to %s%s", len(tensors), path, " and its config" if meta is not None else "")
    return path


def convert(
    in_path: PathLike,
    out_path: PathLike,
    config: ARPGConfig | LlamaGenConfig | RandARConfig | VQConfig | str | None = None,
) -> str:
    """Convert any readable checkpoint to ``out_path`` (.safetensors) + ``<stem>.json``.

    The config is resolved as in :func:`load_arpg` (sidecar of ``in_path``, ``config``,
    inference) and verified by a strict key + shape check on a ``meta`` model before
    anything is written.  Buffers (e.g. the VQ ``quantize.codebook_used``) are kept.
    Returns the family (a name of :data:`arpg.state_dicts.FAMILIES`: ``"arpg"``, ``"randar"``,
    ``"llamagen"``, ``"vq"``).
    """
    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{out_path}: output must end in .safetensors")
    if out_path.resolve() == in_path.resolve():
        raise CheckpointError(f"{out_path}: output would overwrite the input")
    sd = read_state_dict(in_path)
    family = detect_family(sd)
    cfg = _resolve_config(in_path, sd, family, config)
    model = load_into(_build_empty(cfg), sd, strict=True)
    save_checkpoint(model, out_path, cfg)
    return family
