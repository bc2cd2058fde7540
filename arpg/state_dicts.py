"""What a checkpoint file holds: safe reading into a flat state dict, its family, its config from shapes.

Reading (:func:`read_state_dict`):

* ``.safetensors`` with :func:`safetensors.torch.load_file`;
* ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt`` with ``torch.load(..., weights_only=True)`` only.
  Pickles that need anything beyond tensors and plain containers are refused
  (``argparse.Namespace``, which LlamaGen training checkpoints store under ``args``,
  is the one extra class allowed: it cannot run code).

A top-level wrapper is unwrapped in the order ``state_dict`` > ``model`` > ``module`` >
``ema`` (the released ARPG files use ``state_dict``, LlamaGen's ``model``, DeepSpeed ones
``module``; training checkpoints holding both ``model`` and ``ema`` give the raw weights).  Leading
``module.`` (DDP) and ``_orig_mod.`` (``torch.compile``) prefixes are stripped.

:func:`detect_family` tells the family (ARPG, RandAR, LlamaGen, VQ tokenizer: :data:`FAMILIES`)
by its key names; :func:`infer_arpg_config` / :func:`infer_llamagen_config` /
:func:`infer_randar_config` / :func:`infer_vq_config` rebuild a config from tensor shapes
(loading, the JSON sidecar and writing are in :mod:`arpg.checkpoints`).

Every failure raises :class:`CheckpointError` with a one-line message.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import torch
from safetensors.torch import load_file

from .config import (
    ARPG_PRESETS,
    LLAMAGEN_PRESETS,
    RANDAR_PRESETS,
    VQ_PRESETS,
    ARPGConfig,
    LlamaGenConfig,
    RandARConfig,
    VQConfig,
    find_multiple,
)

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
StateDict = dict[str, torch.Tensor]

SAFETENSORS_EXTS = (".safetensors",)
PICKLE_EXTS = (".pt", ".pth", ".bin", ".ckpt")
WRAPPER_KEYS = ("state_dict", "model", "module", "ema")  # unwrap order, first present wins
STRIP_PREFIXES = ("module.", "_orig_mod.")
RELEASED_HEAD_DIM = 64  # head size of every released ARPG and LlamaGen c2i model


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not match the model (one-line message)."""


# -- small helpers -------------------------------------------------------------------------
def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception message (or its type name)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip().split(". ", 1)[0].rstrip(".")[:200]
    return type(exc).__name__


def short_list(items: list[str], limit: int = 5) -> str:
    """'a, b, c, d, e and 3 more'."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _indices(sd: Mapping[str, Any], prefix: str) -> list[int]:
    """Sorted distinct integers ``i`` of keys ``prefix + 'i.' + ...``."""
    found = set()
    for k in sd:
        if k.startswith(prefix):
            head = k[len(prefix) :].split(".", 1)[0]
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
                        "convert it to .safetensors"
                    ) from None
                raise CheckpointError(
                    f"{path}: corrupt or unreadable checkpoint (pickle opcode "
                    f"{op.group(1)} is not supported by weights_only loading)"
                ) from None
            m = re.search(r"GLOBAL ([\w.]+)", msg)
            needs = f" (it needs {m.group(1)})" if m else ""
            raise CheckpointError(
                f"{path}: refusing to unpickle arbitrary objects{needs}; only tensors and plain "
                "containers are loaded (weights_only=True); if you trust the file, re-save just "
                "its state dict or convert it to .safetensors"
            ) from None
        if isinstance(exc, EOFError) or not msg:
            raise CheckpointError(f"{path}: truncated or corrupt checkpoint (unexpected end of file)") from None
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({first_line(exc)})") from None


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
        top = short_list([repr(k) for k in obj]) or "nothing"
        raise CheckpointError(
            f"{path}: holds no tensors (top-level keys: {top}); expected a state dict "
            f"or a dict with one of {', '.join(repr(k) for k in WRAPPER_KEYS)}"
        )
    dropped = [str(k) for k in obj if k not in tensors]
    if dropped:
        logger.warning("%s: ignoring %d non-tensor entries: %s", path, len(dropped), short_list(dropped))
    return tensors


def _strip_prefixes(sd: StateDict, path: Path) -> StateDict:
    out: StateDict = {}
    for k, v in sd.items():
        name = k
        while name.startswith(STRIP_PREFIXES):
            name = name.split(".", 1)[1]
        if name in out:
            raise CheckpointError(f"{path}: keys {k!r} and another both map to {name!r} after prefix stripping")
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
        raise CheckpointError(
            f"{path}: unsupported file type {ext or '(no extension)'!r}, expected one of "
            f"{', '.join(SAFETENSORS_EXTS + PICKLE_EXTS)}"
        )
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: file is empty (0 bytes)")
    if ext in SAFETENSORS_EXTS:
        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:  # SafetensorError, OSError, ...
            msg = f"{path}: truncated or corrupt safetensors file ({first_line(exc)})"
            raise CheckpointError(msg) from None
    else:
        obj = _torch_load(path)
    sd = _strip_prefixes(_unwrap(obj, path), path)
    logger.info("read %d tensors from %s", len(sd), path)
    return sd


# -- family and config inference -----------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """A kind of checkpoint: its name (``"arpg"``), how messages call it and the keys that tell it.

    markers: a state dict with any of these keys is of this family; a marker ending in ``.`` is a
    prefix (any key under it), another marker an exact key.
    """

    name: str
    title: str
    what: str
    markers: tuple[str, ...]

    def matches(self, sd: Mapping[str, Any]) -> bool:
        return any(m in sd if not m.endswith(".") else any(k.startswith(m) for k in sd) for m in self.markers)

    def describe(self) -> str:
        return f"{self.title} keys ({', '.join(m + '*' if m.endswith('.') else m for m in self.markers)})"


#: Every checkpoint family, in the order :func:`detect_family` tries them: the one source of truth for
#: "which family is this state dict".  RandAR's weights are LlamaGen's plus a position-instruction
#: embedding, so RandAR is tried before LlamaGen.
FAMILIES: tuple[Family, ...] = (
    Family("arpg", "ARPG", "an ARPG model", ("embeddings.weight", "layers.self_dec.")),
    Family("randar", "RandAR", "a RandAR model", ("pos_instruct_embeddings",)),
    Family(
        "llamagen", "LlamaGen", "a LlamaGen model", ("tok_embeddings.weight", "cls_embedding.embedding_table.weight")
    ),
    Family("vq", "VQ", "a VQ tokenizer", ("encoder.conv_in.weight", "quantize.embedding.weight")),
)
FAMILY_BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}


def detect_family(sd: Mapping[str, torch.Tensor]) -> str:
    """The name of the first of :data:`FAMILIES` whose keys ``sd`` has; CheckpointError naming them otherwise."""
    for family in FAMILIES:
        if family.matches(sd):
            return family.name
    known = [f.describe() for f in FAMILIES]
    raise CheckpointError(
        f"unrecognised checkpoint: expected {', '.join(known[:-1])} or {known[-1]}, "
        f"found {short_list(sorted(sd), 3) or 'no keys'}"
    )


def _multiple_of_for(dim: int, ffn: int) -> int:
    """The ``multiple_of`` reproducing the SwiGLU size: 256 if it does, else the largest that does."""
    for m in (256, 2048, 1024, 512, 128, 64, 32, 16, 8, 4, 2, 1):
        if find_multiple(int(2 * 4 * dim / 3), m) == ffn:  # as ARPGConfig.ffn_dim
            return m
    raise CheckpointError(
        f"cannot infer multiple_of: ffn size {ffn} is not int(8*{dim}/3) rounded up to a power-of-two multiple"
    )


def _config_from_shapes(
    cls: type, presets: Mapping[str, Any], shapes: dict[str, Any], ffn: int, n_head: int | None
) -> Any:
    """The named preset with these shapes and SwiGLU size ``ffn``, else a config of them with the
    ``multiple_of`` that gives ``ffn`` and head_dim 64 as released; ``n_head`` overrides either."""
    what = cls.__name__.removesuffix("Config")
    for name, preset in presets.items():
        cfg = cls(**preset)
        if all(getattr(cfg, k) == v for k, v in shapes.items()) and cfg.ffn_dim == ffn:
            logger.info("checkpoint shapes match preset %s", name)
            if n_head is None:
                return cfg
            shapes = {k: v for k, v in cfg.to_dict().items() if k != "family"}  # override n_head below
            break
    else:
        shapes["multiple_of"] = _multiple_of_for(shapes["dim"], ffn)
    if n_head is None:
        if shapes["dim"] % RELEASED_HEAD_DIM:
            raise CheckpointError(
                f"cannot infer n_head: dim {shapes['dim']} is not a multiple of {RELEASED_HEAD_DIM}; pass n_head"
            )
        n_head = shapes["dim"] // RELEASED_HEAD_DIM
    try:
        cfg = cls(**{**shapes, "n_head": n_head})
    except ValueError as exc:
        raise CheckpointError(f"inferred {what} config is invalid: {exc}") from None
    logger.info("inferred %s config: %s", what, cfg)
    return cfg


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
    shapes = dict(
        dim=dim,
        vocab_size=vocab,
        num_classes=emb.shape[0] - vocab - 3,
        n_self_layers=len(_indices(sd, "layers.self_dec.")),
        n_cross_layers=len(_indices(sd, "layers.cross_dec.")),
    )
    if shapes["num_classes"] < 0:
        raise CheckpointError(
            f"embeddings.weight has {emb.shape[0]} rows, expected at least vocab_size + 3 = {vocab + 3}"
        )
    return _config_from_shapes(ARPGConfig, ARPG_PRESETS, shapes, w1.shape[0], n_head)


def infer_llamagen_config(sd: Mapping[str, torch.Tensor], n_head: int | None = None) -> LlamaGenConfig:
    """LlamaGen config from tensor shapes (works on ``meta`` tensors too).

    dim and vocab_size from ``tok_embeddings.weight``, num_classes from the class table (its rows
    less the null class's), the layer count and the SwiGLU size; the rest as in
    :func:`infer_arpg_config` (a preset with the same shapes, else head_dim 64 as released).
    """
    return _infer_llama(sd, n_head, LlamaGenConfig, LLAMAGEN_PRESETS)


def infer_randar_config(sd: Mapping[str, torch.Tensor], n_head: int | None = None) -> RandARConfig:
    """RandAR config from tensor shapes, as :func:`infer_llamagen_config` (the same layout) with RandAR's presets."""
    return _infer_llama(sd, n_head, RandARConfig, RANDAR_PRESETS)


def _infer_llama(sd: Mapping[str, torch.Tensor], n_head: int | None, cls: type, presets: Mapping[str, Any]) -> Any:
    """A config of ``cls`` (LlamaGen's layout) from the shapes of ``sd``, preferring ``presets``."""
    what = cls.TITLE
    tok = _need(sd, "tok_embeddings.weight", what)
    table = _need(sd, "cls_embedding.embedding_table.weight", what)
    w1 = _need(sd, "layers.0.feed_forward.w1.weight", what)
    if table.shape[0] < 2:
        raise CheckpointError(f"cls_embedding.embedding_table.weight has {table.shape[0]} rows, expected classes + 1")
    shapes = dict(
        dim=tok.shape[1], vocab_size=tok.shape[0], num_classes=table.shape[0] - 1, n_layer=len(_indices(sd, "layers."))
    )
    return _config_from_shapes(cls, presets, shapes, w1.shape[0], n_head)


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
    shapes: dict[str, Any] = dict(
        codebook_size=n_codes, codebook_dim=code_dim, ch=ch, ch_mult=tuple(mult), z_channels=z, num_res_blocks=n_res
    )
    for name, preset in VQ_PRESETS.items():
        cfg = VQConfig(**preset)
        if all(getattr(cfg, k) == v for k, v in shapes.items()):
            logger.info("checkpoint shapes match preset %s", name)
            return cfg
    cfg = VQConfig(**shapes, norm_groups=math.gcd(ch, 32))
    logger.info("inferred VQ config (no preset matches): %s", cfg)
    return cfg
