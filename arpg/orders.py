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
    "halton",
    "lpd_order",
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
    "halton",
    "lpd",
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


def _radical_inverse(i: int, base: int) -> float:
    """Element ``i`` of the van der Corput sequence in ``base`` (the digits of ``i`` mirrored after the point)."""
    value, scale = 0.0, 1.0 / base
    while i:
        i, digit = divmod(i, base)
        value += digit * scale
        scale /= base
    return value


def halton(rows: int, cols: int) -> torch.Tensor:
    """The Halton order (Halton-MaskGIT): points ``i = 1, 2, ...`` of the 2-D Halton sequence (base 2 for the
    row, base 3 for the column) scaled to the grid, each cell at its first visit; a low-discrepancy order
    whose every prefix spreads evenly over the grid. Deterministic; ``(rows*cols,)``."""
    rows, cols = _check_dim(rows, "rows"), _check_dim(cols, "cols")
    seen = torch.zeros(rows * cols, dtype=torch.bool)
    out: list[int] = []
    i = 0
    while len(out) < rows * cols:
        i += 1
        cell = int(_radical_inverse(i, 2) * rows) * cols + int(_radical_inverse(i, 3) * cols)
        if not seen[cell]:
            seen[cell] = True
            out.append(cell)
    return torch.tensor(out, dtype=torch.long)


#: The 8 neighbours of a cell and how close each is (1 / distance): LPD's proximity of a cell to decoded ones.
_NEIGHBOURS = tuple((dr, dc, 1.0 / (dr * dr + dc * dc) ** 0.5) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc)


def _add_proximity(score: torch.Tensor, cells: torch.Tensor, rows: int, cols: int) -> None:
    """Add each of ``cells``' closeness to the proximity ``score`` (rows*cols,) of its 8 neighbours."""
    r, c = cells // cols, cells % cols
    for dr, dc, w in _NEIGHBOURS:
        ok = (r + dr >= 0) & (r + dr < rows) & (c + dc >= 0) & (c + dc < cols)
        score.index_add_(0, ((r + dr) * cols + c + dc)[ok], torch.full((int(ok.sum()),), w, dtype=score.dtype))


def _spread(group: list[int], pool: torch.Tensor, n: int, cols: int, generator: torch.Generator | None) -> list[int]:
    """``n`` cells of ``pool`` by farthest-point sampling away from ``group`` (the step's cells so far; a random
    first pick when it is empty): the cells least dependent on each other."""
    if len(pool) <= n:
        return pool.tolist()
    pts = torch.stack([pool // cols, pool % cols], 1).double()
    if group:
        g = torch.tensor(group)
        nearest = torch.cdist(pts, torch.stack([g // cols, g % cols], 1).double()).min(1).values
    else:
        nearest = torch.full((len(pool),), float("inf"), dtype=torch.float64)
    picked: list[int] = []
    for _ in range(n):
        k = (
            int(torch.randint(len(pool), (1,), generator=generator))
            if not group and not picked
            else int(nearest.argmax())
        )
        picked.append(k)
        nearest = torch.minimum(nearest, (pts - pts[k]).norm(dim=1))
        nearest[picked] = -1.0
    return pool[picked].tolist()


def _lpd_group(
    score: torch.Tensor, todo: torch.Tensor, n: int, rows: int, cols: int, generator: torch.Generator | None
) -> list[int]:
    """One step of LPD: cells next to decoded ones first (proximity >= 1, ties in random order), none two
    within one cell of each other; the rest by farthest-point sampling."""
    cand = todo.nonzero().flatten()
    cand = cand[torch.randperm(len(cand), generator=generator)]
    cand = cand[torch.sort(score[cand], descending=True, stable=True).indices]
    near = score[cand] >= 1.0
    group: list[int] = []
    blocked = bytearray(rows * cols)  # a Python buffer: this loop looks cells up one at a time
    if not bool((~todo).any()):  # nothing decoded yet: a random first cell
        first = int(cand[torch.randint(len(cand), (1,), generator=generator)])
        group, cand, near = [first], cand[cand != first], near[cand != first]
        _block(blocked, first, rows, cols)
    skipped: list[int] = []
    for i, cell in enumerate(cand[near].tolist()):
        if len(group) == n:
            skipped += cand[near][i:].tolist()
            break
        if blocked[cell]:
            skipped.append(cell)
            continue
        group.append(cell)
        _block(blocked, cell, rows, cols)
    pool = torch.cat([cand[~near], torch.tensor(skipped, dtype=torch.long)])
    return group + _spread(group, pool, n - len(group), cols, generator)


def _block(blocked: bytearray, cell: int, rows: int, cols: int) -> None:
    """Mark ``cell`` and its 8 neighbours: no other cell of the step may sit there."""
    r, c = divmod(cell, cols)
    lo, hi = max(c - 1, 0), min(c + 2, cols)
    for rr in range(max(r - 1, 0), min(r + 2, rows)):
        blocked[rr * cols + lo : rr * cols + hi] = b"\x01" * (hi - lo)


def lpd_order(
    rows: int,
    cols: int,
    counts: Sequence[int] | None = None,
    generator: torch.Generator | None = None,
    free: torch.Tensor | None = None,
) -> torch.Tensor:
    """LPD's locality-aware order (Zhang et al. 2025): each step decodes the ``counts[s]`` cells closest to
    the cells decoded before it (the known ones included), never two next to each other, and spreads the
    rest out by farthest-point sampling; the first cell is random. ``counts``: cells per step (default one
    at a time, as LPD's order without a schedule); ``free``: (rows*cols,) bool, the cells to order (default
    all). Returns the free cells in decode order, ``(free.sum(),)``; reproducible with ``generator``."""
    rows, cols = _check_dim(rows, "rows"), _check_dim(cols, "cols")
    todo = torch.ones(rows * cols, dtype=torch.bool) if free is None else free.cpu().bool().clone()
    counts = [1] * int(todo.sum()) if counts is None else [int(n) for n in counts]
    if sum(counts) != int(todo.sum()) or min(counts, default=1) < 1:
        raise ValueError(f"counts must be positive and add up to the {int(todo.sum())} cells to order")
    score = torch.zeros(rows * cols, dtype=torch.float64)
    _add_proximity(score, (~todo).nonzero().flatten(), rows, cols)
    out: list[int] = []
    for n in counts:
        group = _lpd_group(score, todo, n, rows, cols, generator)
        cells = torch.tensor(group, dtype=torch.long)
        todo[cells] = False
        _add_proximity(score, cells, rows, cols)
        out += group
    return torch.tensor(out, dtype=torch.long)


_GRID_ORDERS: dict[str, Callable[[int, int], torch.Tensor]] = {
    "raster": raster,
    "spiral-in": spiral_in,
    "spiral-out": spiral_out,
    "z-curve": zcurve,
    "alternate": checkerboard,
    "halton": halton,
}


def make_order(name: str, rows: int, cols: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Build the order called ``name`` (one of ``ORDER_NAMES``) for a ``rows x cols`` grid.

    ``generator`` is used only by ``'random'`` and ``'lpd'`` (here one cell per step: the steps'
    sizes shape LPD's order, see :func:`lpd_order`). Case and ``_``/``-`` are ignored;
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
    if key == "lpd":
        return lpd_order(rows, cols, generator=generator)
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
    order: Any,
    rows: int,
    cols: int,
    free: torch.Tensor,
    generator: torch.Generator | None,
    counts: Sequence[int] | None = None,
) -> torch.Tensor:
    """(M,) the free cells (``free``: (N,) bool, CPU) in the order ``order`` (a name or a permutation);
    ``counts``: the cells each step decodes (LPD's order depends on them)."""
    if isinstance(order, str) and order == "lpd":
        return lpd_order(rows, cols, counts, _cpu(generator), free)
    if isinstance(order, str) and order == "random":
        cells = free.nonzero().flatten()
        gen_dev = generator.device if generator is not None else torch.device("cpu")
        return cells[torch.randperm(len(cells), generator=generator, device=gen_dev).cpu()]
    full = make_order(order, rows, cols) if isinstance(order, str) else check_permutation(order, rows * cols).cpu()
    return full[free[full]]


def _cpu(generator: torch.Generator | None) -> torch.Generator | None:
    """``generator`` if it draws on the CPU, else a CPU generator seeded from it (LPD's draws run on the CPU)."""
    if generator is None or generator.device.type == "cpu":
        return generator
    return torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator, device=generator.device)))


def make_policy(
    order: Any,
    rows: int,
    cols: int,
    free: torch.Tensor,
    generators: Sequence[torch.Generator | None],
    per_image: bool = False,
    device: torch.device | str = "cpu",
    counts: Sequence[int] | None = None,
) -> OrderPolicy:
    """The policy for ``order`` (a name of :data:`SAMPLER_ORDERS` or a permutation of the grid's cells).

    free: (rows * cols,) bool, True for the cells to decode. generators: one shared by the batch,
    or one per image with ``per_image`` (image b's random order then comes from ``generators[b]``).
    The policy's tensors live on ``device``. counts: the cells each step decodes (for ``"lpd"``).
    """
    free = free.cpu()
    cls = order_policy(order)
    if cls.adaptive:
        if per_image and cls.batch_shared:
            raise ValueError(f"order {order!r} picks cells from the whole batch; it needs one shared generator")
        return cls(free.nonzero().flatten().to(device))
    rows_of = [_fixed_free_order(order, rows, cols, free, g, counts) for g in generators]
    return FixedOrder(torch.stack(rows_of).to(device))
