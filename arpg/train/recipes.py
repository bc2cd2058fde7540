"""What to train: the recipes (data, models, canvases, step counts, batch sizes, learning rates) and ARPG's phases.

``python -m arpg train --recipe digits`` runs :data:`RECIPES` ``["digits"]`` (see
:func:`arpg.train.run.run_recipe`); ``"scenes"`` trains the scenes models on variable canvases;
``"smoke"`` and ``"scenes-smoke"`` are the same recipes on tiny models, for tests; ``"digits-raster"`` trains
a LlamaGen model (raster order, :mod:`arpg.train.raster`) on the tokens of the shipped digits tokenizer.
``train --recipe R --stage vq-decoder`` sharpens the decoder of the recipe's trained tokenizer by
``Recipe.sharpen`` (:class:`Sharpening`, :mod:`arpg.train.sharpen`), tokens unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import ARPGConfig, LlamaGenConfig
from ..data.digits import GENERATOR_STYLE
from ..data.sets import SQUARE, CanvasSpec, check_style, dataset
from ..options import check_decodings, check_resize

#: The image-model families a recipe trains: ARPG (random order) or LlamaGen (raster order), by config class.
FAMILIES = {"arpg": ARPGConfig, "llamagen": LlamaGenConfig}


@dataclass(frozen=True)
class Sharpening:
    """The decoder fine-tune of ``train --stage vq-decoder`` (:mod:`arpg.train.sharpen`): the tokenizer's
    encoder and codebook stay frozen, so every image keeps its tokens and the ARPG model trained on them
    stays valid; only the decoder (and the 1x1 convolution before it) learns, on the recipe's tokenizer
    canvases in turn, from an L1 loss, an L1 loss on image gradients at three scales (``edge``), a
    distance in the judge's features (``perceptual``) and, from step ``adv_start`` (the discriminator
    trains from step 0, so it is ready then), a PatchGAN hinge loss weighted adaptively (``adversarial``
    times the ratio of the gradient norms at the decoder's last layer, at most ``adaptive_cap``).

    The cap matters: once the decoder fools the discriminator, the adversarial gradient shrinks and the
    uncapped ratio grows without bound, so the decoder follows a discriminator that no longer tells real
    from reconstructed and paints textures that are not there (worm-like patterns over flower meadows)."""

    steps: int = 1500
    batch: int = 8  # images on the first tokenizer canvas (as many pixels on the others)
    lr: float = 2e-4
    disc_lr: float = 2e-4
    adv_start: int = 200
    l1: float = 1.0
    edge: float = 1.0
    perceptual: float = 0.2
    adversarial: float = 0.5
    adaptive_cap: float = 1.0
    # What ships is this moving average of the decoder's weights: an adversarial loss makes the live
    # weights oscillate (textures come and go from one checkpoint to the next); their average does not.
    ema: float = 0.995
    disc_ch: int = 64
    disc_layers: int = 2


@dataclass(frozen=True)
class Recipe:
    """Every size and rate of one training run: data, tokenizer, the image model's phases 1-3, judge, where it ships.

    The image model is an ARPG model (``family="arpg"``, preset ``arpg``) or a LlamaGen model trained in
    raster order (``family="llamagen"``, preset ``arpg`` naming a LlamaGen preset; :mod:`arpg.train.raster`),
    each phase a fresh optimiser on its own tokens (:func:`arpg_phases`)."""

    data: str = "digits"  # the data set (arpg.data.sets.DATASETS); the models' presets must suit it
    style: str | None = "wide"  # the data style of the tokenizer, phase 1 and the judge (None: no styles)
    # The canvases of the tokenizer and of the ARPG phases: each batch is rendered on one of them, in
    # turn, with about the pixels (tokens) of ``vq_batch`` (``arpg_batch``) images on the first one.
    # The ARPG model's JSON records the token grids of ``canvases`` as "trained_grids".
    vq_canvases: tuple[CanvasSpec, ...] = SQUARE
    canvases: tuple[CanvasSpec, ...] = SQUARE
    out: str = "assets/models"  # where the weights ship (the default of run_recipe's ``out``)
    plots: str = "docs/training"  # where the loss curves go (the default of run_recipe's ``plots``)
    vq: str = "VQ-digits"
    arpg: str = "ARPG-digits"  # the image model's preset (a LlamaGen preset when family is "llamagen")
    family: str = "arpg"  # the image model's family: a name of FAMILIES
    # A model folder whose tokenizer and judge (vq.* and judge.* files) the recipe reuses instead of training
    # its own: the image model trains on its tokens, and once that model is written into ``out`` they are
    # linked there beside it (relative symbolic links, no copies; arpg.train.run.link_shared).
    tokenizer_from: str | None = None
    seed: int = 0
    vq_steps: int = 900
    vq_batch: int = 32
    vq_lr: float = 5e-4
    token_images: int = 36_000  # per canvas
    arpg_steps: int = 1500  # phase 1: the "wide" data style
    arpg_batch: int = 40
    arpg_lr: float = 1e-3
    focus_steps: int = 2600  # phase 2: continues phase 1 on the "centred" style (0: no phase 2)
    focus_lr: float = 1e-3
    focus_style: str | None = GENERATOR_STYLE
    # phase 3: continues phase 2 on many more images of the focus style, with an exponential moving
    # average of the weights (shipped when polish_ema > 0).  Sized for a GPU (scripts/gpu_polish.py; its time
    # there and on the 2-core CPU: docs/benchmarks/README.md, "How long runs take").  0 steps: none.
    polish_steps: int = 10_546
    polish_batch: int = 256
    polish_lr: float = 1e-3
    polish_images: int = 600_000
    polish_ema: float = 0.999
    label_dropout: float = 0.1
    judge_steps: int = 300
    judge_batch: int = 128
    judge_lr: float = 2e-3
    bf16: bool = True  # train with bf16 autocast
    # Store the finished ARPG model's weights in bf16 (half the bytes; every shipped model together
    # must stay within 64 MB).  Loading upcasts them where the device computes in fp32.
    ship_bf16: bool = False
    # The trained model's sampling defaults: the "sampling" section of its JSON config (arpg.json).
    # Constant guidance: the small model settles a digit's shape in the first few steps, where
    # linear guidance is still near zero.
    sampling: dict[str, Any] = field(
        default_factory=lambda: {"steps": 32, "cfg_scale": 3.0, "cfg_schedule": "constant"}
    )
    # The canvas tasks' decoding where the trained model measured another one best than
    # arpg.options.DEFAULT_DECODING: the "decoding" section of arpg.json (e.g. {"resize": "whole"}).
    decoding: dict[str, str] = field(default_factory=dict)
    # The resolution change where the trained model measured another setting best than
    # arpg.options.DEFAULT_RESIZE (scripts/bench_resize.py): the "resize" section of arpg.json.
    resize: dict[str, Any] = field(default_factory=dict)
    # The sharper decoder of ``train --stage vq-decoder``, trained after (and from) the tokenizer.
    sharpen: Sharpening = Sharpening()

    def arpg_meta(self, cfg: ARPGConfig) -> dict[str, Any]:
        """The JSON config written beside the ARPG weights: the architecture, data set, sampling
        defaults and (when the recipe names any) the canvas tasks' decoding and the resolution change."""
        meta = {**cfg.to_dict(), "data": self.data, "sampling": dict(self.sampling)}
        meta |= {"decoding": dict(self.decoding)} if self.decoding else {}
        return meta | ({"resize": dict(self.resize)} if self.resize else {})

    @property
    def prefix(self) -> str:
        """The image model's run files and loss curve: ``<prefix>*`` ("arpg", or "raster" for a LlamaGen)."""
        return "raster" if self.family == "llamagen" else "arpg"

    @property
    def model_title(self) -> str:
        """How messages name the image model: "ARPG model" or "LlamaGen model"."""
        return f"{FAMILIES[self.family].TITLE} model"

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; choose from {sorted(FAMILIES)}")
        FAMILIES[self.family].from_name(self.arpg)
        dataset(self.data)
        check_style(self.data, self.style)
        if self.focus_steps or self.polish_steps:
            check_style(self.data, self.focus_style)
        if not self.canvases or not self.vq_canvases:
            raise ValueError("a recipe needs at least one canvas for the tokenizer and one for the ARPG model")
        check_decodings(self.decoding, "recipe decoding")
        check_resize(self.resize, "recipe resize")


# The scenes model's canvases: the whole height of a scene, 64 px (16 tokens) high and 1, 1.5 and 2
# heights wide, and 96x96 px at scale 1.5 (24x24 tokens), so wider canvases and finer grids are in
# distribution.  The tokenizer also sees scale 2 (Resolution x2 tokenizes 128 px renders).
SCENE_CANVASES = (CanvasSpec(64, 64), CanvasSpec(64, 96), CanvasSpec(64, 128), CanvasSpec(96, 96, 1.5))
SCENE_VQ_CANVASES = (CanvasSpec(64, 64), CanvasSpec(96, 96, 1.5), CanvasSpec(128, 128, 2.0))
_SCENES = dict(data="scenes", style=None, focus_style=None, vq_canvases=SCENE_VQ_CANVASES, canvases=SCENE_CANVASES)

# A few steps of every loss (the adversarial term from the third), for tests.
_SMOKE_SHARPENING = Sharpening(steps=4, batch=2, adv_start=2, ema=0.5)

RECIPES = {
    # Stored in bf16: the same quality as fp32 (docs/benchmarks/digits-bf16-storage.json).
    # Its decoder sharpened in a few hundred steps, with half the scenes' adversarial weight: the digits
    # lose less detail, and the full weight overshoots (edges sharper than the true renders').
    # Resolution change: x1.5 lost least to bicubic against the true render (scripts/bench_resize.py,
    # docs/benchmarks/resize-digits.json); x2, the library's default, within its noise.
    "digits": Recipe(
        ship_bf16=True, sharpen=Sharpening(steps=600, adv_start=100, adversarial=0.25), resize={"scale": 1.5}
    ),
    # A seconds-long recipe on tiny models, for tests of the training code itself.
    "smoke": Recipe(
        vq="VQ-tiny",
        arpg="ARPG-tiny",
        vq_steps=6,
        vq_batch=4,
        token_images=32,
        arpg_steps=6,
        arpg_batch=4,
        focus_steps=4,
        polish_steps=5,
        polish_batch=6,
        polish_images=48,
        polish_ema=0.9,
        judge_steps=4,
        judge_batch=8,
        bf16=False,
        sharpen=_SMOKE_SHARPENING,
    ),
    # Scenes: one ARPG phase on the four canvases in turn (about 6,100 tokens a step).  On the
    # 2-core CPU with one thread the ARPG phase takes hours, run in chunks (``max_minutes``) and
    # resumed (each stage's time: the README's table of the scenes model, "training").
    "scenes": Recipe(
        **_SCENES,
        out="assets/models/scenes",
        plots="docs/training/scenes",
        vq="VQ-scenes",
        arpg="ARPG-scenes",
        vq_steps=1000,
        vq_batch=16,
        token_images=6000,
        # 4,000 steps until step 2,500 (CPU runs over three sessions), then shortened to 3,600 to
        # finish in the third: the cosine schedule stepped from 41% to 31% of the peak there.
        arpg_steps=3600,
        arpg_batch=24,
        focus_steps=0,
        polish_steps=0,
        judge_steps=300,
        judge_batch=64,
        ship_bf16=True,
        # What measured best on the trained model (docs/benchmarks/scenes_tasks.json, made by
        # scripts/bench_windows.py --model scenes): resize whole; outpaint and panorama windowed.
        decoding={"resize": "whole"},
        # The shipped decoder: half the default adversarial weight (the full weight paints textures that are
        # not there on the larger canvases; docs/benchmarks/tokenizer-sharp-scenes.json compares them).
        sharpen=Sharpening(adversarial=0.25),
    ),
    # The raster-order peer of the digits model: a LlamaGen model (arpg.train.raster) on the tokens of the shipped
    # digits tokenizer, whose tokenizer and judge it links rather than trains (the digits ARPG's images: the
    # same token cache a "digits" run makes for its phase 2).  One phase on the generator's style, with a
    # moving average of the weights (the fields of ARPG's phase 3).  Sized for one CPU thread of the 2-core
    # machine beside other jobs (its time: docs/benchmarks/README.md, "How long runs take").  Sampling: one
    # token per step in raster order, the constant guidance of the digits ARPG.
    "digits-raster": Recipe(
        family="llamagen",
        arpg="LlamaGen-digits",
        tokenizer_from="assets/models",
        out="assets/models/raster",
        plots="docs/training/raster",
        arpg_steps=0,
        focus_steps=0,
        polish_steps=2200,
        polish_batch=32,
        polish_lr=1e-3,
        polish_images=36_000,
        polish_ema=0.998,
        ship_bf16=True,
        sampling={
            **{"steps": 256, "schedule": "k=1", "order": "raster", "cfg_scale": 3.0, "cfg_schedule": "constant"},
            **{"temperature": 1.0, "top_k": 0, "top_p": 1.0},
        },
    ),
    # The scenes recipe on tiny models and a few images per canvas, for tests.
    "scenes-smoke": Recipe(
        **_SCENES,
        out="runs/scenes-smoke/models",
        plots="runs/scenes-smoke/plots",
        vq="VQ-tiny",
        arpg="ARPG-tiny",
        vq_steps=6,
        vq_batch=4,
        token_images=8,
        arpg_steps=8,
        arpg_batch=4,
        focus_steps=0,
        polish_steps=0,
        judge_steps=4,
        judge_batch=8,
        bf16=False,
        ship_bf16=True,
        sharpen=_SMOKE_SHARPENING,
    ),
}


@dataclass(frozen=True)
class Phase:
    """One ARPG training phase: a fresh AdamW + warm-up/cosine on ``images`` training images of ``style``."""

    name: str
    style: str | None
    steps: int
    batch: int
    lr: float
    images: int  # per canvas
    seed: int
    ema: float = 0.0
    canvases: tuple[CanvasSpec, ...] = SQUARE


def arpg_phases(r: Recipe) -> list[Phase]:
    """The recipe's image-model phases in order (ARPG's, or the raster model's: named ``<r.prefix>[_focus|_polish]``);
    each starts from the weights the one before ended with."""
    c, p = r.canvases, r.prefix
    phases = [
        Phase(p, r.style, r.arpg_steps, r.arpg_batch, r.arpg_lr, r.token_images, r.seed, canvases=c),
        Phase(
            f"{p}_focus", r.focus_style, r.focus_steps, r.arpg_batch, r.focus_lr, r.token_images, r.seed + 1, canvases=c
        ),
        Phase(
            f"{p}_polish",
            r.focus_style,
            r.polish_steps,
            r.polish_batch,
            r.polish_lr,
            r.polish_images,
            r.seed + 2,
            r.polish_ema,
            canvases=c,
        ),
    ]
    return [p for p in phases if p.steps]
