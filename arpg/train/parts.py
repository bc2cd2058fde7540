"""Weights split into files small enough to copy back from a rented machine (the device tool
returns files under 16 MiB), and joined again here.

``split_save(state, folder / "arpg")`` writes ``arpg.part0.safetensors``, ``arpg.part1...`` of at
most about ``part_bytes`` each and returns their names; ``join_parts(folder, names)`` reads them
back into one state dict, tensor for tensor.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

from ..checkpoints import save_checkpoint
from ..state_dicts import read_state_dict

PART_BYTES = 14 * 2**20  # below the 16 MiB a file copied back may hold, with room for the header


def split_save(state: dict[str, torch.Tensor], stem: Path, part_bytes: int = PART_BYTES) -> list[str]:
    """Write ``state`` as ``<stem>.partN.safetensors`` files of at most about ``part_bytes`` each
    (a single tensor larger than that gets a part of its own); returns the file names in order."""
    parts: list[dict[str, torch.Tensor]] = []
    cur: dict[str, torch.Tensor] = {}
    size = 0
    for k, v in state.items():
        n = v.numel() * v.element_size()
        if cur and size + n > part_bytes:
            parts.append(cur)
            cur, size = {}, 0
        cur[k] = v
        size += n
    parts.append(cur)
    names = []
    for i, part in enumerate(parts):
        path = stem.with_name(f"{stem.name}.part{i}.safetensors")
        save_checkpoint(part, path)
        names.append(path.name)
    return names


def join_parts(folder: Path, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """The state dict of the parts ``names`` in ``folder`` (written by :func:`split_save`)."""
    state: dict[str, torch.Tensor] = {}
    for n in names:
        state.update(read_state_dict(folder / n))
    return state
