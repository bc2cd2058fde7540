"""The cost of a table of requests (:mod:`arpg.cost`) is what it was before the tasks told their plans: the
estimates below were computed at commit d55d7aa, when this module worked out each task's grids, windows and
rounds itself; now it prices the task's own plan (:func:`arpg.tasks.plan`, :mod:`arpg.tasks.planning`).
(cells, forward passes, batch, queries, guidance, decoded, encoded, units) of every :class:`~arpg.cost.Cost`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from arpg import cost
from arpg.options import ResizeDefaults, SamplingOptions

OPTS = {
    "app": SamplingOptions(steps=32, cfg_scale=3.0),
    "few": SamplingOptions(steps=3, cfg_scale=2.0),
    "conf": SamplingOptions(steps=8, order="confidence", cfg_scale=1.0),
    "heavy": SamplingOptions(steps=256, order="confidence", cfg_scale=3.0),
    "k3": SamplingOptions(steps=4, schedule="k=3"),
}
D16, SC = [(16, 16)], [(16, 16), (16, 24), (16, 32), (24, 24)]  # the trained sizes of the digits / scenes models
D16_24, T4, T4_8 = [(16, 16), (16, 24)], [(4, 4)], [(4, 4), (4, 8)]  # two of those; the tiny model's, and 4x8 too
TASK_COSTS = [  # ((task, options, grid, batch, window, decoding, params), its estimate at d55d7aa)
    (("generate", "app", (16, 16), 4, None, None, {}), (256, 32, 4, 256, True, 256, 0, 170688)),
    (("generate", "conf", (16, 16), 1, None, None, {}), (256, 8, 1, 1412, False, 256, 0, 42736)),
    (("inpaint", "app", (16, 16), 1, None, None, {}), (256, 32, 1, 256, True, 256, 256, 86720)),
    (("inpaint", "conf", (16, 24), 2, D16, None, {}), (384, 8, 2, 2122, False, 384, 384, 106480)),
    (("outpaint", "app", (16, 16), 1, None, None, {"right": 8}), (384, 32, 1, 128, True, 384, 256, 92864)),
    (("outpaint", "app", (16, 16), 1, D16, "windowed", {"right": 8}), (256, 64, 1, 512, True, 384, 256, 169344)),
    (("outpaint", "app", (16, 16), 1, D16, "whole", {"right": 8}), (384, 32, 1, 128, True, 384, 256, 92864)),
    (
        ("outpaint", "conf", (16, 20), 1, D16_24, "windowed", {"left": 2, "right": 3, "top": 1, "bottom": 4}),
        (384, 32, 1, 8488, False, 525, 320, 215056),
    ),
    (
        ("outpaint", "k3", (16, 16), 1, D16, "windowed", {"left": 5, "top": 7}),
        (256, 344, 1, 1024, True, 483, 256, 820672),
    ),
    (("outpaint", "few", (16, 16), 1, D16, "windowed", {}), (256, 1, 1, 1, True, 256, 256, 8438)),
    (("outpaint", "few", (4, 6), 1, None, "whole", {"left": 1, "top": 2}), (42, 3, 1, 18, True, 42, 24, 6942)),
    (("outpaint", "few", (4, 6), 1, T4, "windowed", {"left": 1, "top": 2}), (16, 18, 1, 96, True, 42, 24, 36012)),
    (("panorama", "app", (16, 16), 1, None, None, {"times": 8}), (256, 448, 1, 1792, True, 5632, 256, 1162880)),
    (("panorama", "app", (16, 16), 1, None, None, {"times": 1}), (256, 1, 1, 1, True, 256, 256, 8438)),
    (
        ("panorama", "few", (16, 16), 1, D16, "windowed", {"times": 3, "side": "top"}),
        (256, 12, 1, 512, True, 1792, 256, 74248),
    ),
    (
        ("panorama", "few", (16, 16), 1, D16, "whole", {"times": 3, "side": "left"}),
        (256, 12, 1, 512, True, 1024, 512, 64008),
    ),
    (
        ("panorama", "conf", (16, 40), 1, None, "windowed", {"times": 2, "side": "bottom"}),
        (640, 16, 1, 3534, False, 2560, 640, 140864),
    ),
    (
        ("panorama", "conf", (16, 40), 1, D16, "windowed", {"times": 2, "side": "bottom"}),
        (256, 64, 1, 11296, False, 2560, 640, 355200),
    ),
    (
        ("panorama", "conf", (16, 40), 1, D16, "whole", {"times": 2, "side": "top"}),
        (640, 16, 1, 3534, False, 1280, 640, 120384),
    ),
    (("panorama", "app", (16, 16), 1, SC, "windowed", {"times": 4}), (512, 192, 1, 768, True, 3968, 256, 622720)),
    (
        ("panorama", "app", (16, 24), 1, SC, "whole", {"times": 4, "side": "left"}),
        (512, 288, 1, 1152, True, 4608, 3456, 937152),
    ),
    (("panorama", "few", (4, 4), 1, T4_8, "windowed", {"times": 3}), (32, 12, 1, 32, True, 168, 16, 25608)),
    (
        ("panorama", "few", (4, 4), 1, T4_8, "whole", {"times": 3, "side": "left"}),
        (32, 12, 1, 32, True, 120, 88, 25416),
    ),
    (
        ("panorama", "k3", (4, 6), 1, T4, "windowed", {"times": 5, "side": "top"}),
        (16, 96, 1, 256, True, 312, 24, 184448),
    ),
    (("resize", "app", (16, 16), 1, None, None, {"scale": 2.0}), (1024, 32, 1, 1024, True, 1024, 1024, 178880)),
    (("resize", "app", (16, 16), 1, None, None, {}), (1024, 32, 1, 1024, True, 1024, 1024, 178880)),
    (
        ("resize", "few", (16, 16), 1, D16, "windowed", {"scale": 1.5, "strategy": "lattice"}),
        (256, 12, 1, 1024, True, 576, 256, 71176),
    ),
    (
        ("resize", "few", (16, 16), 1, D16, "windowed", {"scale": 2.0, "strategy": "reencode", "regenerate": 0.125}),
        (256, 27, 1, 2304, True, 1024, 1024, 159378),
    ),
    (
        ("resize", "few", (16, 16), 1, D16, "whole", {"scale": 2.0, "strategy": "reencode", "regenerate": 0.125}),
        (1024, 3, 1, 128, True, 1024, 1024, 40066),
    ),
    (
        ("resize", "few", (16, 16), 1, None, "windowed", {"scale": 2.0, "strategy": "reencode", "regenerate": 0.25}),
        (1024, 3, 1, 256, True, 1024, 1024, 44162),
    ),
    (
        ("resize", "few", (16, 16), 1, D16, "windowed", {"scale": 1.0, "strategy": "lattice"}),
        (256, 1, 1, 1, True, 256, 256, 8438),
    ),
    (("resize", "heavy", (16, 16), 1, None, None, {"scale": 4.0}), (4096, 256, 1, 669418, True, 4096, 4096, 24064832)),
    (
        ("resize", "app", (16, 128), 1, None, "whole", {"scale": 1.0, "strategy": "reencode", "regenerate": 0.5}),
        (2048, 32, 1, 1024, True, 2048, 2048, 268992),
    ),
    (
        ("resize", "conf", (16, 24), 1, SC, "windowed", {"scale": 2.0, "strategy": "reencode"}),
        (576, 48, 1, 19116, False, 1536, 1536, 454368),
    ),
    (
        ("resize", "conf", (16, 24), 1, SC, "windowed", {"scale": 1.5, "regenerate": 0.3}),
        (576, 16, 1, 6372, False, 864, 864, 159904),
    ),
    (
        ("resize", "k3", (16, 16), 1, SC, "windowed", {"scale": 2.5, "strategy": "lattice"}),
        (576, 1728, 1, 5184, True, 1600, 256, 5208192),
    ),
]
REQUESTS = [  # ((pipe, task, options, image (h, w) or None, batch, params), check_request at d55d7aa)
    (("digits", "generate", "app", None, 3, {}), (256, 32, 3, 256, True, 256, 0, 142016)),
    (("digits", "inpaint", "app", (64, 64), 1, {}), (256, 32, 1, 256, True, 256, 256, 86720)),
    (("digits", "outpaint", "app", (64, 96), 1, {"right": 8}), (256, 96, 1, 768, True, 512, 384, 252992)),
    (
        ("digits", "outpaint", "app", (100, 64), 1, {"left": 4, "top": 4, "decoding": "whole"}),
        (280, 32, 1, 120, True, 280, 160, 83520),
    ),
    (
        ("digits", "panorama", "app", (64, 64), 1, {"times": 4, "side": "right"}),
        (256, 192, 1, 768, True, 2560, 256, 501888),
    ),
    (
        ("digits", "panorama", "conf", (64, 128), 1, {"times": 3, "side": "top"}),
        (256, 96, 1, 16944, False, 3584, 512, 525120),
    ),
    (("digits", "resize", "app", (64, 64), 1, {}), (256, 128, 1, 1024, True, 576, 576, 336128)),
    (
        ("digits", "resize", "app", (64, 80), 1, {"scale": 2.0, "strategy": "lattice"}),
        (256, 384, 1, 3072, True, 1280, 320, 989952),
    ),
    (("scenes", "outpaint", "app", (64, 64), 1, {"right": 8}), (384, 32, 1, 128, True, 384, 256, 92864)),
    (
        ("scenes", "panorama", "app", (64, 64), 1, {"times": 4, "side": "left"}),
        (512, 192, 1, 768, True, 3968, 256, 622720),
    ),
    (
        ("scenes", "panorama", "few", (64, 64), 1, {"times": 3, "side": "bottom", "decoding": "whole"}),
        (384, 12, 1, 512, True, 1536, 1024, 79368),
    ),
    (("scenes", "resize", "app", (64, 64), 1, {}), (1024, 32, 1, 128, True, 1024, 1024, 150208)),
    (("scenes", "resize", "app", (64, 64), 1, {"decoding": "windowed"}), (576, 128, 1, 2304, True, 1024, 1024, 469760)),
    (("tiny", "outpaint", "few", (16, 24), 1, {"right": 2}), (16, 9, 1, 48, True, 32, 24, 18278)),
    (("tiny", "panorama", "few", (16, 16), 1, {"times": 3}), (16, 12, 1, 32, True, 112, 16, 24328)),
    (("tiny", "resize", "few", (16, 16), 2, {"scale": 2.0}), (16, 27, 2, 144, True, 64, 64, 61266)),
]
WINDOWED = {"outpaint": "windowed", "panorama": "windowed", "resize": "windowed"}
PIPES = {  # what check_request reads of a pipeline: the shipped models' and the random tiny one's
    "digits": ((16, 16), ((16, 16),), WINDOWED, ResizeDefaults("reencode", 1.5, 0.125)),
    "scenes": ((16, 16), tuple(SC), {**WINDOWED, "resize": "whole"}, ResizeDefaults("reencode", 2.0, 0.125)),
    "tiny": ((4, 4), ((4, 4),), WINDOWED, ResizeDefaults()),
}


def fields(c: cost.Cost) -> tuple:
    return c.cells, c.forward_passes, c.batch, c.queries, c.guidance, c.decoded, c.encoded, c.units


def fake_pipe(name: str) -> Any:
    grid, sizes, decodings, resize = PIPES[name]
    return SimpleNamespace(
        grid=grid,
        factor=4,
        device="cpu",
        decodings=decodings,
        resize_defaults=resize,
        defaults=OPTS["app"],
        model=SimpleNamespace(cfg=SimpleNamespace(trained_sizes=sizes)),
    )


@pytest.mark.parametrize("request_, want", TASK_COSTS)
def test_task_cost_is_unchanged(request_: tuple, want: tuple) -> None:
    task, options, grid, batch, window, decoding, params = request_
    assert fields(cost.task_cost(task, OPTS[options], grid, batch, window, decoding, **params)) == want
    if want[-1] < cost.CPU_MAX_COST:  # the check prices it the same
        got = cost.check_task_cost(task, OPTS[options], grid, batch, cost.CPU_MAX_COST, window, decoding, **params)
        assert fields(got) == want


@pytest.mark.parametrize("request_, want", REQUESTS)
def test_check_request_is_unchanged(request_: tuple, want: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cost.COST_ENV, raising=False)
    name, task, options, shape, batch, params = request_
    image = None if shape is None else np.zeros((*shape, 3), np.uint8)
    assert fields(cost.check_request(fake_pipe(name), task, OPTS[options], image, batch, **params)) == want


def test_a_request_with_nothing_to_decode_is_priced_as_nothing_to_decode() -> None:
    """The one estimate that changed: an outpaint of no cell (or a lattice resize at scale 1) of an image wider
    than its window was priced at d55d7aa as a windowed decode of the whole image, 256 cells x 12 forward
    passes (75,272 units), though the task decodes nothing; now, as a panorama of ``times=1`` always was, as one
    pass over its grid for one cell, with its VQ work."""
    for task, params in (("outpaint", {}), ("resize", {"scale": 1.0, "strategy": "lattice"})):
        got = cost.task_cost(task, OPTS["few"], (16, 40), window=D16, decoding="windowed", **params)
        assert fields(got) == (640, 1, 1, 1, True, 640, 640, 18422)
