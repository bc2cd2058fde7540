"""Model configurations: dataclasses with named presets.

The ARPG presets follow the released checkpoints (hp-l33/ARPG), the LlamaGen ones
upstream's class-conditional GPT-B/L at 256 px, the RandAR ones RandAR-L/XL on LlamaGen's
tokenizer (ziqipang/RandAR); the VQ-16 preset follows LlamaGen's
``vq_ds16_c2i``.  Small presets exist for the model shipped in
``assets/models`` and for fast tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar


def find_multiple(n: int, k: int) -> int:
    """Smallest multiple of ``k`` that is >= ``n``."""
    return n if n % k == 0 else n + k - (n % k)


def _check_heads(dim: int, n_head: int) -> None:
    """ValueError unless ``dim`` splits into ``n_head`` heads whose size 2D RoPE can use (a multiple of 4)."""
    if dim % n_head:
        raise ValueError(f"dim ({dim}) must be divisible by n_head ({n_head})")
    if (dim // n_head) % 4:
        raise ValueError(f"head_dim ({dim // n_head}) must be a multiple of 4 for 2D RoPE")


_C = TypeVar("_C", bound="_Named")


class _Named:
    """What every config shares: named presets (``_PRESETS[FAMILY]``) and its JSON form, the
    fields plus ``"family"`` (a name of :data:`arpg.state_dicts.FAMILIES`)."""

    FAMILY = ""
    TITLE = ""  # how messages call the family

    @classmethod
    def from_name(cls: type[_C], name: str) -> _C:
        presets = _PRESETS[cls.FAMILY]
        try:
            return cls(**presets[name])
        except KeyError:
            raise ValueError(f"unknown {cls.TITLE} preset {name!r}; choose from {sorted(presets)}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.FAMILY, **asdict(self)}  # type: ignore[call-overload]  # subclasses are dataclasses

    @classmethod
    def from_dict(cls: type[_C], d: dict[str, Any]) -> _C:
        """The config of a JSON sidecar; keys that are not fields (``family``, ``sampling``) are ignored."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in d.items() if k in names})


class _Transformer(_Named):
    """What the transformer configs derive alike from ``dim``, ``n_head`` and ``multiple_of``."""

    dim: int
    n_head: int
    multiple_of: int

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def ffn_dim(self) -> int:
        # SwiGLU hidden size as in LlamaGen / ARPG: 2/3 of 4*dim, rounded up (upstream LlamaGen's
        # ffn_dim_multiplier is None for every class-conditional model).
        return find_multiple(int(2 * 4 * self.dim / 3), self.multiple_of)


@dataclass(frozen=True)
class ARPGConfig(_Transformer):
    FAMILY, TITLE = "arpg", "ARPG"

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
        _check_heads(self.dim, self.n_head)
        grids = tuple(tuple(g) for g in self.trained_grids)
        if any(len(g) != 2 or not all(isinstance(n, int) and n > 0 for n in g) for g in grids):
            raise ValueError(f"trained_grids must be (rows, cols) pairs of positive ints, got {self.trained_grids!r}")
        object.__setattr__(self, "trained_grids", grids)

    # -- derived quantities -------------------------------------------------
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


ARPG_PRESETS: dict[str, dict[str, Any]] = {
    "ARPG-L": dict(dim=1024, n_head=16, n_self_layers=12, n_cross_layers=12),
    "ARPG-XL": dict(dim=1280, n_head=20, n_self_layers=18, n_cross_layers=18),
    "ARPG-XXL": dict(dim=1536, n_head=24, n_self_layers=24, n_cross_layers=24),
    # The model shipped in assets/models: digits on a 16x16 token grid.
    "ARPG-digits": dict(
        dim=256, n_head=4, n_self_layers=4, n_cross_layers=4, vocab_size=512, num_classes=10, multiple_of=128
    ),
    # The scenes model (arpg.data.scenes): landscapes on variable canvases of 64 px high, 4 px per token
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
    weights do not fix), or None (also for a config of another family)."""
    if not isinstance(cfg, ARPGConfig):
        return None
    for name, entries in ARPG_PRESETS.items():
        if replace(ARPGConfig(**entries), grid_size=cfg.grid_size, trained_grids=cfg.trained_grids) == cfg:
            return name
    return None


@dataclass(frozen=True)
class LlamaGenConfig(_Transformer):
    """LlamaGen's class-conditional GPT (FoundationVision/LlamaGen, ``autoregressive/models/gpt.py``).

    Only what the weights and the decode need: one class token, 2D RoPE on a ``grid_size`` square
    (256 px on VQ-16: 16), a class table with one extra row for the null class (the CFG label).
    """

    FAMILY, TITLE = "llamagen", "LlamaGen"

    dim: int = 1024
    n_layer: int = 24
    n_head: int = 16
    vocab_size: int = 16384
    num_classes: int = 1000
    grid_size: int = 16
    multiple_of: int = 256
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        _check_heads(self.dim, self.n_head)


#: Upstream's GPT-B and GPT-L at 256 px (16x16 tokens of VQ-16), and a tiny one for tests.
LLAMAGEN_PRESETS: dict[str, dict[str, Any]] = {
    "LlamaGen-B": dict(dim=768, n_layer=12, n_head=12),
    "LlamaGen-L": dict(dim=1024, n_layer=24, n_head=16),
    # The raster-order model trained here on the digits tokens of the shipped tokenizer (RECIPES["digits-raster"]
    # in arpg.train.recipes): 2.86M parameters, 5.7 MB in bf16, the most the 64 MB of shipped weights leave
    # room for (the digits ARPG has 6.7M); six layers rather than three of dim 256, for depth.
    "LlamaGen-digits": dict(dim=192, n_layer=6, n_head=4, vocab_size=512, num_classes=10, multiple_of=128),
    "LlamaGen-tiny": dict(dim=32, n_layer=2, n_head=4, vocab_size=64, num_classes=10, grid_size=6, multiple_of=16),
    # A tiny one on the codebook of VQ-tiny, for tests of the raster training (arpg.train.raster).
    "LlamaGen-tiny-vq": dict(dim=32, n_layer=2, n_head=4, vocab_size=32, num_classes=10, multiple_of=16),
}


def llamagen_preset_name(cfg: LlamaGenConfig) -> str | None:
    """The LlamaGen preset with ``cfg``'s architecture (every field but ``grid_size``), or None (also for a
    config of another family, RandAR's included)."""
    if type(cfg) is not LlamaGenConfig:
        return None
    for name, entries in LLAMAGEN_PRESETS.items():
        if replace(LlamaGenConfig(**entries), grid_size=cfg.grid_size) == cfg:
            return name
    return None


@dataclass(frozen=True)
class RandARConfig(LlamaGenConfig):
    """RandAR's class-conditional GPT (ziqipang/RandAR, ``RandAR/model/randar_gpt.py``).

    The same fields as :class:`LlamaGenConfig`: RandAR is LlamaGen's transformer with one learnt
    position-instruction embedding more, so only the family differs (its own presets, its own loader).
    """

    FAMILY, TITLE = "randar", "RandAR"


#: Upstream's RandAR-L (0.3B) and RandAR-XL (0.7B) at 256 px on VQ-16 (configs/randar/*_llamagen.yaml),
#: and a tiny one for tests.
RANDAR_PRESETS: dict[str, dict[str, Any]] = {
    "RandAR-L": dict(dim=1024, n_layer=24, n_head=16),
    "RandAR-XL": dict(dim=1280, n_layer=36, n_head=20),
    "RandAR-tiny": dict(dim=32, n_layer=2, n_head=4, vocab_size=64, num_classes=10, grid_size=6, multiple_of=16),
}


@dataclass(frozen=True)
class VQConfig(_Named):
    FAMILY, TITLE = "vq", "VQ"

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

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "ch_mult": list(self.ch_mult)}


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

_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "arpg": ARPG_PRESETS,
    "llamagen": LLAMAGEN_PRESETS,
    "randar": RANDAR_PRESETS,
    "vq": VQ_PRESETS,
}
