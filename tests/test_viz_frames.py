"""Fast tests of arpg.viz.frames (and arpg.viz.heatmap): masks, order maps, per-step frames, grids."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arpg.viz import draw
from arpg.viz import frames as F

ROWS, COLS, FACTOR, S = 6, 8, 4, 4


def step_map(context: bool = False) -> np.ndarray:
    """A random decoding order of a ROWS x COLS grid in S steps."""
    rng = np.random.default_rng(0)
    step = (rng.permutation(ROWS * COLS) % S).reshape(ROWS, COLS)
    if context:
        step[:, :2] = -1
    return step


def colourful(n: int = S) -> list[np.ndarray]:
    """n colourful (non-grey) frames of ROWS*FACTOR x COLS*FACTOR pixels."""
    yy, xx = np.mgrid[0 : ROWS * FACTOR, 0 : COLS * FACTOR]
    out = []
    for k in range(n):
        img = np.stack([(yy * 9 + k * 5) % 256, (xx * 7) % 200 + 40, np.full_like(yy, 30)], -1)
        out.append(img.astype(np.uint8))
    return out


def is_grey(px: np.ndarray) -> np.ndarray:
    """True where R == G == B."""
    return (px[..., 0] == px[..., 1]) & (px[..., 1] == px[..., 2])


def solid(n: int, size: tuple[int, int], seed: int) -> list[Image.Image]:
    """n frames whose colour encodes their index (red channel = 10 + index)."""
    return [Image.new("RGB", size, (10 + k, seed, 200)) for k in range(n)]


@pytest.mark.slow
def test_import_is_light() -> None:
    code = (
        "import sys, arpg.viz, arpg.viz.frames, arpg.viz.animate, arpg.viz.plots, arpg.viz.heatmap, "
        "arpg.viz.compare, arpg.viz.timeline; "
        "assert 'matplotlib' not in sys.modules, 'heavy import'; assert 'demo' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


@pytest.mark.parametrize("fill", ["checker", (128, 128, 128)])
def test_mask_unknown_greys_exactly_unknown_cells(fill: object) -> None:
    img = colourful(1)[0]
    known = step_map() < 2
    out = F.mask_unknown(img, known, fill=fill)  # type: ignore[arg-type]
    assert out.shape == img.shape and out.dtype == np.uint8
    cell_known = np.repeat(np.repeat(known, FACTOR, 0), FACTOR, 1)
    np.testing.assert_array_equal(out[cell_known], img[cell_known])
    assert is_grey(out[~cell_known]).all()
    assert not is_grey(img[~cell_known]).any()
    if fill == "checker":
        assert len(np.unique(out[~cell_known][:, 0])) == 2
    # the input is not modified; all-known leaves the image unchanged
    assert not is_grey(img).any()
    np.testing.assert_array_equal(F.mask_unknown(img, np.ones((ROWS, COLS), bool)), img)


def test_mask_unknown_rejects_mismatched_grid() -> None:
    with pytest.raises(ValueError):
        F.mask_unknown(np.zeros((10, 10, 3), np.uint8), np.ones((3, 3), bool))


def test_order_map_shape_and_colours() -> None:
    step = step_map(context=True)
    size = 60  # 10 px cells -> grid lines and outlines
    m = F.order_map(step, upto=2, size=size)
    assert m.shape == (size, round(size * COLS / ROWS), 3) and m.dtype == np.uint8
    centre = m[5::10, 5::10]  # one pixel in the middle of each cell
    newest, older = step == 1, step == 0
    pending, ctx = step >= 2, step == -1
    assert newest.any() and older.any() and pending.any()
    new_c = centre[newest].astype(int)
    old_c = centre[older].astype(int)
    # newest cells are brighter than older ones of any step
    assert new_c.sum(1).min() > old_c.sum(1).max()
    # all pending cells share the dark colour, context the light grey
    assert (centre[pending] == draw.UNDECODED).all()
    assert (centre[ctx] == draw.CONTEXT).all()
    # white outline appears only after a step; nothing is highlighted at upto=0
    assert (m == 255).all(-1).any()
    m0 = F.order_map(step, upto=0, size=size)
    assert not (m0 == 255).all(-1).any()
    assert (m0[5::10, 5::10][step >= 0] == draw.UNDECODED).all()


def test_order_map_small_cells_still_highlight_newest() -> None:
    step = step_map()
    m = F.order_map(step, upto=3, size=ROWS * 2)  # 2 px cells, no lines
    cells = m[::2, ::2].astype(int)
    assert cells[step == 2].sum(1).min() > cells[step == 1].sum(1).max()


def test_decode_frames_count_and_size() -> None:
    step = step_map(context=True)
    out = F.decode_frames(colourful(), step, scale=3, label="ARPG")
    assert len(out) == S + 1
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for im in out)
    assert len({im.size for im in out}) == 1
    assert out[0].width > COLS * FACTOR * 3 and out[0].height > ROWS * FACTOR * 3
    # consecutive frames differ (more cells get revealed)
    for a, b in zip(out, out[1:]):
        assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_decode_frames_first_frame_shows_only_context() -> None:
    step = step_map(context=True)
    scale = 2
    out = F.decode_frames(colourful(), step, scale=scale)
    arr0, arr_last = np.asarray(out[0]), np.asarray(out[-1])
    # locate the decoded image in the canvas by its top-left pixel in the last frame
    img = np.repeat(np.repeat(colourful()[0], scale, 0), scale, 1)
    last = np.repeat(np.repeat(colourful()[-1], scale, 0), scale, 1)
    h, w = img.shape[:2]
    ys, xs = np.nonzero((arr_last == last[0, 0]).all(-1))
    y0, x0 = ys.min(), xs.min()
    panel0 = arr0[y0 : y0 + h, x0 : x0 + w]
    ctx_px = np.repeat(np.repeat(step < 0, FACTOR * scale, 0), FACTOR * scale, 1)
    np.testing.assert_array_equal(panel0[ctx_px], img[ctx_px])
    assert is_grey(panel0[~ctx_px]).all()
    np.testing.assert_array_equal(arr_last[y0 : y0 + h, x0 : x0 + w], last)


def test_decode_frames_rejects_too_few_frames() -> None:
    with pytest.raises(ValueError):
        F.decode_frames(colourful(S - 1), step_map())


def test_side_by_side_resamples_columns_to_end_together() -> None:
    a = solid(10, (30, 20), 50)
    b = solid(3, (24, 26), 100)
    out = F.side_by_side([a, b], ["raster", "ARPG"])
    assert len(out) == 10
    assert len({im.size for im in out}) == 1

    def shown(im: Image.Image, seed: int) -> int:
        arr = np.asarray(im)
        hit = arr[(arr[..., 1] == seed) & (arr[..., 2] == 200)]
        assert len(hit) > 0
        return int(hit[0, 0]) - 10

    assert [shown(im, 50) for im in out] == list(range(10))
    idx_b = [shown(im, 100) for im in out]
    assert idx_b[0] == 0 and idx_b[-1] == 2
    assert idx_b == sorted(idx_b)
    assert idx_b == [round(t * 2 / 9) for t in range(10)]


def test_side_by_side_validates() -> None:
    with pytest.raises(ValueError):
        F.side_by_side([solid(2, (8, 8), 1)], ["a", "b"])


def test_step_heatmap_image() -> None:
    im = F.step_heatmap(step_map(context=True), title="order", size_px=300)
    assert im.mode == "RGB"
    assert 250 <= im.width <= 350 and 150 <= im.height <= 600
    arr = np.asarray(im)
    assert not is_grey(arr).all()  # colours present
    big = F.step_heatmap(np.arange(40 * 40).reshape(40, 40))  # no annotations path
    assert big.mode == "RGB" and big.width >= 300


def test_image_grid_size_arithmetic() -> None:
    imgs = [np.zeros((10, 12, 3), np.uint8) for _ in range(5)]
    g = F.image_grid(imgs, ncols=3, pad=2)
    assert g.size == (3 * 12 + 4 * 2, 2 * 10 + 3 * 2)
    g2 = F.image_grid([Image.new("RGB", (7, 5))] * 2, ncols=4, pad=0)
    assert g2.size == (14, 5)
    arr = np.asarray(F.image_grid(imgs[:1], ncols=1, pad=3))
    assert (arr[:3] == 255).all() and (arr[3:13, 3:15] == 0).all()
