"""``SamplingOptions``: every sampling knob in one validated, immutable value.

The web app, the CLI, ``sample-many``, the benchmarks and the tasks all build one of these
and pass it on; nothing else defaults a sampling option. A model's own defaults (steps,
schedule, guidance and its schedule) live in the ``"sampling"`` section of its JSON config
beside the weights, and for the released models in ``sampling_presets.json`` (package data);
:func:`model_defaults` reads them, so shipped and released models need no code for their
defaults. :func:`with_overrides` is the one rule for "options plus keyword overrides".
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ARPGConfig, arpg_preset_name
from .orders import SAMPLER_ORDERS
from .schedules import CFG_SCHEDULES, TOKEN_SCHEDULES
from .sidecar import read_sidecar, sidecar_path
from .validation import check_choice, check_int, check_number, show

__all__ = [
    "SAMPLER_ORDERS",
    "SCHEDULES",
    "SamplingOptions",
    "check_schedule",
    "with_overrides",
    "model_defaults",
    "sidecar_section",
    "PRESET_DEFAULTS",
    "DECODINGS",
    "DEFAULT_DECODING",
    "check_decodings",
    "model_decodings",
    "RESIZE_STRATEGIES",
    "ResizeDefaults",
    "DEFAULT_RESIZE",
    "check_resize",
    "model_resize",
]

SCHEDULES = TOKEN_SCHEDULES  # or "k=<n>": n tokens every step
#: How a canvas task decodes a canvas bigger than the grids a model was trained on (arpg.windows):
#: in windows of a trained size, or the whole canvas in one call.
DECODINGS = ("windowed", "whole")
#: The decoding of each canvas task when neither the caller nor the model's JSON (its ``"decoding"``
#: section, :func:`model_decodings`) names one: the measured winner on the shipped digits model
#: (scripts/bench_windows.py, docs/benchmarks/windows.json; the judge's accuracy, windowed against whole,
#: is in the README's "Canvases" section).
#: It only matters on a canvas bigger than every grid the model was trained on: on one that fits,
#: "windowed" is the same single decode as "whole".
DEFAULT_DECODING = {"outpaint": "windowed", "panorama": "windowed", "resize": "windowed"}
#: How a resolution change places the image's tokens on the bigger grid (:func:`arpg.tasks.resize`).
RESIZE_STRATEGIES = ("lattice", "reencode")
#: Sampling defaults of the released models by preset name (package data).
PRESET_DEFAULTS = Path(__file__).with_name("sampling_presets.json")


#: How the tokens fed in one step attend to each other (:attr:`SamplingOptions.step_attention`).
STEP_ATTENTION = ("joint", "causal")


def check_schedule(schedule: Any) -> str:
    """A tokens-per-step schedule name, or ``"k=<n>"`` with n >= 1."""
    if isinstance(schedule, str) and schedule.startswith("k="):
        check_int("schedule's k", schedule[2:], 1, None)
        return schedule
    return check_choice("schedule", schedule, SCHEDULES)


@dataclass(frozen=True)
class SamplingOptions:
    """How to decode: validated on construction (``ValueError`` naming the field).

    steps: forward passes (checked against the number of free cells by ``generate``;
    ignored for ``schedule="k=<n>"``). order: a name from :data:`SAMPLER_ORDERS` or a
    permutation of the grid's cells (checked by ``generate``, which knows the grid).
    step_attention: how the tokens fed in one step see each other when they enter the cache:
    ``"joint"`` (each sees the whole step, the released behaviour) or ``"causal"`` (each sees only
    those before it in the step's order), one of :data:`STEP_ATTENTION`.
    """

    steps: int = 32
    schedule: str = "arccos"
    cfg_scale: float = 4.0
    cfg_schedule: str = "linear"
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    order: Any = "random"
    step_attention: str = "joint"

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "steps", check_int("steps", self.steps, 1, 1 << 20))
        put(self, "schedule", check_schedule(self.schedule))
        put(self, "cfg_scale", check_number("cfg_scale", self.cfg_scale, 0.0, 100.0))
        put(self, "cfg_schedule", check_choice("cfg_schedule", self.cfg_schedule, CFG_SCHEDULES))
        put(self, "temperature", check_number("temperature", self.temperature, 0.0, 100.0, lo_open=True))
        put(self, "top_k", check_int("top_k", self.top_k, 0, 10**9))
        put(self, "top_p", check_number("top_p", self.top_p, 0.0, 1.0, lo_open=True))
        put(self, "step_attention", check_choice("step_attention", self.step_attention, STEP_ATTENTION))
        if self.order is None:
            put(self, "order", "random")
        elif isinstance(self.order, str):
            check_choice("order", self.order, SAMPLER_ORDERS)

    def replace(self, **changes: Any) -> SamplingOptions:
        """A copy with ``changes`` applied (and validated); ``None`` values keep the current field.

        Unknown names are a ``TypeError`` (a programming error, not a user's value)."""
        unknown = sorted(set(changes) - _FIELDS)
        if unknown:
            raise TypeError(f"unknown sampling option(s): {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_kwargs(self) -> dict[str, Any]:
        """The fields as keyword arguments of :func:`arpg.sampling.generate`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> SamplingOptions:
        """A model's defaults from the ``"sampling"`` section of its JSON config (unknown keys refused)."""
        section = dict(section or {})
        unknown = sorted(set(section) - _FIELDS)
        if unknown:
            raise ValueError(
                f"unknown sampling option(s) in the model config: {show(unknown)}; known: {', '.join(sorted(_FIELDS))}"
            )
        return cls(**section)


_FIELDS = frozenset(f.name for f in dataclasses.fields(SamplingOptions))


def with_overrides(
    options: SamplingOptions | None, overrides: Mapping[str, Any], default: SamplingOptions | None = None
) -> SamplingOptions:
    """``options`` (``None``: ``default``, itself ``None``: ``SamplingOptions()``) with ``overrides`` applied.

    overrides: SamplingOptions field names (``steps=8, order="raster"``); a ``None`` value keeps
    the field, so a caller can pass "not set" through. This is the one rule every entry point
    (:func:`arpg.sampling.generate`, :meth:`arpg.pipeline.Pipeline.generate`, :mod:`arpg.tasks`) uses.
    """
    base = options if options is not None else default if default is not None else SamplingOptions()
    if not isinstance(base, SamplingOptions):
        raise TypeError(f"options must be a SamplingOptions, got {type(base).__name__}")
    return base.replace(**overrides) if overrides else base


@functools.cache
def _preset_sections() -> dict[str, dict[str, Any]]:
    return json.loads(PRESET_DEFAULTS.read_text())["presets"]


def sidecar_section(weights: str | Path, key: str = "sampling") -> dict[str, Any]:
    """The ``key`` section of ``<stem>.json`` beside ``weights`` (:func:`arpg.sidecar.read_sidecar`);
    ``{}`` when there is none."""
    section = read_sidecar(weights).get(key)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ValueError(f'{sidecar_path(weights)}: "{key}" must be an object of {key} options, got {show(section)}')
    return section


def check_decodings(section: Mapping[str, Any], name: str) -> dict[str, str]:
    """``section`` ({task: decoding}, e.g. ``{"resize": "whole"}``) if every task is a canvas task of
    :data:`DEFAULT_DECODING` and every decoding one of :data:`DECODINGS`; ``name`` starts the message."""
    for task, decoding in section.items():
        check_choice(f"{name} task", task, DEFAULT_DECODING)
        check_choice(f"{name} of {task}", decoding, DECODINGS)
    return dict(section)


def model_decodings(weights: str | Path | None = None) -> dict[str, str]:
    """A model's decoding per canvas task: :data:`DEFAULT_DECODING` with the ``"decoding"`` section of
    the JSON beside ``weights`` on top (what measured best on that model, e.g. ``{"resize": "whole"}``)."""
    side = sidecar_section(weights, "decoding") if weights is not None else {}
    if side:
        check_decodings(side, f'{Path(weights).with_suffix(".json")}: "decoding"')
    return {**DEFAULT_DECODING, **side}


def model_defaults(cfg: ARPGConfig | None = None, weights: str | Path | None = None) -> SamplingOptions:
    """A model's sampling defaults, later sources winning field by field:

    the fields' defaults of :class:`SamplingOptions`; the released preset with ``cfg``'s
    architecture (:data:`PRESET_DEFAULTS`); the ``"sampling"`` section of the JSON beside
    ``weights`` (the shipped model's ``assets/models/arpg.json``, or a user's own file).
    """
    preset = _preset_sections().get(arpg_preset_name(cfg), {}) if cfg is not None else {}
    side = sidecar_section(weights) if weights is not None else {}
    try:
        return SamplingOptions.from_config({**preset, **side})
    except ValueError as exc:
        where = Path(weights).with_suffix(".json") if side else PRESET_DEFAULTS
        raise ValueError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class ResizeDefaults:
    """A model's resolution change when the caller names none: strategy, scale and, for "reencode", the
    fraction of cells decoded again. Validated on construction (``ValueError`` naming the field)."""

    strategy: str = "reencode"
    scale: float = 2.0
    regenerate: float = 0.125

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "strategy", check_choice("strategy", self.strategy, RESIZE_STRATEGIES))
        put(self, "scale", check_number("scale", self.scale, 1.0, 4.0))
        put(self, "regenerate", check_number("regenerate", self.regenerate, 0.0, 1.0, lo_open=True))

    def replace(self, **changes: Any) -> ResizeDefaults:
        """A copy with ``changes`` (strategy, scale, regenerate) applied and checked; None keeps a field."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: The resolution change of a model whose JSON has no ``"resize"`` section: the setting that lost least to
#: bicubic against the true render, in PSNR, on both shipped models (scripts/bench_resize.py,
#: docs/benchmarks/resize-*.json: "reencode" beats "lattice" at every scale, and fewer cells decoded again
#: keep closer to the truth).
DEFAULT_RESIZE = ResizeDefaults()


def check_resize(section: Mapping[str, Any], name: str) -> ResizeDefaults:
    """:data:`DEFAULT_RESIZE` with ``section`` (some of strategy, scale, regenerate) on top, checked;
    ``ValueError`` starting with ``name`` for an unknown key or a value out of range."""
    unknown = sorted(set(section) - {f.name for f in dataclasses.fields(ResizeDefaults)})
    try:
        if unknown:
            raise ValueError(f"unknown resize option(s): {show(unknown)}; known: regenerate, scale, strategy")
        return DEFAULT_RESIZE.replace(**section)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def model_resize(weights: str | Path | None = None) -> ResizeDefaults:
    """A model's resolution change: :data:`DEFAULT_RESIZE` with the ``"resize"`` section of the JSON beside
    ``weights`` on top (what measured best on that model, e.g. ``{"scale": 1.5}``)."""
    side = sidecar_section(weights, "resize") if weights is not None else {}
    return check_resize(side, f'{Path(str(weights)).with_suffix(".json")}: "resize"') if side else DEFAULT_RESIZE
