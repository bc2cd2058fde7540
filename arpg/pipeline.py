"""Model + tokenizer + device/dtype in one object: images and classes in, images out.

The web app, the command line and the benchmarks all go through :class:`Pipeline`.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import data
from .model import ARPG
from .sampling import Context, GenerationResult, Trace, generate
from .tokenizer import VQModel, from_uint8, to_uint8

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED_DIR = ASSETS / "models"
MAX_SEED = 2**31 - 1


def imagenet_class_names() -> list[str]:
    path = ASSETS / "imagenet_classes.txt"
    if path.exists():
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(names) == 1000:
            return names
    return [f"class {i}" for i in range(1000)]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Output:
    """Images (B, H, W, 3) uint8, their tokens, the trace of the decode and the seed used."""

    images: np.ndarray
    tokens: torch.Tensor
    trace: Trace
    seed: int
    labels: list[int] = field(default_factory=list)
    note: str | None = None


@dataclass
class Pipeline:
    model: ARPG
    vq: VQModel
    class_names: list[str]
    name: str = "model"
    judge: torch.nn.Module | None = None
    default_cfg: float = 4.0
    default_cfg_schedule: str = "linear"  # the released models' schedule; the shipped one uses "constant"
    notice: str | None = None  # shown by the UI, e.g. why the released weights are not in use

    # -- construction ------------------------------------------------------------------
    @classmethod
    def shipped(cls, directory: str | Path = SHIPPED_DIR, device: str | torch.device | None = None,
                dtype: torch.dtype | None = None) -> "Pipeline":
        """The small digits model trained by this project (``assets/models``)."""
        from .checkpoints import load_arpg, load_vq

        d = Path(directory)
        device = torch.device(device) if device else default_device()
        model = load_arpg(d / "arpg.safetensors", device=device, dtype=dtype)
        vq = load_vq(d / "vq.safetensors", device=device)
        judge = load_judge(d / "judge.safetensors") if (d / "judge.safetensors").exists() else None
        # Constant guidance: the small model settles a digit's shape in the first few steps,
        # where the linear schedule's guidance is still near zero (README, "The shipped model").
        return cls(model, vq, list(data.CLASS_NAMES), name="shipped digits model", judge=judge, default_cfg=3.0,
                   default_cfg_schedule="constant")

    @classmethod
    def from_files(cls, weights: str | Path, tokenizer: str | Path, device: str | torch.device | None = None,
                   dtype: torch.dtype | None = None) -> "Pipeline":
        """Released (or converted) checkpoints: an ARPG file and a VQ file."""
        from .checkpoints import load_arpg, load_vq

        device = torch.device(device) if device else default_device()
        model = load_arpg(weights, device=device, dtype=dtype)
        vq = load_vq(tokenizer, device=device)
        C = model.cfg.num_classes
        names = imagenet_class_names() if C == 1000 else (
            list(data.CLASS_NAMES) if C == 10 else [f"class {i}" for i in range(C)])
        default_cfg = {1024: 5.0, 1280: 6.0, 1536: 7.5}.get(model.cfg.dim, 4.0)
        return cls(model, vq, names, name=Path(weights).stem, default_cfg=default_cfg)

    @classmethod
    def random(cls, arpg: str = "ARPG-tiny", vq: str = "VQ-tiny", seed: int = 0) -> "Pipeline":
        """Randomly initialised components (tests and smoke runs)."""
        from .config import ARPGConfig, VQConfig

        torch.manual_seed(seed)
        model = ARPG(ARPGConfig.from_name(arpg)).init_weights(0.2).eval()
        v = VQModel(VQConfig.from_name(vq)).eval()
        names = [f"class {i}" for i in range(model.cfg.num_classes)]
        return cls(model, v, names, name=f"random {arpg}")

    # -- properties --------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def factor(self) -> int:
        return self.vq.factor

    @property
    def grid(self) -> tuple[int, int]:
        g = self.model.cfg.grid_size
        return g, g

    @property
    def image_size(self) -> int:
        return self.model.cfg.grid_size * self.factor

    @property
    def num_classes(self) -> int:
        return self.model.cfg.num_classes

    @property
    def num_params(self) -> int:
        """Parameters of the ARPG transformer."""
        return sum(p.numel() for p in self.model.parameters())

    # -- basic operations ----------------------------------------------------------------
    @staticmethod
    def resolve_seed(seed: int | None) -> int:
        """A seed in 0..2**31-1; None draws a fresh one (shown to the user so it can be reused)."""
        if seed is None:
            return random.randint(0, MAX_SEED)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) and not (
                isinstance(seed, float) and float(seed).is_integer()):
            raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
        seed = int(seed)
        if not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {seed}")
        return seed

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator(self.device).manual_seed(seed)

    @torch.inference_mode()
    def decode(self, tokens: torch.Tensor) -> np.ndarray:
        """(B, rows, cols) codes -> (B, rows*f, cols*f, 3) uint8 (unknown cells (-1) decode as code 0)."""
        t = tokens.clamp(min=0).to(self.vq.device)
        return to_uint8(self.vq.decode(t)).cpu().numpy()

    @torch.inference_mode()
    def encode(self, images: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, H/f, W/f) codes on the CPU."""
        x = from_uint8(torch.from_numpy(np.array(images, dtype=np.uint8))).to(self.vq.device)
        return self.vq.encode(x).cpu()

    def frames(self, trace: Trace, index: int = 0, batch: int = 16) -> list[np.ndarray]:
        """Decoded image of item ``index`` after each step (needs ``snapshots=True``)."""
        if not trace.snapshots:
            raise ValueError("this trace has no per-step snapshots; generate with snapshots=True")
        snaps = torch.stack([s[index] for s in trace.snapshots])
        return [img for i in range(0, len(snaps), batch) for img in self.decode(snaps[i:i + batch])]

    # -- tasks ---------------------------------------------------------------------------
    def generate(self, labels, seed: int | None = None, cfg_scale: float | None = None,
                 grid: tuple[int, int] | None = None, context: Context | None = None, **kw) -> Output:
        """Class-conditional generation; ``kw`` are :func:`arpg.sampling.generate` options."""
        seed = self.resolve_seed(seed)
        cfg_scale = self.default_cfg if cfg_scale is None else cfg_scale
        if kw.get("cfg_schedule") is None:
            kw["cfg_schedule"] = self.default_cfg_schedule
        res: GenerationResult = generate(self.model, labels, cfg_scale=cfg_scale, generator=self.generator(seed),
                                         grid=grid or self.grid, context=context, **kw)
        lab = torch.as_tensor(labels).reshape(-1).tolist()
        return Output(self.decode(res.tokens), res.tokens, res.trace, seed, lab)

    def label_of(self, label) -> int:
        """A class id from an id or a class name."""
        if isinstance(label, str):
            key = label.strip().lower()
            for i, n in enumerate(self.class_names):
                if n.lower() == key:
                    return i
            if key.isdecimal() and key.isascii():
                label = int(key)
            else:
                raise ValueError(f"unknown class {label!r}")
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise ValueError(f"class must be an integer id or a class name, got {label!r}")
        if not 0 <= int(label) < self.num_classes:
            raise ValueError(f"class must be in 0..{self.num_classes - 1}, got {label}")
        return int(label)


def load_judge(path: str | Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    from .judge import Judge

    judge = Judge()
    judge.load_state_dict(load_file(str(path)), strict=True)
    return judge.eval()
