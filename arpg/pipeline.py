"""Model + tokenizer + device/dtype in one object: images and classes in, images out.

The web app, the command line and the benchmarks all go through :class:`Pipeline`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .card import ModelCard, read_card
from .checkpoints import load_transformer, load_vq
from .config import ARPGConfig, VQConfig
from .devices import default_dtype, resolve_device
from .judge import load_judge
from .llamagen import LlamaGen
from .llamagen_sampling import generate_raster, llamagen_defaults
from .model import ARPG
from .options import DEFAULT_DECODING, ResizeDefaults, SamplingOptions, model_defaults, with_overrides
from .randar import RandAR
from .randar_sampling import generate_randar, randar_defaults
from .sampling import Context, GenerationResult, StepCallback, Trace, generate
from .tokenizer import VQModel, from_uint8, to_uint8
from .validation import check_seed, show
from .zoo import ASSETS, JUDGE_FILE, MODELS, title

log = logging.getLogger(__name__)

SHIPPED_DIR = MODELS["digits"].folder  # the shipped digits model: what the CLI and app use by default
#: The data set a model trained here learnt when its JSON does not say (JSONs written before it was recorded).
DEFAULT_DATA = "digits"


def shipped_card(directory: str | Path, num_classes: int | None = None) -> ModelCard:
    """The card of the model trained here in ``directory`` (:func:`arpg.card.read_card`)."""
    return read_card(Path(directory) / "arpg.safetensors", num_classes, ASSETS, default_data=DEFAULT_DATA)


def load_fast(path: str | Path, device: torch.device, dtype: torch.dtype | None = None) -> ARPG | LlamaGen:
    """An image model's checkpoint (ARPG, RandAR or LlamaGen, told by its keys) ready for fast decoding: in
    ``dtype`` (default: the device's fast dtype, :func:`~arpg.devices.default_dtype`), projections
    fused and, on a CPU, weights prepacked.  The state dict keeps the released keys;
    ``docs/benchmarks/`` measures the gain."""
    model = load_transformer(path, device=device, dtype=dtype or default_dtype(device))
    return model.fuse().prepack()


@dataclass(frozen=True)
class Sampler:
    """How one family's model decodes (:func:`arpg.sampling.generate`'s signature) and where its sampling
    defaults come from (``defaults(cfg, weights)``)."""

    generate: Callable[..., GenerationResult]
    defaults: Callable[[Any, str | Path | None], SamplingOptions]


def _generate_arpg(*args: Any, **kwargs: Any) -> GenerationResult:
    """:func:`arpg.sampling.generate`, looked up when called (a test may watch this module's ``generate``)."""
    return generate(*args, **kwargs)


#: Each image-model family's sampler, by model class.
SAMPLERS: dict[type, Sampler] = {
    ARPG: Sampler(_generate_arpg, model_defaults),
    LlamaGen: Sampler(generate_raster, llamagen_defaults),
    RandAR: Sampler(generate_randar, randar_defaults),
}


def sampler_of(model: torch.nn.Module) -> Sampler:
    """The :class:`Sampler` of ``model``'s family, its nearest class first (a RandAR is a LlamaGen too);
    ARPG's for a model of no listed class."""
    return next((SAMPLERS[cls] for cls in type(model).__mro__ if cls in SAMPLERS), SAMPLERS[ARPG])


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
    """An image model (ARPG, or LlamaGen: see :data:`SAMPLERS`), its tokenizer, class names and sampling defaults.

    defaults: the model's :class:`SamplingOptions` (the ``"sampling"`` section of its JSON
    config, see :func:`arpg.options.model_defaults`); every task starts from them.
    decodings: the canvas tasks' decoding when none is asked for, windowed or whole (the
    ``"decoding"`` section of its JSON over :data:`~arpg.options.DEFAULT_DECODING`: what measured best).
    resize_defaults: its resolution change when none is asked for (:func:`arpg.options.model_resize`).
    """

    model: ARPG | LlamaGen
    vq: VQModel
    class_names: list[str]
    name: str = "model"
    judge: torch.nn.Module | None = None
    defaults: SamplingOptions = field(default_factory=SamplingOptions)
    notice: str | None = None  # shown by the UI, e.g. why the released weights are not in use
    data: str | None = None  # the data set a model of this project learnt (arpg.data.sets.DATASETS), else None
    decodings: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_DECODING))
    resize_defaults: ResizeDefaults = field(default_factory=ResizeDefaults)  # its JSON's "resize" section
    stepper: Any = None  # how generate's steps run: None eagerly, or an arpg.capture.CapturedSteps
    card: ModelCard = field(default_factory=ModelCard)  # what its JSON and folder say (arpg.card)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def shipped(
        cls,
        directory: str | Path = SHIPPED_DIR,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        name: str | None = None,
    ) -> Pipeline:
        """A small model trained by this project: the digits model (``assets/models``) by default,
        or any folder of ``arpg``/``vq``/``judge`` weights (:mod:`arpg.zoo` lists those that ship).

        Its sampling defaults are its family's with the ``"sampling"`` section of ``arpg.json`` on top;
        ``name``: what it is called (default: after the data set it learnt, :func:`arpg.zoo.title`).
        """
        d = Path(directory)
        device = resolve_device(device)
        model = load_fast(d / "arpg.safetensors", device, dtype)
        vq = load_vq(d / "vq.safetensors", device=device)
        judge = load_judge(d / JUDGE_FILE) if (d / JUDGE_FILE).exists() else None
        card = shipped_card(d, model.cfg.num_classes)
        name = name or title(card.data or d.name, card.preview)
        defaults = sampler_of(model).defaults(model.cfg, d / "arpg.safetensors")
        return cls.with_card(model, vq, card, name, judge, defaults)

    @classmethod
    def from_files(
        cls,
        weights: str | Path,
        tokenizer: str | Path,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> Pipeline:
        """Released (or converted) checkpoints: an image model (ARPG, RandAR or LlamaGen, told by its keys)
        and a VQ file.

        Sampling defaults: the family's (ARPG: the released preset with the model's architecture;
        LlamaGen, RandAR: upstream's), overridden by the ``"sampling"`` section of ``<weights stem>.json``
        when there is one. Weights as in
        :func:`load_fast` (bf16 on CUDA, as the paper measures); fp32 matmuls on CUDA may use TF32.
        """
        device = resolve_device(device)
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        model = load_fast(weights, device, dtype)
        vq = load_vq(tokenizer, device=device)
        if device.type == "cpu" and model.dtype == torch.bfloat16:
            vq.fast_decoding()  # on a CPU a 256 px decode weighs like the whole transformer decode
        card = read_card(weights, model.cfg.num_classes, ASSETS)
        return cls.with_card(model, vq, card, Path(weights).stem, None, sampler_of(model).defaults(model.cfg, weights))

    @classmethod
    def with_card(
        cls,
        model: ARPG | LlamaGen,
        vq: VQModel,
        card: ModelCard,
        name: str,
        judge: torch.nn.Module | None,
        defaults: SamplingOptions,
    ) -> Pipeline:
        """A pipeline of ``model`` and ``vq`` that shows what ``card`` says (classes, data set, decodings)."""
        return cls(
            model,
            vq,
            list(card.class_names),
            name=name,
            data=card.data,
            judge=judge,
            defaults=defaults,
            decodings=dict(card.decodings),
            resize_defaults=card.resize,
            card=card,
        )

    @classmethod
    def random(cls, arpg: str = "ARPG-tiny", vq: str = "VQ-tiny", seed: int = 0) -> Pipeline:
        """Randomly initialised components (tests and smoke runs)."""
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
    def generator(self, seed: int) -> torch.Generator:
        """A generator on the model's device seeded with ``seed``."""
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
        return [img for i in range(0, len(snaps), batch) for img in self.decode(snaps[i : i + batch])]

    # -- tasks ---------------------------------------------------------------------------
    def generate(
        self,
        labels: Any,
        options: SamplingOptions | None = None,
        *,
        seed: int | None = None,
        grid: tuple[int, int] | None = None,
        context: Context | None = None,
        snapshots: bool = False,
        callback: StepCallback | None = None,
        **overrides: Any,
    ) -> Output:
        """Class-conditional generation of ``labels`` (B,) into (B, H, W, 3) uint8 images.

        options: None for :attr:`defaults`; ``overrides`` are SamplingOptions field names applied
        on top (``steps=8``; ``None`` keeps the field). seed: None draws a fresh one (returned in
        the output). grid, context, snapshots, callback: as in :func:`arpg.sampling.generate`.
        """
        seed = check_seed(seed)
        opts = with_overrides(options, overrides, self.defaults)
        res = sampler_of(self.model).generate(
            self.model,
            labels,
            opts,
            generator=self.generator(seed),
            grid=grid or self.grid,
            context=context,
            snapshots=snapshots,
            callback=callback,
            stepper=self.stepper,
        )
        lab = torch.as_tensor(labels).reshape(-1).tolist()
        return Output(self.decode(res.tokens), res.tokens, res.trace, seed, lab)

    def label_of(self, label: int | np.integer | str) -> int:
        """A class id from an id or a class name."""
        if isinstance(label, str):
            key = label.strip().lower()
            for i, n in enumerate(self.class_names):
                if n.lower() == key:
                    return i
            if key.isdecimal() and key.isascii():
                label = int(key)
            else:
                raise ValueError(f"unknown class {show(label)}")
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise ValueError(f"class must be an integer id or a class name, got {show(label)}")
        if not 0 <= int(label) < self.num_classes:
            raise ValueError(f"class must be in 0..{self.num_classes - 1}, got {show(label)}")
        return int(label)
