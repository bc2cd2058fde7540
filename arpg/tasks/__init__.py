"""Zero-shot editing with ARPG: inpainting, class-conditional editing, outpainting, panoramas and
resolution change.

ARPG has no positional parameters and its queries carry their target cell, so any set
of known tokens, anywhere on any grid, can be context: the known cells are prefilled
and only the others are decoded (see :func:`arpg.sampling.generate`).

The input policy (any image source, the decoded-size budget, reduced decoding, RGB conversion,
the native height, masks) is :mod:`arpg.images`; every task takes its inputs through it. By job:

* :mod:`arpg.tasks.context`: what every task shares: the result (:class:`TaskResult`, with the
  :class:`~arpg.windows.Used` record of its decode), the step policy (:func:`fit_steps`), the decoding
  (:func:`decoding_for`), the canvas limit (:func:`check_cells`) and the known cells and tokens of a grid;
* :mod:`arpg.tasks.masked`: the tasks on the image's own grid, :func:`inpaint` and :func:`edit`;
* :mod:`arpg.tasks.canvas`: the tasks on a bigger canvas, :func:`outpaint`, :func:`panorama`, :func:`resize`,
  and their geometry;
* :mod:`arpg.tasks.planning`: what a task will decode, told without running it (:func:`plan`, :class:`TaskPlan`).
"""

from __future__ import annotations

from ..options import RESIZE_STRATEGIES
from .canvas import SIDES, outpaint, panorama, resize, resize_settings
from .context import (
    DEFAULT_DECODING,
    MAX_CELLS,
    TaskResult,
    Used,
    cells_from_mask,
    check_cells,
    decoding_for,
    fit_steps,
    lattice_context,
    place,
)
from .masked import edit, inpaint
from .planning import Decode, TaskPlan, plan

__all__ = [
    "DEFAULT_DECODING",
    "MAX_CELLS",
    "RESIZE_STRATEGIES",
    "SIDES",
    "Decode",
    "TaskPlan",
    "TaskResult",
    "Used",
    "cells_from_mask",
    "check_cells",
    "decoding_for",
    "edit",
    "fit_steps",
    "inpaint",
    "lattice_context",
    "outpaint",
    "panorama",
    "place",
    "plan",
    "resize",
    "resize_settings",
]
