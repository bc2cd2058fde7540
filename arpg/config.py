"""Model configurations: dataclasses with named presets.

The ARPG presets follow the released checkpoints (hp-l33/ARPG); the VQ-16 preset
follows LlamaGen's ``vq_ds16_c2i``.  Small presets exist for the model shipped in
``assets/models`` and for fast tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


def find_multiple(n: int, k: int) -> int:
    """Smallest multiple of ``k`` that is >= ``n``."""
    return n if n % k == 0 else n + k - (n % k)


@dataclass(frozen=True)
class ARPGConfig:
    dim: int = 1024
    n_head: int = 16
    n_self_layers: int = 12
    n_cross_layers: int = 12
    vocab_size: int = 16384
    num_classes: int = 1000
    grid_size: int = 16
    multiple_of: int = 256
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    # The token grids (rows, cols) the weights were trained on, as training records them in the
    # JSON config; empty: the ``grid_size`` square (the released models: 16x16).  Not an architecture
    # field: any weights run on any grid, but queries beyond these sizes are out of distribution.
    trained_grids: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if self.dim % self.n_head:
            raise ValueError(f"dim ({self.dim}) must be divisible by n_head ({self.n_head})")
        if self.head_dim % 4:
            raise ValueError(f"head_dim ({self.head_dim}) must be a multiple of 4 for 2D RoPE")
        grids = tuple(tuple(g) for g in self.trained_grids)
        if any(len(g) != 2 or not all(isinstance(n, int) and n > 0 for n in g) for g in grids):
            raise ValueError(f"trained_grids must be (rows, cols) pairs of positive ints, got {self.trained_grids!r}")
        object.__setattr__(self, "trained_grids", grids)

    # -- derived quantities -------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def ffn_dim(self) -> int:
        # SwiGLU hidden size as in LlamaGen / ARPG: 2/3 of 4*dim, rounded up.
        return find_multiple(int(2 * 4 * self.dim / 3), self.multiple_of)

    @property
    def trained_sizes(self) -> tuple[tuple[int, int], ...]:
        """The grids the weights were trained on: ``trained_grids``, else ``((grid_size, grid_size),)``."""
        return self.trained_grids or ((self.grid_size, self.grid_size),)

    @property
    def n_embeddings(self) -> int:
        # codes | [MASK] | classes | null class | unused
        return self.vocab_size + 1 + self.num_classes + 1 + 1

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def null_id(self) -> int:
        return self.vocab_size + 1 + self.num_classes

    def class_id(self, label: int) -> int:
        return self.vocab_size + 1 + label

    # -- presets --------------------------------------------------------------
    @classmethod
    def from_name(cls, name: str) -> ARPGConfig:
        try:
            return cls(**ARPG_PRESETS[name])
        except KeyError:
            raise ValueError(f"unknown ARPG preset {name!r}; choose from {sorted(ARPG_PRESETS)}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"family": "arpg", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ARPGConfig:
        """The config of a JSON sidecar; keys that are not fields (``family``, ``sampling``) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


ARPG_PRESETS: dict[str, dict[str, Any]] = {
    "ARPG-L": dict(dim=1024, n_head=16, n_self_layers=12, n_cross_layers=12),
    "ARPG-XL": dict(dim=1280, n_head=20, n_self_layers=18, n_cross_layers=18),
    "ARPG-XXL": dict(dim=1536, n_head=24, n_self_layers=24, n_cross_layers=24),
    # The model shipped in assets/models: digits on a 16x16 token grid.
    "ARPG-digits": dict(
        dim=256, n_head=4, n_self_layers=4, n_cross_layers=4, vocab_size=512, num_classes=10, multiple_of=128
    ),
    # The scenes model (arpg.train.scenes): landscapes on variable canvases of 64 px high, 4 px per token
    # (trained on the grids of RECIPES["scenes"].canvases in arpg.train.recipes, recorded in its JSON).
    "ARPG-scenes": dict(
        dim=320, n_head=5, n_self_layers=5, n_cross_layers=5, vocab_size=1024, num_classes=10, multiple_of=128
    ),
    # A tiny model for tests.
    "ARPG-tiny": dict(
        dim=64, n_head=2, n_self_layers=2, n_cross_layers=2, vocab_size=32, num_classes=10, grid_size=4, multiple_of=32
    ),
}


def arpg_preset_name(cfg: ARPGConfig) -> str | None:
    """The preset with ``cfg``'s architecture (every field but ``grid_size`` and ``trained_grids``, which
    weights do not fix), or None."""
    for name, entries in ARPG_PRESETS.items():
        if replace(ARPGConfig(**entries), grid_size=cfg.grid_size, trained_grids=cfg.trained_grids) == cfg:
            return name
    return None


@dataclass(frozen=True)
class VQConfig:
    codebook_size: int = 16384
    codebook_dim: int = 8
    ch: int = 128
    ch_mult: tuple[int, ...] = field(default=(1, 1, 2, 2, 4))
    z_channels: int = 256
    num_res_blocks: int = 2  # encoder; the decoder uses one more per level (LlamaGen)
    norm_groups: int = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(self.ch_mult))

    @property
    def downsample(self) -> int:
        """Pixels per token side."""
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def from_name(cls, name: str) -> VQConfig:
        try:
            return cls(**VQ_PRESETS[name])
        except KeyError:
            raise ValueError(f"unknown VQ preset {name!r}; choose from {sorted(VQ_PRESETS)}") from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ch_mult"] = list(self.ch_mult)
        return {"family": "vq", **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VQConfig:
        """The config of a JSON sidecar; keys that are not fields (``family``) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


VQ_PRESETS: dict[str, dict[str, Any]] = {
    "VQ-16": dict(),
    # The tokenizer shipped in assets/models: 64x64 px -> 16x16 tokens.
    "VQ-digits": dict(
        codebook_size=512, codebook_dim=8, ch=32, ch_mult=(1, 2, 2), z_channels=64, num_res_blocks=1, norm_groups=16
    ),
    # The scenes tokenizer: 4 px per token, a larger codebook for the richer images.
    "VQ-scenes": dict(
        codebook_size=1024, codebook_dim=8, ch=48, ch_mult=(1, 2, 2), z_channels=64, num_res_blocks=1, norm_groups=16
    ),
    "VQ-tiny": dict(
        codebook_size=32, codebook_dim=4, ch=16, ch_mult=(1, 2, 2), z_channels=16, num_res_blocks=1, norm_groups=8
    ),
}
