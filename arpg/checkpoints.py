"""Checkpoint I/O: safe reading, strict key + shape checks, config inference, conversion.

Reading (:func:`read_state_dict`):

* ``.safetensors`` with :func:`safetensors.torch.load_file`;
* ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` with ``torch.load(..., weights_only=True)`` only.
  Pickles that need anything beyond tensors and plain containers are refused
  (``argparse.Namespace``, which LlamaGen training checkpoints store under ``args``,
  is the one extra class allowed: it cannot run code).

A top-level wrapper is unwrapped in the order ``state_dict`` > ``model`` > ``module`` >
``ema`` (the released ARPG files use ``state_dict``, LlamaGen uses ``model``; training
checkpoints holding both ``model`` and ``ema`` give the raw weights).  Leading
``module.`` (DDP) and ``_orig_mod.`` (``torch.compile``) prefixes are stripped.

Loading (:func:`load_arpg`, :func:`load_vq`) builds the model on the ``meta`` device,
compares every key and shape with the checkpoint *before* touching the model, then
loads with ``assign=True`` (no random init, the checkpoint's tensors become the
weights).  The config comes from a JSON sidecar (``<stem>.json``, the output of
``cfg.to_dict()``), else the caller, else :func:`infer_arpg_config` /
:func:`infer_vq_config`.

Every failure raises :class:`CheckpointError` with a one-line message.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Union

import torch
import torch.nn as nn

from .config import ARPG_PRESETS, VQ_PRESETS, ARPGConfig, VQConfig, find_multiple

if TYPE_CHECKING:  # the model classes are imported lazily at load time
    from .model import ARPG
    from .tokenizer import VQModel

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
StateDict = dict[str, torch.Tensor]

SAFETENSORS_EXTS = (".safetensors",)
PICKLE_EXTS = (".pt", ".pth", ".bin", ".ckpt")
WRAPPER_KEYS = ("state_dict", "model", "module", "ema")  # unwrap order, first present wins
STRIP_PREFIXES = ("module.", "_orig_mod.")
ARPG_HEAD_DIM = 64  # head size of every released ARPG model


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not match the model (one-line message)."""


# -- small helpers -------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception message (or its type name)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip().split(". ", 1)[0].rstrip(".")[:200]
    return type(exc).__name__


def _names(items: list[str], limit: int = 5) -> str:
    """'a, b, c, d, e and 3 more'."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _indices(sd: Mapping[str, Any], prefix: str) -> list[int]:
    """Sorted distinct integers ``i`` of keys ``prefix + 'i.' + ...``."""
    found = set()
    for k in sd:
        if k.startswith(prefix):
            head = k[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _need(sd: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"cannot infer the {what} config: key {key!r} is missing")
    return sd[key]


# -- reading -------------------------------------------------------------------------------
def _torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True``; errors -> CheckpointError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol 4 ..."
            with torch.serialization.safe_globals([argparse.Namespace]):
                return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        msg = str(exc)
        if "Weights only load failed" in msg:
            op = re.search(r"Unsupported operand (\S+)", msg)
            # garbage bytes, or a raw pickle (pickle.dump, protocol 4+) the safe unpickler can't parse
            if op:
                with open(path, "rb") as f:
                    head = f.read(2)
                if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
                    raise CheckpointError(
                        f"{path}: refusing to unpickle arbitrary objects: a raw pickle (protocol {head[1]}) "
                        "that weights_only loading cannot parse; re-save its state dict with torch.save or "
                        "convert it to .safetensors") from None
                raise CheckpointError(f"{path}: corrupt or unreadable checkpoint (pickle opcode "
                                      f"{op.group(1)} is not supported by weights_only loading)") from None
            m = re.search(r"GLOBAL ([\w.]+)", msg)
            needs = f" (it needs {m.group(1)})" if m else ""
            raise CheckpointError(
                f"{path}: refusing to unpickle arbitrary objects{needs}; only tensors and plain "
                "containers are loaded (weights_only=True); if you trust the file, re-save just "
                "its state dict or convert it to .safetensors") from None
        if isinstance(exc, EOFError) or not msg:
            raise CheckpointError(f"{path}: truncated or corrupt checkpoint (unexpected end of file)") \
                from None
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({_first_line(exc)})") from None


def _unwrap(obj: Any, path: Path) -> StateDict:
    """Find the flat ``name -> tensor`` dict inside a loaded object."""
    for _ in range(3):  # e.g. {"model": {"state_dict": ...}}
        if not isinstance(obj, Mapping):
            break
        if any(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        key = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            break
        logger.debug("%s: using the %r entry", path, key)
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, expected a state dict (name -> tensor)")
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        top = _names([repr(k) for k in obj]) or "nothing"
        raise CheckpointError(f"{path}: holds no tensors (top-level keys: {top}); expected a state dict "
                              f"or a dict with one of {', '.join(repr(k) for k in WRAPPER_KEYS)}")
    dropped = [str(k) for k in obj if k not in tensors]
    if dropped:
        logger.warning("%s: ignoring %d non-tensor entries: %s", path, len(dropped), _names(dropped))
    return tensors


def _strip_prefixes(sd: StateDict, path: Path) -> StateDict:
    out: StateDict = {}
    for k, v in sd.items():
        name = k
        while name.startswith(STRIP_PREFIXES):
            name = name.split(".", 1)[1]
        if name in out:
            raise CheckpointError(f"{path}: keys {k!r} and another both map to {name!r} "
                                  "after prefix stripping")
        out[name] = v
    return out


def read_state_dict(path: PathLike) -> StateDict:
    """Read a checkpoint file into a flat ``{name: tensor}`` dict on the CPU.

    Accepts ``.safetensors`` and ``.pt/.pth/.bin/.ckpt`` (loaded with ``weights_only=True``
    only).  Unwraps ``state_dict`` > ``model`` > ``module`` > ``ema`` and strips leading
    ``module.`` / ``_orig_mod.`` prefixes.  Tensors keep their stored dtype.
    Raises :class:`CheckpointError` for a missing, empty, unknown, corrupt or unsafe file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a directory, expected a checkpoint file")
    ext = path.suffix.lower()
    if ext not in SAFETENSORS_EXTS + PICKLE_EXTS:
        raise CheckpointError(f"{path}: unsupported file type {ext or '(no extension)'!r}, expected one of "
                              f"{', '.join(SAFETENSORS_EXTS + PICKLE_EXTS)}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty (0 bytes)")
    if ext in SAFETENSORS_EXTS:
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError, OSError, ...
            msg = f"{path}: truncated or corrupt safetensors file ({_first_line(exc)})"
            raise CheckpointError(msg) from None
    else:
        obj = _torch_load(path)
    sd = _strip_prefixes(_unwrap(obj, path), path)
    logger.info("read %d tensors from %s", len(sd), path)
    return sd


# -- family and config inference -----------------------------------------------------------
def detect_family(sd: Mapping[str, torch.Tensor]) -> str:
    """``"arpg"`` or ``"vq"`` from the key names; CheckpointError otherwise."""
    if "embeddings.weight" in sd or any(k.startswith("layers.self_dec.") for k in sd):
        return "arpg"
    if "encoder.conv_in.weight" in sd and "quantize.embedding.weight" in sd:
        return "vq"
    raise CheckpointError(
        "unrecognised checkpoint: expected ARPG keys (embeddings.weight, layers.self_dec.*) or VQ keys "
        f"(encoder.conv_in.weight, quantize.embedding.weight), found {_names(sorted(sd), 3) or 'no keys'}")


def _multiple_of_for(dim: int, ffn: int) -> int:
    """The ``multiple_of`` reproducing the SwiGLU size: 256 if it does, else the largest that does."""
    for m in (256, 2048, 1024, 512, 128, 64, 32, 16, 8, 4, 2, 1):
        if find_multiple(int(2 * 4 * dim / 3), m) == ffn:  # as ARPGConfig.ffn_dim
            return m
    raise CheckpointError(f"cannot infer multiple_of: ffn size {ffn} is not int(8*{dim}/3) rounded up to a "
                          "power-of-two multiple")


def infer_arpg_config(sd: Mapping[str, torch.Tensor], n_head: int | None = None) -> ARPGConfig:
    """ARPG config from tensor shapes (works on ``meta`` tensors too).

    dim, vocab_size, num_classes (embedding rows - vocab - 3), layer counts and the
    SwiGLU size are read from the weights.  What shapes cannot tell (n_head, grid_size,
    rope_base, norm_eps) comes from a named preset with the same shapes, else the
    defaults with head_dim 64 as released.  ``n_head`` overrides either.
    """
    emb = _need(sd, "embeddings.weight", "ARPG")
    head = _need(sd, "head.weight", "ARPG")
    w1 = _need(sd, "layers.self_dec.0.ffn.w1.weight", "ARPG")
    dim, vocab = emb.shape[1], head.shape[0]
    shapes = dict(dim=dim, vocab_size=vocab, num_classes=emb.shape[0] - vocab - 3,
                  n_self_layers=len(_indices(sd, "layers.self_dec.")),
                  n_cross_layers=len(_indices(sd, "layers.cross_dec.")))
    if shapes["num_classes"] < 0:
        raise CheckpointError(f"embeddings.weight has {emb.shape[0]} rows, "
                              f"expected at least vocab_size + 3 = {vocab + 3}")
    ffn = w1.shape[0]
    for name, preset in ARPG_PRESETS.items():
        cfg = ARPGConfig(**preset)
        if all(getattr(cfg, k) == v for k, v in shapes.items()) and cfg.ffn_dim == ffn:
            logger.info("checkpoint shapes match preset %s", name)
            if n_head is None:
                return cfg
            shapes = {k: v for k, v in cfg.to_dict().items() if k != "family"}  # override n_head below
            break
    else:
        shapes["multiple_of"] = _multiple_of_for(dim, ffn)
    if n_head is None:
        if dim % ARPG_HEAD_DIM:
            raise CheckpointError(f"cannot infer n_head: dim {dim} is not a multiple of {ARPG_HEAD_DIM}; "
                                  "pass n_head")
        n_head = dim // ARPG_HEAD_DIM
    try:
        cfg = ARPGConfig(**{**shapes, "n_head": n_head})
    except ValueError as exc:
        raise CheckpointError(f"inferred ARPG config is invalid: {exc}") from None
    logger.info("inferred ARPG config: %s", cfg)
    return cfg


def infer_vq_config(sd: Mapping[str, torch.Tensor]) -> VQConfig:
    """VQ config from tensor shapes (works on ``meta`` tensors too).

    codebook size/dim from ``quantize.embedding.weight``, ``ch`` from
    ``encoder.conv_in.weight``, ``ch_mult`` from each encoder level's output channels,
    ``z_channels`` from ``encoder.conv_out`` and ``num_res_blocks`` by counting
    ``encoder.conv_blocks.0.res.*``.  GroupNorm's group count is not stored in the weights:
    it comes from a named preset with the same shapes, else ``gcd(ch, 32)`` (32 as
    LlamaGen whenever it divides ``ch``).
    """
    n_codes, code_dim = _need(sd, "quantize.embedding.weight", "VQ").shape
    ch = _need(sd, "encoder.conv_in.weight", "VQ").shape[0]
    z = _need(sd, "encoder.conv_out.weight", "VQ").shape[0]
    levels = _indices(sd, "encoder.conv_blocks.")
    if not levels:
        raise CheckpointError("cannot infer the VQ config: no encoder.conv_blocks.* keys")
    mult = []
    for i in levels:
        c = _need(sd, f"encoder.conv_blocks.{i}.res.0.conv1.weight", "VQ").shape[0]
        if c % ch:
            raise CheckpointError(f"encoder level {i} has {c} channels, expected a multiple of ch={ch}")
        mult.append(c // ch)
    n_res = len(_indices(sd, "encoder.conv_blocks.0.res."))
    shapes: dict[str, Any] = dict(codebook_size=n_codes, codebook_dim=code_dim, ch=ch, ch_mult=tuple(mult),
                                  z_channels=z, num_res_blocks=n_res)
    for name, preset in VQ_PRESETS.items():
        cfg = VQConfig(**preset)
        if all(getattr(cfg, k) == v for k, v in shapes.items()):
            logger.info("checkpoint shapes match preset %s", name)
            return cfg
    cfg = VQConfig(**shapes, norm_groups=math.gcd(ch, 32))
    logger.info("inferred VQ config (no preset matches): %s", cfg)
    return cfg


# -- loading into a model ------------------------------------------------------------------
def load_into(model: nn.Module, sd: Mapping[str, torch.Tensor], strict: bool = True,
              dtype: torch.dtype | None = None) -> nn.Module:
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
    wrong = [f"{k} (checkpoint {_shape(sd[k])} vs model {expected[k]})"
             for k in expected if k in sd and _shape(sd[k]) != expected[k]]
    problems = []
    if missing:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {_names(wrong)}")
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
        raise CheckpointError(f"{name} still has tensors on the meta device after loading: "
                              f"{_names(still_meta)}")
    return model


def _read_sidecar(path: Path, family: str) -> ARPGConfig | VQConfig | None:
    """Config from ``<stem>.json`` next to ``path`` if it is one of ours."""
    side = path.with_suffix(".json")
    if side == path or not side.is_file():
        return None
    try:
        d = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{side}: unreadable config sidecar ({_first_line(exc)})") from None
    if not isinstance(d, dict) or "family" not in d:
        logger.debug("%s has no 'family' entry; not a config sidecar, ignored", side)
        return None
    if d["family"] != family:
        raise CheckpointError(f"{side}: config family {d['family']!r} but the weights are "
                              f"a {family!r} checkpoint")
    try:
        return (ARPGConfig if family == "arpg" else VQConfig).from_dict(d)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{side}: invalid {family} config ({_first_line(exc)})") from None


def _resolve_config(path: Path, sd: StateDict, family: str,
                    config: ARPGConfig | VQConfig | str | None) -> ARPGConfig | VQConfig:
    cls = ARPGConfig if family == "arpg" else VQConfig
    if isinstance(config, str):
        try:
            config = cls.from_name(config)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None
    if config is not None and not isinstance(config, cls):
        raise CheckpointError(f"config is a {type(config).__name__}, "
                              f"expected a {cls.__name__} or a preset name")
    side = _read_sidecar(path, family)
    if side is not None:
        if config is not None and config != side:
            logger.warning("%s: the JSON sidecar's config differs from the one given; using the sidecar",
                           path)
        return side
    if config is not None:
        return config
    return infer_arpg_config(sd) if family == "arpg" else infer_vq_config(sd)


_FAMILY_NAMES = {"arpg": "an ARPG model", "vq": "a VQ tokenizer"}


def _load(path: PathLike, family: str, config: Any, device: torch.device | str,
          dtype: torch.dtype | None) -> nn.Module:
    path = Path(path)
    sd = read_state_dict(path)
    found = detect_family(sd)
    if found != family:
        what = "a VQ tokenizer checkpoint" if found == "vq" else "an ARPG model checkpoint"
        raise CheckpointError(f"{path} looks like {what}, expected {_FAMILY_NAMES[family]}")
    cfg = _resolve_config(path, sd, family, config)
    model = _build_empty(cfg)
    load_into(model, sd, strict=True, dtype=dtype)
    logger.info("loaded %s from %s", type(model).__name__, path)
    return model.to(device).eval()


def _build_empty(cfg: ARPGConfig | VQConfig) -> nn.Module:
    """The model for ``cfg`` on the ``meta`` device (no memory, no random init)."""
    if isinstance(cfg, ARPGConfig):
        from .model import ARPG as cls
    else:
        from .tokenizer import VQModel as cls
    with torch.device("meta"):
        return cls(cfg)


def load_arpg(path: PathLike, config: ARPGConfig | str | None = None, device: torch.device | str = "cpu",
              dtype: torch.dtype | None = None) -> "ARPG":
    """Load an ARPG model (eval mode) from ``.safetensors`` / ``.pt`` etc.

    Config: the JSON sidecar ``<stem>.json`` if present, else ``config`` (object or preset
    name), else inferred from the shapes.  ``dtype`` None keeps the checkpoint's dtype.
    """
    return _load(path, "arpg", config, device, dtype)  # type: ignore[return-value]


def load_vq(path: PathLike, config: VQConfig | str | None = None, device: torch.device | str = "cpu",
            dtype: torch.dtype | None = None) -> "VQModel":
    """Load a VQ tokenizer (eval mode); config resolved as in :func:`load_arpg`."""
    return _load(path, "vq", config, device, dtype)  # type: ignore[return-value]


# -- writing -------------------------------------------------------------------------------
def _write_safetensors(sd: Mapping[str, torch.Tensor], path: Path, config: ARPGConfig | VQConfig) -> None:
    from safetensors.torch import save_file

    if path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{path}: output must end in .safetensors")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)
    side = path.with_suffix(".json")
    side.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    logger.info("wrote %d tensors to %s and its config to %s", len(tensors), path, side.name)


def save_model(model: nn.Module, path: PathLike, config: ARPGConfig | VQConfig | None = None) -> None:
    """Write ``model``'s state dict to ``path`` (.safetensors) and ``config`` to ``<stem>.json``.

    ``config`` defaults to ``model.cfg``.
    """
    config = config if config is not None else getattr(model, "cfg", None)
    if not isinstance(config, (ARPGConfig, VQConfig)):
        raise CheckpointError("save_model needs an ARPGConfig or VQConfig (none given and model has no .cfg)")
    _write_safetensors(model.state_dict(), Path(path), config)


def convert(in_path: PathLike, out_path: PathLike, config: ARPGConfig | VQConfig | str | None = None) -> str:
    """Convert any readable checkpoint to ``out_path`` (.safetensors) + ``<stem>.json``.

    The config is resolved as in :func:`load_arpg` (sidecar of ``in_path``, ``config``,
    inference) and verified by a strict key + shape check on a ``meta`` model before
    anything is written.  Buffers (e.g. the VQ ``quantize.codebook_used``) are kept.
    Returns the family, ``"arpg"`` or ``"vq"``.
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
    _write_safetensors(model.state_dict(), out_path, cfg)
    return family
