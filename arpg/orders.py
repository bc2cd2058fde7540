"""Decoding orders over a ``rows x cols`` token grid.

Every generator returns a 1-D ``torch.long`` tensor of shape ``(rows * cols,)`` that is a
permutation of ``range(rows * cols)``; entry ``i`` is the raster index ``r * cols + c`` of
the ``i``-th cell to decode (first-decoded first).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

import torch

__all__ = [
    "ORDER_NAMES",
    "raster",
    "random_order",
    "spiral_in",
    "spiral_out",
    "zcurve",
    "checkerboard",
    "make_order",
    "check_permutation",
]

#: Names accepted by :func:`make_order`.
ORDER_NAMES: tuple[str, ...] = (
    "random",
    "raster",
    "spiral-in",
    "spiral-out",
    "z-curve",
    "alternate",
)

# Extra spellings accepted by make_order (after lower-casing and '_' -> '-').
_ALIASES = {"zcurve": "z-curve", "morton": "z-curve", "checkerboard": "alternate"}


def _check_dim(value: Any, arg: str) -> int:
    """Validate a grid size: a (non-bool) integer >= 1."""
    if isinstance(value, bool):
        raise ValueError(f"{arg} must be an integer >= 1, got bool {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(
            f"{arg} must be an integer >= 1, got {type(value).__name__} {value!r}"
        ) from None
    if v < 1:
        raise ValueError(f"{arg} must be >= 1, got {v}")
    return v


def raster(rows: int, cols: int) -> torch.Tensor:
    """Row-major order ``[0, 1, ..., rows*cols - 1]``; shape ``(rows*cols,)``."""
    rows, cols = _check_dim(rows, "rows"), _check_dim(cols, "cols")
    return torch.arange(rows * cols, dtype=torch.long)


def random_order(
    rows: int, cols: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Uniformly random permutation (``torch.randperm`` with ``generator``); ``(rows*cols,)``."""
    rows, cols = _check_dim(rows, "rows"), _check_dim(cols, "cols")
    return torch.randperm(rows * cols, generator=generator, dtype=torch.long)


def spiral_in(rows: int, cols: int) -> torch.Tensor:
    """Clockwise spiral from the top-left corner to the centre; shape ``(rows*cols,)``.

    E.g. 3x3 -> ``[0, 1, 2, 5, 8, 7, 6, 3, 4]``.
    """
    rows, cols = _check_dim(rows, "rows"), _check_dim(cols, "cols")
    top, bottom, left, right = 0, rows - 1, 0, cols - 1
    out: list[int] = []
    while top <= bottom and left <= right:
        out.extend(top * cols + c for c in range(left, right + 1))
        out.extend(r * cols + right for r in range(top + 1, bottom + 1))
        if top < bottom:
            out.extend(bottom * cols + c for c in range(right - 1, left - 1, -1))
        if left < right:
            out.extend(r * cols + left for r in range(bottom - 1, top, -1))
        top, bottom, left, right = top + 1, bottom - 1, left + 1, right - 1
    return torch.tensor(out, dtype=torch.long)


def spiral_out(rows: int, cols: int) -> torch.Tensor:
    """Reverse of :func:`spiral_in`: centre first, ending at the top-left corner."""
    return spiral_in(rows, cols).flip(0)


def zcurve(rows: int, cols: int) -> torch.Tensor:
    """Morton (Z) order: cells sorted by the bit-interleaved code of ``(row, col)``.

    Column bits take the even positions (column bit 0 is the lowest), row bits the odd
    ones, so 4x4 starts ``[0, 1, 4, 5, 2, 3, 6, 7, ...]``. Works for any grid size: cells
    outside the grid are simply absent from the sort.
    """
    rows, cols = _check_dim(rows, "rows"), _check_dim(cols, "cols")
    r = torch.arange(rows, dtype=torch.long).repeat_interleave(cols)  # (rows*cols,)
    c = torch.arange(cols, dtype=torch.long).repeat(rows)  # (rows*cols,)
    nbits = max(rows - 1, cols - 1, 1).bit_length()
    code = torch.zeros(rows * cols, dtype=torch.long)
    for b in range(nbits):
        code |= ((c >> b) & 1) << (2 * b)
        code |= ((r >> b) & 1) << (2 * b + 1)
    return torch.argsort(code, stable=True)


def checkerboard(rows: int, cols: int) -> torch.Tensor:
    """'alternate' order: cells with even ``r + c`` in raster order, then the odd ones."""
    rows, cols = _check_dim(rows, "rows"), _check_dim(cols, "cols")
    idx = torch.arange(rows * cols, dtype=torch.long)
    parity = (idx // cols + idx % cols) % 2
    return torch.cat([idx[parity == 0], idx[parity == 1]])


_GRID_ORDERS: dict[str, Callable[[int, int], torch.Tensor]] = {
    "raster": raster,
    "spiral-in": spiral_in,
    "spiral-out": spiral_out,
    "z-curve": zcurve,
    "alternate": checkerboard,
}


def make_order(
    name: str, rows: int, cols: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Build the order called ``name`` (one of ``ORDER_NAMES``) for a ``rows x cols`` grid.

    ``generator`` is used only by ``'random'``. Case and ``_``/``-`` are ignored;
    ``'zcurve'``/``'morton'`` and ``'checkerboard'`` are accepted as aliases.
    Returns a ``(rows*cols,)`` long tensor.
    """
    allowed = ", ".join(repr(x) for x in ORDER_NAMES)
    if not isinstance(name, str):
        raise ValueError(
            f"name must be a string, one of {allowed}; got {type(name).__name__} {name!r}"
        )
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key == "random":
        return random_order(rows, cols, generator)
    if key not in _GRID_ORDERS:
        raise ValueError(f"unknown order name {name!r}; allowed: {allowed}")
    return _GRID_ORDERS[key](rows, cols)


def _preview(values: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def check_permutation(order: Any, n: int, name: str = "order") -> torch.Tensor:
    """Validate that ``order`` (list/tuple/array/tensor) is a 1-D permutation of ``0..n-1``.

    Returns it as a ``(n,)`` ``torch.long`` tensor (on the input tensor's device).
    Raises ValueError naming ``name`` and the problem (dtype, shape, length, range,
    duplicates/missing values).
    """
    n = _check_dim(n, "n")
    if isinstance(order, torch.Tensor):
        t = order
    else:
        try:
            t = torch.as_tensor(order)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(
                f"{name} must be a 1-D sequence of ints (a permutation of 0..{n - 1}), "
                f"could not convert {type(order).__name__}: {e}"
            ) from None
    if t.numel() != n and t.dim() == 1:
        raise ValueError(
            f"{name} must have length {n} (a permutation of 0..{n - 1}), got {t.numel()}"
        )
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ValueError(
            f"{name} must contain integers (a permutation of 0..{n - 1}), got dtype {t.dtype}"
        )
    if t.dim() != 1:
        raise ValueError(
            f"{name} must be 1-D (a permutation of 0..{n - 1}), got shape {tuple(t.shape)}"
        )
    if t.numel() != n:
        raise ValueError(
            f"{name} must have length {n} (a permutation of 0..{n - 1}), got {t.numel()}"
        )
    t = t.to(torch.long)
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= n:
        bad = t[(t < 0) | (t >= n)].tolist()
        raise ValueError(
            f"{name} values must be in [0, {n - 1}], found out-of-range {_preview(bad)}"
        )
    counts = torch.bincount(t.cpu(), minlength=n)
    if bool((counts != 1).any()):
        dup = torch.nonzero(counts > 1).flatten().tolist()
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"{name} must be a permutation of 0..{n - 1}: duplicates {_preview(dup)}, "
            f"missing {_preview(missing)}"
        )
    return t
