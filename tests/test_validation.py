"""The validation layer, property-based: :mod:`arpg.tasks`, :mod:`arpg.sampling` and
:meth:`arpg.pipeline.Pipeline.generate` on a random tiny model (4x4 tokens, 4 px per token,
16 px images, 10 classes), and the command line's exit code 2.

For any valid input the output has the promised shape and the context tokens come back
unchanged; for any invalid input the error is a ``ValueError`` whose message names the
argument, never another exception.  Inputs that still raise something else are strict
xfails naming the fix (see docs/reliability.md).

``ARPG_HYPOTHESIS_EXAMPLES`` sets the number of examples per property (default 30);
``ARPG_HYPOTHESIS_RANDOM=1`` draws new examples on every run instead of a fixed set.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from arpg import sampling, tasks
from arpg.images import MAX_ASPECT, MAX_PIXELS, mask_to_array, prepare_image, to_rgb
from arpg.masks import SEAM_BAND, widen
from arpg.options import SAMPLER_ORDERS
from arpg.pipeline import Pipeline
from arpg.sampling import Context
from arpg.schedules import CFG_SCHEDULES, TOKEN_SCHEDULES
from arpg.validation import MAX_SEED

ROOT = Path(__file__).resolve().parents[1]
F, ROWS, V, C = 4, 4, 32, 10  # tiny model: px per token, grid rows, vocabulary, classes
H = F * ROWS  # native image height (16 px)

PROPS = settings(
    max_examples=int(os.environ.get("ARPG_HYPOTHESIS_EXAMPLES", 30)),
    deadline=None,
    database=None,
    derandomize=not os.environ.get("ARPG_HYPOTHESIS_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NAN, INF = float("nan"), float("inf")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and leave the other cores alone)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    p = Pipeline.random("ARPG-tiny", "VQ-tiny")
    assert (p.factor, p.grid, p.model.cfg.vocab_size, p.num_classes) == (F, (ROWS, ROWS), V, C)
    return p


# -- strategies ----------------------------------------------------------------------------------
IMAGE_KINDS = (
    "RGB",
    "RGBA",
    "LA",
    "L",
    "1",
    "P",
    "P+transparency",
    "I;16",
    "I",
    "F",
    "CMYK",
    "YCbCr",
    "HSV",
    "array-uint8",
    "array-rgba",
    "array-float",
    "array-bool",
    "array-gray",
)


def make_image(kind: str, w: int, h: int, seed: int) -> Any:
    """An input image of ``kind`` (a PIL mode or an array flavour), ``w`` x ``h`` pixels."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "array-uint8":
        return rgb
    if kind == "array-rgba":
        return rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    if kind == "array-float":
        return rng.random((h, w, 3)) * 300 - 20  # clipped to 0..255
    if kind == "array-bool":
        return rng.random((h, w)) > 0.5
    if kind == "array-gray":
        return rgb[..., 0]
    if kind == "RGBA":
        return Image.fromarray(rng.integers(0, 256, (h, w, 4), dtype=np.uint8))
    if kind == "LA":
        return Image.fromarray(rng.integers(0, 256, (h, w, 2), dtype=np.uint8))
    if kind == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))
    if kind == "I":
        return Image.fromarray(rng.integers(-5, 70000, (h, w), dtype=np.int32))
    if kind == "F":
        return Image.fromarray((rng.random((h, w)) * 255).astype(np.float32))
    img = Image.fromarray(rgb)
    if kind.startswith("P"):
        pal = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        if kind == "P+transparency":
            pal.info["transparency"] = 0
        return pal
    return img.convert(kind)


def size_of(image: Any) -> tuple[int, int]:
    """(width, height) of a PIL image or an array."""
    if isinstance(image, Image.Image):
        return image.size
    return image.shape[1], image.shape[0]


@st.composite
def images(draw: st.DrawFn, max_side: int = 64, max_aspect: float | None = None) -> Any:
    """Any kind of image from 1x1 to ``max_side`` px (aspect ratio at most ``max_aspect``)."""
    kind = draw(st.sampled_from(IMAGE_KINDS))
    h = draw(st.integers(1, max_side))
    if max_aspect is None:
        w = draw(st.integers(1, max_side))
    else:
        w = draw(st.integers(max(1, math.ceil(h / max_aspect)), max(1, int(h * max_aspect))))
    return make_image(kind, w, h, draw(st.integers(0, 2**16)))


@st.composite
def masks(draw: st.DrawFn) -> Any:
    """A mask of any size and kind: bool/uint8/float arrays, PIL L/1 images or RGBA brush layers."""
    mh, mw = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]))
    m = rng.random((mh, mw)) < density
    kind = draw(st.sampled_from(["bool", "uint8", "float", "L", "1", "brush"]))
    if kind == "bool":
        return m
    if kind == "uint8":
        return m.astype(np.uint8) * 255
    if kind == "float":
        return m.astype(np.float64) * rng.random((mh, mw)) + m * 0.01  # > 0 where painted
    if kind == "brush":  # transparent except the painted strokes, like gr.ImageEditor's layers
        rgba = np.zeros((mh, mw, 4), np.uint8)
        rgba[m] = (255, 46, 136, 255)
        return Image.fromarray(rgba)
    img = Image.fromarray(m.astype(np.uint8) * 255)
    return img if kind == "L" else img.convert("1")


labels_ok = st.integers(0, C - 1)
seeds_ok = st.integers(0, MAX_SEED)
schedules_ok = st.one_of(st.sampled_from(TOKEN_SCHEDULES), st.integers(1, 20).map(lambda k: f"k={k}"))


def sampling_options(max_steps: int = 16) -> st.SearchStrategy[dict]:
    """Valid sampling options (``steps`` at most ``max_steps``)."""
    return st.fixed_dictionaries(
        {
            "steps": st.integers(1, max_steps),
            "schedule": schedules_ok,
            "cfg_scale": st.floats(0.0, 10.0),
            "cfg_schedule": st.sampled_from(CFG_SCHEDULES),
            "temperature": st.floats(0.05, 3.0),
            "top_k": st.integers(0, V + 8),
            "top_p": st.floats(0.05, 1.0),
            "order": st.sampled_from(SAMPLER_ORDERS),
        }
    )


def not_a_number_text() -> st.SearchStrategy[str]:
    def parses(s: str) -> bool:
        try:
            float(s)
        except ValueError:
            return False
        return True

    return st.text(max_size=8).filter(lambda s: not parses(s))


WRONG_TYPES = st.one_of(
    st.none(),
    not_a_number_text(),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.just(object()),
)
NONFINITE = st.sampled_from([NAN, INF, -INF])


def bad_float(lo: float, hi: float, lo_open: bool = False) -> st.SearchStrategy[Any]:
    """Numbers outside [lo, hi] (or (lo, hi]), non-finite numbers, bools and non-numbers."""
    below = st.floats(max_value=lo, exclude_max=not lo_open, allow_nan=False, allow_infinity=False)
    above = st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False)
    return st.one_of(below, above, NONFINITE, st.booleans(), WRONG_TYPES)


def bad_int(lo: int, hi: int) -> st.SearchStrategy[Any]:
    """Integers outside [lo, hi], fractional and non-finite floats, bools and non-numbers."""
    fractional = st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not v.is_integer())
    return st.one_of(
        st.integers(max_value=lo - 1), st.integers(min_value=hi + 1), fractional, NONFINITE, st.booleans(), WRONG_TYPES
    )


def not_none(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``strategy`` without ``None``: an option given as None keeps the model's default (a fresh seed for ``seed``)."""
    return strategy.filter(lambda v: v is not None)


#: Invalid values of each sampling option (for a 4x4 grid: 16 cells), and the word the message must contain.
BAD_OPTIONS: dict[str, tuple[st.SearchStrategy[Any], str]] = {
    "steps": (not_none(bad_int(1, 16)), "steps"),
    "temperature": (not_none(bad_float(0.0, 100.0, lo_open=True)), "temperature"),
    "top_k": (not_none(bad_int(0, 10**9)), "top_k"),
    "top_p": (not_none(bad_float(0.0, 1.0, lo_open=True)), "top_p"),
    "cfg_scale": (not_none(bad_float(0.0, 100.0)), "cfg_scale"),
    "seed": (not_none(bad_int(0, MAX_SEED)), "seed"),
    "schedule": (
        st.one_of(
            st.text(max_size=8).filter(lambda s: s not in TOKEN_SCHEDULES and not s.startswith("k=")),
            st.sampled_from(["k=0", "k=-3", "k=x", "k=1.5", "k="]),
            st.integers(),
        ),
        "schedule",
    ),
    "cfg_schedule": (
        st.one_of(st.text(max_size=8).filter(lambda s: s not in CFG_SCHEDULES), st.integers()),
        "schedule",
    ),
    "order": (
        st.one_of(
            st.text(max_size=8).filter(lambda s: s not in SAMPLER_ORDERS),
            st.lists(st.integers(-2, 20), max_size=17).filter(lambda o: sorted(o) != list(range(16))),
        ),
        "order",
    ),
}


# -- valid input: promised shapes, context preserved ------------------------------------------------
@PROPS
@given(image=images(max_side=96))
def test_any_mode_and_size_becomes_a_native_height_rgb_array(image: Any) -> None:
    w, h = size_of(image)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (w, h)
    arr = prepare_image(image, F, ROWS)
    cols = min(max(int(round(w * H / h / F)), 1), ROWS * MAX_ASPECT)
    assert arr.dtype == np.uint8 and arr.shape == (H, cols * F, 3)


@PROPS
@given(mask=masks(), w=st.integers(1, 48), h=st.integers(1, 48))
def test_masks_of_any_size_and_kind_fit_the_image(mask: Any, w: int, h: int) -> None:
    out = mask_to_array(mask, (w, h))
    assert out.dtype == bool and out.shape == (h, w)
    painted = (
        np.asarray(
            mask.getchannel("A")
            if isinstance(mask, Image.Image) and mask.mode == "RGBA"
            else mask.convert("L")
            if isinstance(mask, Image.Image)
            else mask
        )
        > 0
    )
    if not painted.any():
        assert not out.any()  # an empty mask stays empty at any size
    if painted.all():
        assert out.all()  # a full mask stays full


@PROPS
@given(
    image=images(max_side=48, max_aspect=4),
    mask=masks(),
    label=labels_ok,
    dilate=st.integers(0, 2),
    blend=st.booleans(),
    seed=seeds_ok,
    opts=sampling_options(),
)
@pytest.mark.slow  # over 0.5 s: the fast tier stays under a minute
def test_inpaint_keeps_context_tokens_and_pixels(
    pipe: Pipeline, image: Any, mask: Any, label: int, dilate: int, blend: bool, seed: int, opts: dict
) -> None:
    img = prepare_image(image, F, ROWS)
    pix = mask_to_array(mask, (img.shape[1], img.shape[0]))
    if not pix.any():
        with pytest.raises(ValueError, match="mask is empty"):
            tasks.inpaint(pipe, image, mask, label, dilate=dilate, blend=blend, seed=seed, **opts)
        return
    res = tasks.inpaint(pipe, image, mask, label, dilate=dilate, blend=blend, seed=seed, **opts)
    rows, cols = ROWS, img.shape[1] // F
    assert res.image.shape == res.raw.shape == img.shape and res.image.dtype == np.uint8
    assert res.tokens.shape == res.known.shape == (rows, cols) and res.seed == seed
    assert torch.equal(res.known, ~tasks.cells_from_mask(pix, F, dilate))
    codes = pipe.encode(img[None])[0]
    assert torch.equal(res.tokens[res.known], codes[res.known])  # context preserved, token-exact
    assert ((res.tokens >= 0) & (res.tokens < V)).all()
    if blend:  # pixels of the context cells are the input's, beyond the seam band around the painted ones
        keep = np.kron(res.known.numpy(), np.ones((F, F), bool)) & ~widen(pix, SEAM_BAND)
        assert np.array_equal(res.image[keep], img[keep])
    if not res.known.any():
        assert "plain generation" in res.note


@PROPS
@given(
    image=images(max_side=48, max_aspect=3),
    sides=st.tuples(*[st.integers(0, 3)] * 4),
    label=labels_ok,
    seed=seeds_ok,
    opts=sampling_options(),
)
@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_outpaint_grows_by_whole_cells_and_keeps_the_input(
    pipe: Pipeline, image: Any, sides: tuple, label: int, seed: int, opts: dict
) -> None:
    left, right, top, bottom = sides
    img = prepare_image(image, F, ROWS)
    r, c = ROWS, img.shape[1] // F
    res = tasks.outpaint(pipe, image, label, left=left, right=right, top=top, bottom=bottom, seed=seed, **opts)
    R, Cc = top + r + bottom, left + c + right
    assert res.image.shape == ((R) * F, Cc * F, 3) and res.tokens.shape == res.known.shape == (R, Cc)
    inner = (slice(top, top + r), slice(left, left + c))
    codes = pipe.encode(img[None])[0]
    assert torch.equal(res.tokens[inner], codes) and res.known[inner].all()
    assert int(res.known.sum()) == r * c
    placed = np.zeros(res.image.shape[:2], bool)
    placed[top * F : (top + r) * F, left * F : (left + c) * F] = True
    far = (placed & ~widen(~placed, SEAM_BAND))[placed].reshape(img.shape[:2])  # beyond the seam band
    assert np.array_equal(res.image[placed].reshape(img.shape)[far], img[far])
    if not any(sides):
        assert "nothing to extend" in res.note


@PROPS
@given(
    image=images(max_side=32, max_aspect=2),
    times=st.integers(2, 3),
    side=st.sampled_from(["left", "right", "top", "bottom"]),
    label=labels_ok,
    seed=seeds_ok,
    steps=st.integers(1, 8),
)
@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_panorama_is_times_as_long_and_keeps_the_input(
    pipe: Pipeline, image: Any, times: int, side: str, label: int, seed: int, steps: int
) -> None:
    img = prepare_image(image, F, ROWS)
    h, w = img.shape[:2]
    res = tasks.panorama(pipe, image, label, times=times, side=side, seed=seed, steps=steps)
    want = (h, w * times, 3) if side in ("left", "right") else (h * times, w, 3)
    assert res.image.shape == want and res.image.dtype == np.uint8
    b = SEAM_BAND  # the input beyond the seam band where the first round meets it
    kept = {"right": np.s_[:, : w - b], "left": np.s_[:, b:], "bottom": np.s_[: h - b], "top": np.s_[b:]}[side]
    corner = {"right": res.image[:, :w], "left": res.image[:, -w:], "bottom": res.image[:h], "top": res.image[-h:]}
    assert np.array_equal(corner[side][kept], img[kept])


@PROPS
@given(
    image=images(max_side=32, max_aspect=2),
    scale=st.floats(1.0, 3.0),
    strategy=st.sampled_from(tasks.RESIZE_STRATEGIES),
    regenerate=st.floats(0.01, 1.0),
    label=labels_ok,
    seed=seeds_ok,
    steps=st.integers(1, 16),
)
@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_resize_gives_the_scaled_grid_and_keeps_context(
    pipe: Pipeline, image: Any, scale: float, strategy: str, regenerate: float, label: int, seed: int, steps: int
) -> None:
    img = prepare_image(image, F, ROWS)
    r, c = ROWS, img.shape[1] // F
    R, Cc = round(r * scale), round(c * scale)
    res = tasks.resize(
        pipe, image, label, scale=scale, strategy=strategy, regenerate=regenerate, seed=seed, steps=steps
    )
    assert res.image.shape == (R * F, Cc * F, 3) and res.tokens.shape == res.known.shape == (R, Cc)
    if strategy == "lattice":
        grid, known = tasks.lattice_context(pipe.encode(img[None])[0], R, Cc)
    else:
        big = np.asarray(Image.fromarray(img).resize((Cc * F, R * F), Image.BICUBIC))
        grid, known = pipe.encode(big[None])[0], res.known
        assert int((~known).sum()) == max(1, round(regenerate * R * Cc))
    assert torch.equal(res.known, known)
    assert torch.equal(res.tokens[known], grid[known])  # context preserved, token-exact


@pytest.mark.slow  # over a second: the fast tier stays under a minute
@PROPS
@given(labels=st.lists(st.integers(0, C), min_size=1, max_size=3), seed=seeds_ok, opts=sampling_options())
def test_generate_gives_images_of_the_promised_shape_reproducibly(
    pipe: Pipeline, labels: list[int], seed: int, opts: dict
) -> None:
    out = pipe.generate(labels, seed=seed, **opts)
    B = len(labels)
    assert out.images.shape == (B, H, H, 3) and out.images.dtype == np.uint8
    assert out.tokens.shape == (B, ROWS, ROWS) and ((out.tokens >= 0) & (out.tokens < V)).all()
    assert out.seed == seed and out.labels == labels
    assert sum(out.trace.counts) == ROWS * ROWS and out.trace.forward_passes == len(out.trace.counts)
    if not opts["schedule"].startswith("k="):
        assert len(out.trace.counts) == opts["steps"]
    again = pipe.generate(labels, seed=seed, **opts)
    assert torch.equal(out.tokens, again.tokens)


@st.composite
def contexts(draw: st.DrawFn) -> tuple[int, int, torch.Tensor, torch.Tensor]:
    """A grid of 1..6 x 1..6 cells, tokens, and a known mask with at least one free cell."""
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    n = rows * cols
    known = draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda k: not all(k)))
    tokens = draw(st.lists(st.integers(0, V - 1), min_size=n, max_size=n))
    return rows, cols, torch.tensor(tokens).view(rows, cols), torch.tensor(known).view(rows, cols)


@pytest.mark.slow  # over a second: the fast tier stays under a minute
@PROPS
@given(ctx=contexts(), labels=st.lists(labels_ok, min_size=1, max_size=3), seed=seeds_ok, data=st.data())
def test_context_tokens_come_back_unchanged_on_any_grid(
    pipe: Pipeline, ctx: tuple, labels: list[int], seed: int, data: st.DataObject
) -> None:
    rows, cols, tokens, known = ctx
    free = int((~known).sum())
    opts = data.draw(sampling_options(max_steps=free))
    out = pipe.generate(labels, seed=seed, grid=(rows, cols), context=Context(tokens, known), **opts)
    assert out.images.shape == (len(labels), rows * F, cols * F, 3)
    assert out.tokens.shape == (len(labels), rows, cols)
    for b in range(len(labels)):
        assert torch.equal(out.tokens[b][known], tokens[known])
    assert (out.trace.step_of[known] == -1).all() and (out.trace.step_of[~known] >= 0).all()
    res = sampling.generate(
        pipe.model,
        labels,
        generator=seed,
        grid=(rows, cols),
        context=Context(tokens, known),
        **{k: v for k, v in opts.items()},
    )
    assert torch.equal(res.tokens, out.tokens)  # the pipeline adds nothing but decoding


@PROPS
@given(rows=st.integers(1, 8), cols=st.integers(1, 8), data=st.data())
def test_check_options_accepts_every_valid_setting(pipe: Pipeline, rows: int, cols: int, data: st.DataObject) -> None:
    opts = data.draw(sampling_options(max_steps=rows * cols))
    out = sampling.check_options(pipe.model, (rows, cols), **opts)
    assert sum(out.counts) == rows * cols and len(out.ws) == len(out.counts)
    assert all(n >= 1 for n in out.counts) and (out.rows, out.cols) == (rows, cols)


# -- invalid input: ValueError naming the argument -------------------------------------------------
@PROPS
@given(data=st.data())
def test_bad_sampling_option_is_a_value_error_naming_it(pipe: Pipeline, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(BAD_OPTIONS)))
    strategy, word = BAD_OPTIONS[name]
    value = data.draw(strategy, label=name)
    kw = {"steps": 2, "seed": 0, name: value}
    with pytest.raises(ValueError) as err:
        pipe.generate([1], **kw)
    assert word in str(err.value)
    if name != "seed":
        with pytest.raises(ValueError) as err:
            sampling.check_options(pipe.model, **{k: v for k, v in kw.items() if k != "seed"})
        assert word in str(err.value)


@PROPS
@given(
    labels=st.one_of(
        st.lists(st.integers(0, C), max_size=0),
        st.lists(st.one_of(st.integers(-(2**62), -1), st.integers(C + 1, 2**62)), min_size=1, max_size=3),
        st.lists(st.floats(allow_nan=True), min_size=1, max_size=2),
        st.lists(st.booleans(), min_size=1, max_size=2),
        st.lists(st.lists(st.integers(0, C - 1), min_size=2, max_size=2), min_size=1, max_size=2),
        st.floats(allow_nan=True),
    )
)
def test_bad_labels_are_a_value_error(pipe: Pipeline, labels: Any) -> None:
    with pytest.raises(ValueError, match="labels"):
        pipe.generate(labels, seed=0, steps=2)


@PROPS
@given(
    image=st.one_of(
        WRONG_TYPES,
        st.integers(),
        st.floats(),
        st.binary(max_size=8),
        st.integers(0, 3).map(lambda w: np.zeros((0, w), np.uint8)),
        st.integers(0, 3).map(lambda w: np.zeros((0, w, 3), np.uint8)),
        st.integers(0, 3).map(lambda h: np.zeros((h, 0, 3), np.uint8)),
    ),
    task=st.sampled_from(["to_rgb", "prepare_image", "inpaint", "outpaint", "panorama", "resize"]),
)
def test_anything_but_an_image_is_a_value_error(pipe: Pipeline, image: Any, task: str) -> None:
    mask = np.ones((16, 16), bool)
    calls = {
        "to_rgb": lambda: to_rgb(image),
        "prepare_image": lambda: prepare_image(image, F, ROWS),
        "inpaint": lambda: tasks.inpaint(pipe, image, mask, 1, seed=0, steps=2),
        "outpaint": lambda: tasks.outpaint(pipe, image, 1, right=1, seed=0, steps=2),
        "panorama": lambda: tasks.panorama(pipe, image, 1, times=2, seed=0, steps=2),
        "resize": lambda: tasks.resize(pipe, image, 1, scale=2.0, seed=0, steps=2),
    }
    with pytest.raises(ValueError, match="image"):
        calls[task]()


@PROPS
@given(
    mask=st.one_of(
        st.none(),
        st.text(max_size=4),
        st.integers(),
        st.floats(allow_nan=True),
        st.integers(1, 20).map(lambda n: np.ones(n, bool)),
        st.integers(1, 4).map(lambda n: np.ones((1, 4, 4, n), bool)),
        st.tuples(st.integers(1, 30), st.integers(1, 30)).map(lambda s: np.zeros(s, bool)),
    )
)
def test_missing_empty_or_shapeless_masks_are_a_value_error(pipe: Pipeline, mask: Any) -> None:
    image = make_image("RGB", 16, 16, 0)
    with pytest.raises(ValueError, match="mask"):
        tasks.inpaint(pipe, image, mask, 1, seed=0, steps=2)


def test_full_mask_is_plain_generation(pipe: Pipeline) -> None:
    res = tasks.inpaint(pipe, make_image("RGB", 20, 20, 1), np.ones((3, 3), bool), 2, seed=0, steps=2)
    assert not res.known.any() and "plain generation" in res.note


@pytest.mark.parametrize("size", [(9000, 9000), (8001, 8000), (64_000_001, 1)])
def test_images_over_the_pixel_limit_are_refused(pipe: Pipeline, size: tuple[int, int]) -> None:
    """More than MAX_INPUT_PIXELS is refused before any conversion or resize (mode "1": 1 bit per pixel)."""
    assert size[0] * size[1] > MAX_PIXELS
    big = Image.new("1", size)
    for call in (
        lambda: to_rgb(big),
        lambda: prepare_image(big, F, ROWS),
        lambda: tasks.outpaint(pipe, big, 1, right=1, seed=0, steps=2),
    ):
        with pytest.raises(ValueError, match="too large"):
            call()


def _is_class(text: str) -> bool:
    """Whether ``label_of`` accepts ``text`` (a class name, or the digits of a class id), or
    ``text`` hits a known gap (non-decimal digits such as "³", tested apart)."""
    key = text.strip().lower()
    if key in {f"class {i}" for i in range(C)}:
        return True
    if key.isdigit() and not key.isdecimal():  # e.g. "³": see test_superscript_digits_name_the_class
        return True
    return key.isdigit() and 0 <= int(key) < C


def _bad_task_argument(draw: st.DrawFn) -> tuple[str, str, Any]:
    task, arg = draw(
        st.sampled_from(
            [
                ("inpaint", "label"),
                ("outpaint", "left"),
                ("outpaint", "right"),
                ("outpaint", "top"),
                ("outpaint", "bottom"),
                ("panorama", "times"),
                ("panorama", "side"),
                ("resize", "scale"),
                ("resize", "strategy"),
                ("resize", "regenerate"),
                ("inpaint", "temperature"),
                ("outpaint", "steps"),
                ("resize", "top_p"),
                ("panorama", "seed"),
                ("inpaint", "seed"),
            ]
        )
    )
    bad: dict[str, st.SearchStrategy[Any]] = {
        "label": st.one_of(
            st.integers(max_value=-1),
            st.integers(min_value=C),
            st.floats(allow_nan=True),
            st.booleans(),
            st.none(),
            st.text(max_size=6).filter(lambda s: not _is_class(s)),
            st.lists(st.integers(0, 3), max_size=2),
        ),
        # negative, fractional, non-finite, non-numbers; or so many cells that the grid is over max_cells
        # (bounded: the grid is allocated before that check, see test_huge_outpaint_is_refused_before_allocating)
        "side": st.one_of(
            st.integers(max_value=-1),
            st.integers(1100, 10**5),
            NONFINITE,
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not v.is_integer()),
            WRONG_TYPES,
        ),
        "times": st.one_of(
            st.integers(max_value=1), st.integers(min_value=9), st.floats(allow_nan=True), st.booleans(), WRONG_TYPES
        ),
        "panorama-side": st.one_of(
            st.text(max_size=6).filter(lambda s: s not in ("left", "right", "top", "bottom")), st.none(), st.integers()
        ),
        "scale": st.one_of(
            st.floats(max_value=1.0, exclude_max=True),
            st.floats(min_value=4.0, exclude_min=True),
            NONFINITE,  # (None is not here: a setting left out is the model's, arpg.tasks.resize_settings)
            not_a_number_text(),
            st.lists(st.floats(1, 2), max_size=2),
        ),
        "strategy": st.one_of(st.text(max_size=8).filter(lambda s: s not in tasks.RESIZE_STRATEGIES), st.integers()),
        "regenerate": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True), NONFINITE),
        "temperature": BAD_OPTIONS["temperature"][0],
        # more steps than cells is not an error for a task: capped, with a note (tasks.fit_steps)
        "steps": not_none(
            st.one_of(
                st.integers(max_value=0),
                NONFINITE,
                st.booleans(),
                WRONG_TYPES,
                st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: not v.is_integer()),
            )
        ),
        "top_p": BAD_OPTIONS["top_p"][0],
        "seed": BAD_OPTIONS["seed"][0],
    }
    if arg in ("left", "right", "top", "bottom"):
        key = "side"
    elif task == "panorama" and arg == "side":
        key = "panorama-side"
    else:
        key = arg
    return task, arg, draw(bad[key], label=arg)


@PROPS
@given(data=st.data())
def test_bad_task_argument_is_a_value_error(pipe: Pipeline, data: st.DataObject) -> None:
    task, arg, value = _bad_task_argument(data.draw)
    image = make_image("RGB", 16, 16, 0)
    mask = np.ones((16, 16), bool)
    kw: dict[str, Any] = {"seed": 0, "steps": 2}
    label = value if arg == "label" else 1
    if arg != "label":
        kw[arg] = value
    calls = {
        "inpaint": lambda: tasks.inpaint(pipe, image, mask, label, **kw),
        "outpaint": lambda: tasks.outpaint(pipe, image, label, **{"right": 1, **kw}),
        "panorama": lambda: tasks.panorama(pipe, image, label, **{"times": 2, **kw}),
        "resize": lambda: tasks.resize(pipe, image, label, **{"scale": 2.0, **kw}),
    }
    with pytest.raises(ValueError) as err:
        calls[task]()
    words = {"label": "class", "left": "cells", "right": "cells", "top": "cells", "bottom": "cells"}
    assert words.get(arg, arg) in str(err.value)


# -- bugs found by these tests, fixed: the fix each needed -------------------------------------------
LABELS_FIX = (
    "sampling._labels: torch.as_tensor(labels) raises TypeError/RuntimeError for str/None/dict; "
    "wrap it in try/except (TypeError, RuntimeError, OverflowError) -> ValueError naming labels"
)


@pytest.mark.parametrize("labels", ["3", "abc", None, {"a": 1}, [1, "a"], [10**30], [[1], [2, 3]]], ids=repr)
def test_labels_of_the_wrong_type_are_a_value_error(pipe: Pipeline, labels: Any) -> None:
    with pytest.raises(ValueError, match="labels"):
        pipe.generate(labels, seed=0, steps=2)


ARRAY_FIX = (
    "to_rgb: arrays are passed to Image.fromarray unchecked; refuse arrays that are not "
    "(H, W) or (H, W, 1|3|4) of a numeric dtype with a ValueError"
)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((1, 4, 4, 3), np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.array([[None, 1]], dtype=object),
        np.zeros(5, np.uint8),
    ],
    ids=["4-D", "5-channels", "object", "1-D"],
)
def test_arrays_that_are_not_images_are_a_value_error(array: np.ndarray) -> None:
    with pytest.raises(ValueError, match="image"):
        to_rgb(array)


INPAINT_FIX = (
    "tasks.inpaint: dilate and feather are not checked; check dilate as a whole number in 0..64 "
    "and feather as a finite number >= 0 (ValueError naming them)"
)


@pytest.mark.parametrize(
    "kw", [dict(dilate="x"), dict(dilate=None), dict(dilate=1.5), dict(dilate=True), dict(feather="x")], ids=repr
)
def test_bad_dilate_or_feather_is_a_value_error(pipe: Pipeline, kw: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kw))):
        tasks.inpaint(pipe, make_image("RGB", 16, 16, 0), np.ones((16, 16), bool), 1, seed=0, steps=2, **kw)


@pytest.mark.slow
def test_infinite_feather_does_not_crash_the_process() -> None:
    code = textwrap.dedent("""
        import numpy as np, torch
        from arpg import tasks
        from arpg.pipeline import Pipeline
        torch.set_num_threads(1)
        pipe = Pipeline.random()
        try:
            tasks.inpaint(pipe, np.zeros((16, 16, 3), np.uint8), np.ones((16, 8), bool), 1, seed=0, steps=2,
                          feather=float("inf"))
        except ValueError as exc:
            print("ValueError:", exc)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ValueError" in r.stdout, (r.returncode, r.stderr[-300:])


def test_huge_outpaint_is_refused_before_allocating(pipe: Pipeline) -> None:
    with pytest.raises(ValueError, match="cells"):
        tasks.outpaint(pipe, make_image("RGB", 16, 16, 0), 1, left=2**62, seed=0, steps=2)


@pytest.mark.parametrize(
    "kw",
    [  # (None is the model's: arpg.tasks.resize_settings)
        dict(regenerate=[0.5]),
        dict(regenerate="x"),
        dict(scale=True),
        dict(regenerate=True, strategy="reencode"),
    ],
    ids=repr,
)
def test_resize_numbers_of_the_wrong_type_are_a_value_error(pipe: Pipeline, kw: dict) -> None:
    with pytest.raises(ValueError, match="scale" if "scale" in kw else "regenerate"):
        tasks.resize(pipe, make_image("RGB", 16, 16, 0), 1, **{"scale": 2.0, **kw, "seed": 0, "steps": 2})


def test_superscript_digits_name_the_class(pipe: Pipeline) -> None:
    with pytest.raises(ValueError, match="class"):
        pipe.label_of("³")


def test_bad_cfg_schedule_message_names_cfg_schedule(pipe: Pipeline) -> None:
    with pytest.raises(ValueError, match="cfg_schedule"):
        pipe.generate([1], seed=0, steps=2, cfg_schedule="sideways")


def test_check_options_refuses_a_bad_permutation(pipe: Pipeline) -> None:
    with pytest.raises(ValueError, match="order"):
        sampling.check_options(pipe.model, steps=2, order=[0, 0, 1])


# -- the command line: exit code 2 and one line ----------------------------------------------------------
@pytest.mark.parametrize(
    "args, word",
    [
        (["--steps", "0"], "steps"),
        (["--steps", "100"], "steps"),
        (["--temperature", "nan"], "temperature"),
        (["--temperature", "0"], "temperature"),
        (["--top-p", "2"], "top_p"),
        (["--top-k", "-1"], "top_k"),
        (["--cfg", "inf"], "cfg_scale"),
        (["--seed", "-1"], "seed"),
        (["--seed", "4294967296"], "seed"),
        (["--class", "99"], "class"),
        (["--class", "a unicorn"], "class"),
        (["-n", "0"], "-n"),
        (["--order", "sideways"], "order"),
        (["--schedule", "k=0"], "k"),
        (["--schedule", "fastest"], "schedule"),
        (["--upscale", "0"], "upscale"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    tiny_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], word: str
) -> None:
    from arpg import cli

    weights, tokenizer = tiny_files
    out = tmp_path / "out.png"
    code = cli.main(
        [
            "sample",
            "--weights",
            str(weights),
            "--tokenizer",
            str(tokenizer),
            "--device",
            "cpu",
            "--steps",
            "2",
            "--out",
            str(out),
            *args,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ") and word in err, err
    assert not out.exists()


def test_cli_valid_input_writes_the_image(tiny_files: tuple[Path, Path], tmp_path: Path) -> None:
    from arpg import cli

    weights, tokenizer = tiny_files
    out = tmp_path / "out.png"
    assert (
        cli.main(
            [
                "sample",
                "--weights",
                str(weights),
                "--tokenizer",
                str(tokenizer),
                "--device",
                "cpu",
                "--steps",
                "2",
                "-n",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert Image.open(out).size == (2 * H + 3 * 2, H + 2 * 2)
