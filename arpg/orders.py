"""Decoding orders over a ``rows x cols`` token grid, and the order policies of the decode loop.

Every generator returns a 1-D ``torch.long`` tensor of shape ``(rows * cols,)`` that is a
permutation of ``range(rows * cols)``; entry ``i`` is the raster index ``r * cols + c`` of
the ``i``-th cell to decode (first-decoded first).

An :class:`OrderPolicy` tells :func:`arpg.sampling.generate` which cells each step queries
(:meth:`~OrderPolicy.targets`) and which of the sampled ones it keeps
(:meth:`~OrderPolicy.choose`): :class:`FixedOrder` for an order known in advance,
:class:`ConfidenceOrder` for confidence-first decoding. A policy class also declares what the
rest of the library needs to know about its orders (:attr:`~OrderPolicy.adaptive`,
:attr:`~OrderPolicy.batch_shared`, :meth:`~OrderPolicy.step_queries`, ...); other modules ask
:func:`order_policy` for the class of an order rather than test its name.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

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
    "SAMPLER_ORDERS",
    "OrderPolicy",
    "FixedOrder",
    "ConfidenceOrder",
    "ADAPTIVE_ORDERS",
    "order_policy",
    "make_policy",
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
        raise ValueError(f"{arg} must be an integer >= 1, got {type(value).__name__} {value!r}") from None
    if v < 1:
        raise ValueError(f"{arg} must be >= 1, got {v}")
    return v


def raster(rows: int, cols: int) -> torch.Tensor:
    """Row-major order ``[0, 1, ..., rows*cols - 1]``; shape ``(rows*cols,)``."""
    rows, cols = _check_dim(rows, "rows"), _check_dim(cols, "cols")
    return torch.arange(rows * cols, dtype=torch.long)


def random_order(rows: int, cols: int, generator: torch.Generator | None = None) -> torch.Tensor:
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


def make_order(name: str, rows: int, cols: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Build the order called ``name`` (one of ``ORDER_NAMES``) for a ``rows x cols`` grid.

    ``generator`` is used only by ``'random'``. Case and ``_``/``-`` are ignored;
    ``'zcurve'``/``'morton'`` and ``'checkerboard'`` are accepted as aliases.
    Returns a ``(rows*cols,)`` long tensor.
    """
    allowed = ", ".join(repr(x) for x in ORDER_NAMES)
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, one of {allowed}; got {type(name).__name__} {name!r}")
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
        raise ValueError(f"{name} must have length {n} (a permutation of 0..{n - 1}), got {t.numel()}")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ValueError(f"{name} must contain integers (a permutation of 0..{n - 1}), got dtype {t.dtype}")
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D (a permutation of 0..{n - 1}), got shape {tuple(t.shape)}")
    if t.numel() != n:
        raise ValueError(f"{name} must have length {n} (a permutation of 0..{n - 1}), got {t.numel()}")
    t = t.to(torch.long)
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= n:
        bad = t[(t < 0) | (t >= n)].tolist()
        raise ValueError(f"{name} values must be in [0, {n - 1}], found out-of-range {_preview(bad)}")
    counts = torch.bincount(t.cpu(), minlength=n)
    if bool((counts != 1).any()):
        dup = torch.nonzero(counts > 1).flatten().tolist()
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"{name} must be a permutation of 0..{n - 1}: duplicates {_preview(dup)}, missing {_preview(missing)}"
        )
    return t


# -- order policies: which cells each decoding step queries, and which it keeps -------------------
class OrderPolicy:
    """How :func:`arpg.sampling.generate` picks the cells of each step.

    ``order``: (R, M) long raster indices of the M free cells in decode order, one row shared
    by the batch (R = 1) or one per image; complete once the last step has run. A new way of
    ordering is a new subclass: a fixed order in :data:`ORDER_NAMES` / :func:`make_order`,
    an order decided step by step in :data:`ADAPTIVE_ORDERS`.
    """

    #: True when the cells are picked while decoding, from the model's outputs, rather than known in
    #: advance: requests cannot share a decode, and sample-many (one order per image) refuses it.
    adaptive: ClassVar[bool] = False
    #: True when the policy picks cells from the whole batch (it needs one shared generator).
    batch_shared: ClassVar[bool] = False
    #: True when every step queries every remaining cell; False when it queries the cells it decodes.
    queries_remaining: ClassVar[bool] = False
    #: What users are told: the order's short name and what it does.
    label: ClassVar[str] = "a fixed order"
    summary: ClassVar[str] = "decodes the cells in an order known before decoding"
    order: torch.Tensor

    @classmethod
    def step_queries(cls, remaining: int, n: int) -> int:
        """Cells queried by a step that decodes ``n`` of the ``remaining`` cells not decoded yet."""
        return remaining if cls.queries_remaining else n

    @classmethod
    def queries(cls, counts: Sequence[int]) -> int:
        """Target queries of a whole decode that decodes ``counts[s]`` cells at step ``s``."""
        remaining, total = sum(counts), 0
        for n in counts:
            total += cls.step_queries(remaining, n)
            remaining -= n
        return total

    def targets(self, done: int, n: int) -> torch.Tensor:
        """(R, q) cells queried by the step that decodes cells ``done .. done + n - 1`` of the order."""
        raise NotImplementedError

    def choose(
        self, targets: torch.Tensor, logits: torch.Tensor, sampled: torch.Tensor, done: int, n: int, temperature: float
    ) -> torch.Tensor | None:
        """After sampling: the (n,) columns of ``targets`` to keep, or ``None`` to keep them all.

        logits: (B, q, V) guided logits of the queried cells; sampled: (B, q) the ids drawn.
        """
        return None


class FixedOrder(OrderPolicy):
    """An order known before decoding: a named one (random, raster, spirals, ...) or a given permutation."""

    def __init__(self, order: torch.Tensor) -> None:
        self.order = order  # (R, M)

    def targets(self, done: int, n: int) -> torch.Tensor:
        return self.order[:, done : done + n]


class ConfidenceOrder(OrderPolicy):
    """Confidence first: every step queries all remaining cells and keeps the ``n`` whose samples
    are most likely (probability under the guided, tempered logits, averaged over the batch)."""

    adaptive = True
    batch_shared = True
    queries_remaining = True
    label = "confidence-first"
    summary = "decodes the surest cells first"

    def __init__(self, free: torch.Tensor) -> None:
        self.remaining = free  # (M',) cells not decoded yet, raster order
        self.order = free.clone()[None]  # (1, M), overwritten step by step

    def targets(self, done: int, n: int) -> torch.Tensor:
        return self.remaining[None]

    def choose(
        self, targets: torch.Tensor, logits: torch.Tensor, sampled: torch.Tensor, done: int, n: int, temperature: float
    ) -> torch.Tensor:
        probs = torch.softmax(logits / max(temperature, 1e-5), dim=-1)
        conf = probs.gather(-1, sampled[..., None])[..., 0].mean(0)  # (q,)
        keep = torch.topk(conf, n).indices.sort().values
        cells = targets[0, keep]
        self.remaining = self.remaining[~torch.isin(self.remaining, cells)]
        self.order[0, done : done + n] = cells
        return keep


#: Orders decided while decoding, by name (their class is built from the free cells in raster order).
ADAPTIVE_ORDERS: dict[str, type[OrderPolicy]] = {"confidence": ConfidenceOrder}
#: Every order name :func:`arpg.sampling.generate` accepts.
SAMPLER_ORDERS: tuple[str, ...] = (*ORDER_NAMES, *ADAPTIVE_ORDERS)


def order_policy(order: Any) -> type[OrderPolicy]:
    """The policy class that decodes ``order`` (a name of :data:`SAMPLER_ORDERS` or a permutation), to
    ask what the order needs: :class:`FixedOrder` for anything but a name of :data:`ADAPTIVE_ORDERS`
    (a bad name is refused where the order is built, by :func:`make_order`)."""
    if isinstance(order, str) and order in ADAPTIVE_ORDERS:
        return ADAPTIVE_ORDERS[order]
    return FixedOrder


def _fixed_free_order(
    order: Any, rows: int, cols: int, free: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """(M,) the free cells (``free``: (N,) bool, CPU) in the order ``order`` (a name or a permutation)."""
    if isinstance(order, str) and order == "random":
        cells = free.nonzero().flatten()
        gen_dev = generator.device if generator is not None else torch.device("cpu")
        return cells[torch.randperm(len(cells), generator=generator, device=gen_dev).cpu()]
    full = make_order(order, rows, cols) if isinstance(order, str) else check_permutation(order, rows * cols).cpu()
    return full[free[full]]


def make_policy(
    order: Any,
    rows: int,
    cols: int,
    free: torch.Tensor,
    generators: Sequence[torch.Generator | None],
    per_image: bool = False,
    device: torch.device | str = "cpu",
) -> OrderPolicy:
    """The policy for ``order`` (a name of :data:`SAMPLER_ORDERS` or a permutation of the grid's cells).

    free: (rows * cols,) bool, True for the cells to decode. generators: one shared by the batch,
    or one per image with ``per_image`` (image b's random order then comes from ``generators[b]``).
    The policy's tensors live on ``device``.
    """
    free = free.cpu()
    cls = order_policy(order)
    if cls.adaptive:
        if per_image and cls.batch_shared:
            raise ValueError(f"order {order!r} picks cells from the whole batch; it needs one shared generator")
        return cls(free.nonzero().flatten().to(device))
    rows_of = [_fixed_free_order(order, rows, cols, free, g) for g in generators]
    return FixedOrder(torch.stack(rows_of).to(device))
