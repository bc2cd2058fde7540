"""Analytic counts of one ``generate`` call: cache length and bytes, FLOPs, parameters.

Pure functions of an :class:`~arpg.config.ARPGConfig` and the tokens decoded per step;
the benchmarks compare them with what is measured (``trace.kv_cache_bytes``, the wall
clock) and the tests with ``torch.utils.flop_counter``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import ARPGConfig


def cache_length(n_cells: int, counts: Sequence[int], n_context: int = 0) -> int:
    """Length of the caches one ``generate`` call allocates.

    The class token and every decoded token except those of the last step are fed
    (tokens of the last step are never fed back): ``1 + n_context + n_cells - counts[-1]``
    where ``n_cells`` counts the cells decoded (``sum(counts)``).
    """
    return 1 + n_context + n_cells - counts[-1]


def cache_bytes(cfg: ARPGConfig, batch_eff: int, length: int, elem_bytes: int, per_layer: bool = False) -> int:
    """Bytes of the K/V caches of one decode call.

    ``batch_eff`` is the batch including the classifier-free-guidance doubling, ``length``
    the cache length (:func:`cache_length`), ``elem_bytes`` the bytes of one element.

    * ours (``per_layer=False``): every self layer keeps its own K and V, and one shared
      K/V serves all cross layers: ``(2 * n_self + 2) * batch_eff * length * dim * bytes``;
    * per-layer equivalent (``per_layer=True``): every layer, self and cross, keeps its own
      K and V, as LlamaGen does: ``2 * (n_self + n_cross) * batch_eff * length * dim * bytes``.
    """
    tensors = 2 * (cfg.n_self_layers + cfg.n_cross_layers) if per_layer else 2 * cfg.n_self_layers + 2
    return tensors * batch_eff * length * cfg.dim * elem_bytes


def kv_saving(cfg: ARPGConfig) -> float:
    """Fraction of cache bytes saved against a per-layer cache (:func:`cache_bytes` both ways)."""
    return 1.0 - (2 * cfg.n_self_layers + 2) / (2 * (cfg.n_self_layers + cfg.n_cross_layers))


def linear_params(cfg: ARPGConfig) -> tuple[int, int]:
    """Weights touched by the linear layers (P_fed, P_query).

    P_fed, per content token fed through the self stack: per self layer the attention's
    q, k, v, proj (4 d^2) and the SwiGLU (3 d f), plus the shared K/V projection (2 d^2).
    P_query, per query through the cross stack: per cross layer q, proj (2 d^2) and the
    SwiGLU (3 d f), plus the output head (d V).  Embedding lookups touch no FLOPs.
    """
    d, f = cfg.dim, cfg.ffn_dim
    fed = cfg.n_self_layers * (4 * d * d + 3 * d * f) + 2 * d * d
    query = cfg.n_cross_layers * (2 * d * d + 3 * d * f) + d * cfg.vocab_size
    return fed, query


def decode_flops(cfg: ARPGConfig, counts: Sequence[int], batch_eff: int, n_prefix: int = 1) -> int:
    """FLOPs of one ``generate`` call (the only FLOP formula of the project).

    At step s, with ``n_fed`` content tokens fed (the ``n_prefix`` class/context tokens at
    step 0, the ``counts[s-1]`` tokens decoded at the previous step after), ``L_s`` keys in
    the cache once they are appended (``n_prefix + sum(counts[:s])``) and ``n_q = counts[s]``
    queries::

        flops_s = B_eff * (2 * P_fed * n_fed + 2 * P_query * n_q
                           + 4 * d * L_s * (n_self * n_fed + n_cross * n_q))

    The first two terms are the linears (2 FLOPs per weight per token, :func:`linear_params`),
    the last is attention (Q K^T and A V, 2 * d * L_s FLOPs each per token and layer, summed
    over heads).  Norms, RoPE, activations, softmax and sampling are not counted.
    """
    p_fed, p_query = linear_params(cfg)
    d, total, length = cfg.dim, 0, 0
    for s, n_q in enumerate(counts):
        n_fed = n_prefix if s == 0 else counts[s - 1]
        length += n_fed
        total += (
            2 * p_fed * n_fed
            + 2 * p_query * n_q
            + 4 * d * length * (cfg.n_self_layers * n_fed + cfg.n_cross_layers * n_q)
        )
    return batch_eff * total


def param_count(cfg: ARPGConfig) -> int:
    """Parameters of the model (embeddings, both stacks, norms, head)."""
    d, f = cfg.dim, cfg.ffn_dim
    self_layer = 4 * d * d + 3 * d * f + 2 * d
    cross_layer = 2 * d * d + 3 * d * f + 2 * d
    return (
        cfg.n_embeddings * d
        + cfg.n_self_layers * self_layer
        + cfg.n_cross_layers * cross_layer
        + 2 * d * d
        + d
        + d
        + d * cfg.vocab_size
    )
