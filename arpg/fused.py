"""Fast linears for inference that keep the released state-dict keys: fused and prepacked.

* **Fused**: a module lists groups of bias-free linears that read one input in ``FUSE``
  (e.g. ``("qkv", ("to_q", "to_k", "to_v"))``); :meth:`Fusable.fuse` replaces each group by
  one :class:`FusedLinear` (their weights stacked, one matmul), placed where the first part
  was.  Two hooks keep files exactly the released ones: ``state_dict()`` splits a fused
  weight back into its parts' keys, in their order, and ``load_state_dict`` joins the parts'
  keys into the fused weight, so a fused model loads released files (``assign=True`` too).
* **Prepacked** (CPU): :meth:`Linear.prepack` reorders a weight once into oneDNN's blocked
  layout.  Plain ``F.linear`` reorders bf16 weights on every call and takes MKL's slower
  path for fp32 at the few rows of one decoding step; the packed matmul is faster there
  (docs/benchmarks/README.md, "Speed options").  The packed copy lives beside the weight
  (weights' memory twice), is not in the state dict, and is only used while the weight is the
  tensor it was made from.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


@functools.cache
def prepack_supported() -> bool:
    """Whether PyTorch has oneDNN's prepacked linear (the ops ``torch.compile`` uses on CPUs)."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        w = torch.ones(8, 4)
        packed = torch.ops.mkldnn._reorder_linear_weight(w, 2)
        out = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 4), packed, None, "none", [], "")
    except (AttributeError, RuntimeError):
        return False
    return bool(torch.equal(out, torch.full((2, 8), 4.0)))


def _weight_key(w: torch.Tensor) -> tuple | None:
    """What identifies the exact contents a packed copy was made from (None: cannot tell)."""
    try:
        return w.data_ptr(), w._version, w.dtype, w.device
    except RuntimeError:  # inference tensors have no version counter
        return None


class Linear(nn.Linear):
    """A bias-free ``nn.Linear`` that can run from a oneDNN-prepacked copy of its weight."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)
        self._packed: tuple[torch.Tensor, tuple, int] | None = None  # (packed weight, weight key, rows)

    def prepack(self, rows: int = 16) -> bool:
        """Pack the weight for CPU matmuls of about ``rows`` input rows; False (nothing done)
        where it cannot be packed (not on a CPU, no oneDNN, a meta or inference tensor)."""
        w = self.weight.detach()
        key = _weight_key(w)
        if key is None or w.device.type != "cpu" or w.is_meta or not prepack_supported():
            self._packed = None
            return False
        self._packed = (torch.ops.mkldnn._reorder_linear_weight(w, rows), key, rows)
        return True

    def unpack(self) -> None:
        """Drop the packed copy (plain ``F.linear`` from now on)."""
        self._packed = None

    @property
    def packed(self) -> bool:
        """Whether the packed copy exists and still matches the weight."""
        return self._packed is not None and self._packed[1] == _weight_key(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in) -> (..., out); the packed matmul when :attr:`packed` and ``x`` has the weight's dtype."""
        if (
            self._packed is not None
            and x.dtype == self.weight.dtype
            and self.packed
            and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling()
        ):
            return torch.ops.mkldnn._linear_pointwise(x, self._packed[0], None, "none", [], "")
        return F.linear(x, self.weight)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        """Load as ``nn.Linear`` does, then pack again if a packed copy was in use."""
        rows = self._packed[2] if self._packed is not None else None
        super()._load_from_state_dict(*args, **kwargs)
        if rows is not None:
            self.prepack(rows)

    def __getstate__(self) -> dict:
        """Pickling and deepcopy leave the packed copy (an opaque oneDNN tensor) behind."""
        return {**self.__dict__, "_packed": None}


class FusedLinear(Linear):
    """Bias-free linears reading one input, run as one matmul: ``weight`` is theirs stacked.

    ``names`` are the parts' attribute names in the parent module; the parent's state-dict
    hooks write and read the parts' released keys (``<parent>.<name>.weight``), never this
    module's own ``weight``.
    """

    def __init__(self, names: tuple[str, ...], weights: list[torch.Tensor]):
        with torch.device("meta"):  # no random init: the weight is the parts'
            super().__init__(weights[0].shape[1], sum(w.shape[0] for w in weights))
        self.names = tuple(names)
        self.sizes = tuple(w.shape[0] for w in weights)
        self.weight = nn.Parameter(torch.cat([w.detach() for w in weights]), requires_grad=weights[0].requires_grad)

    def extra_repr(self) -> str:
        return ", ".join(f"{n}={s}" for n, s in zip(self.names, self.sizes)) + f", in_features={self.in_features}"


def _linear(weight: torch.Tensor) -> Linear:
    """A :class:`Linear` holding a copy of ``weight`` (no random init)."""
    with torch.device("meta"):
        lin = Linear(weight.shape[1], weight.shape[0])
    lin.weight = nn.Parameter(weight.detach().clone(), requires_grad=weight.requires_grad)
    return lin


def _swap_children(module: nn.Module, old: tuple[str, ...], new: dict[str, nn.Module]) -> None:
    """Replace children ``old`` by ``new``, placed where ``old[0]`` was (state-dict order is kept)."""
    items: list[tuple[str, nn.Module | None]] = []
    for name, child in module._modules.items():
        if name == old[0]:
            items += new.items()
        elif name not in old:
            items.append((name, child))
    module._modules.clear()
    module._modules.update(items)


def _split_fused(module: Fusable, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    """State-dict post-hook: each fused weight leaves as its parts, under their keys, in their place."""
    for fused, names in module.FUSE:
        key = f"{prefix}{fused}.weight"
        if not module.is_fused(fused) or key not in state_dict:
            continue
        keys = list(state_dict)
        tail = {k: state_dict.pop(k) for k in keys[keys.index(key) :]}
        for name, part in zip(names, tail.pop(key).split(module._modules[fused].sizes)):
            state_dict[f"{prefix}{name}.weight"] = part
        state_dict.update(tail)


def _join_fused(module: Fusable, state_dict: dict, prefix: str, *args: Any) -> None:
    """Load pre-hook: the parts' released keys become the fused weight, so fused models load released files."""
    for fused, names in module.FUSE:
        keys = [f"{prefix}{n}.weight" for n in names]
        if module.is_fused(fused) and all(k in state_dict for k in keys):
            state_dict[f"{prefix}{fused}.weight"] = torch.cat([state_dict.pop(k) for k in keys])


class Fusable(nn.Module):
    """A module whose linears of one input can run as one matmul, with its state-dict keys unchanged."""

    #: (fused child, the children it replaces, in state-dict order)
    FUSE: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __init__(self):
        super().__init__()
        self.register_state_dict_post_hook(_split_fused)
        self.register_load_state_dict_pre_hook(_join_fused)

    def is_fused(self, fused: str) -> bool:
        """Whether the group named ``fused`` currently runs as one matmul."""
        return isinstance(self._modules.get(fused), FusedLinear)

    def fuse(self) -> None:
        """Replace each group's linears by one :class:`FusedLinear` (idempotent)."""
        for fused, names in self.FUSE:
            if not self.is_fused(fused):
                weights = [self._modules[n].weight for n in names]
                _swap_children(self, names, {fused: FusedLinear(names, weights)})

    def unfuse(self) -> None:
        """Undo :meth:`fuse`: separate :class:`Linear` parts holding copies of the fused rows (idempotent)."""
        for fused, names in self.FUSE:
            if self.is_fused(fused):
                parts = self._modules[fused].weight.split(self._modules[fused].sizes)
                _swap_children(self, (fused,), {n: _linear(p) for n, p in zip(names, parts)})
