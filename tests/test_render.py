"""Fast tests of the drawing helpers in demo/render.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo import render as R

ROWS, COLS, F, S = 6, 8, 4, 4


def _step_of(context: bool = False) -> np.ndarray:
    """A random decoding order of a ROWS x COLS grid in S steps."""
    rng = np.random.default_rng(0)
    step = (rng.permutation(ROWS * COLS) % S).reshape(ROWS, COLS)
    if context:
        step[:, :2] = -1
    return step


def _frames(n: int = S) -> list[np.ndarray]:
    """n colourful (non-grey) frames of ROWS*F x COLS*F pixels."""
    yy, xx = np.mgrid[0 : ROWS * F, 0 : COLS * F]
    out = []
    for k in range(n):
        img = np.stack([(yy * 9 + k * 5) % 256, (xx * 7) % 200 + 40, np.full_like(yy, 30)], -1)
        out.append(img.astype(np.uint8))
    return out


def _is_grey(px: np.ndarray) -> np.ndarray:
    """True where R == G == B."""
    return (px[..., 0] == px[..., 1]) & (px[..., 1] == px[..., 2])


@pytest.mark.parametrize("fill", ["checker", (128, 128, 128)])
def test_mask_unknown_greys_exactly_unknown_cells(fill: object) -> None:
    img = _frames(1)[0]
    known = _step_of() < 2
    out = R.mask_unknown(img, known, fill=fill)  # type: ignore[arg-type]
    assert out.shape == img.shape and out.dtype == np.uint8
    cell_known = np.repeat(np.repeat(known, F, 0), F, 1)
    np.testing.assert_array_equal(out[cell_known], img[cell_known])
    assert _is_grey(out[~cell_known]).all()
    assert not _is_grey(img[~cell_known]).any()
    if fill == "checker":
        assert len(np.unique(out[~cell_known][:, 0])) == 2
    # the input is not modified; all-known leaves the image unchanged
    assert not _is_grey(img).any()
    np.testing.assert_array_equal(R.mask_unknown(img, np.ones((ROWS, COLS), bool)), img)


def test_mask_unknown_rejects_mismatched_grid() -> None:
    with pytest.raises(ValueError):
        R.mask_unknown(np.zeros((10, 10, 3), np.uint8), np.ones((3, 3), bool))


def test_order_map_shape_and_colours() -> None:
    step = _step_of(context=True)
    size = 60  # 10 px cells -> grid lines and outlines
    m = R.order_map(step, upto=2, size=size)
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
    assert (centre[pending] == R.UNDECODED).all()
    assert (centre[ctx] == R.CONTEXT).all()
    # white outline appears only after a step; nothing is highlighted at upto=0
    assert (m == 255).all(-1).any()
    m0 = R.order_map(step, upto=0, size=size)
    assert not (m0 == 255).all(-1).any()
    assert (m0[5::10, 5::10][step >= 0] == R.UNDECODED).all()


def test_order_map_small_cells_still_highlight_newest() -> None:
    step = _step_of()
    m = R.order_map(step, upto=3, size=ROWS * 2)  # 2 px cells, no lines
    cells = m[::2, ::2].astype(int)
    assert cells[step == 2].sum(1).min() > cells[step == 1].sum(1).max()


def test_decode_frames_count_and_size() -> None:
    step = _step_of(context=True)
    out = R.decode_frames(_frames(), step, scale=3, label="ARPG")
    assert len(out) == S + 1
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for im in out)
    assert len({im.size for im in out}) == 1
    assert out[0].width > COLS * F * 3 and out[0].height > ROWS * F * 3
    # consecutive frames differ (more cells get revealed)
    for a, b in zip(out, out[1:]):
        assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_decode_frames_first_frame_shows_only_context() -> None:
    step = _step_of(context=True)
    scale = 2
    out = R.decode_frames(_frames(), step, scale=scale)
    arr0, arr_last = np.asarray(out[0]), np.asarray(out[-1])
    # locate the decoded image in the canvas by its top-left pixel in the last frame
    img = np.repeat(np.repeat(_frames()[0], scale, 0), scale, 1)
    last = np.repeat(np.repeat(_frames()[-1], scale, 0), scale, 1)
    h, w = img.shape[:2]
    ys, xs = np.nonzero((arr_last == last[0, 0]).all(-1))
    y0, x0 = ys.min(), xs.min()
    panel0 = arr0[y0 : y0 + h, x0 : x0 + w]
    ctx_px = np.repeat(np.repeat(step < 0, F * scale, 0), F * scale, 1)
    np.testing.assert_array_equal(panel0[ctx_px], img[ctx_px])
    assert _is_grey(panel0[~ctx_px]).all()
    np.testing.assert_array_equal(arr_last[y0 : y0 + h, x0 : x0 + w], last)


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, demo.render; assert 'matplotlib' not in sys.modules, 'heavy import'"
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_decode_frames_rejects_too_few_frames() -> None:
    with pytest.raises(ValueError):
        R.decode_frames(_frames(S - 1), _step_of())


def _solid_frames(n: int, size: tuple[int, int], seed: int) -> list[Image.Image]:
    """n frames whose colour encodes their index (red channel = 10 + index)."""
    return [Image.new("RGB", size, (10 + k, seed, 200)) for k in range(n)]


def test_side_by_side_resamples_columns_to_end_together() -> None:
    a = _solid_frames(10, (30, 20), 50)
    b = _solid_frames(3, (24, 26), 100)
    out = R.side_by_side([a, b], ["raster", "ARPG"])
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
        R.side_by_side([_solid_frames(2, (8, 8), 1)], ["a", "b"])


def test_save_animation_gif(tmp_path: Path) -> None:
    frames = R.decode_frames(_frames(), _step_of())
    path = R.save_animation(frames, tmp_path / "anim.gif", fps=10, hold_last=1.0)
    assert path.exists()
    with Image.open(path) as im:
        assert im.n_frames == len(frames)
        assert im.size == frames[0].size
        im.seek(0)
        first = im.info["duration"]
        im.seek(im.n_frames - 1)
        assert im.info["duration"] >= 1000 > first
        assert im.info.get("loop") == 0


def test_save_animation_mp4_or_clear_error(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (33, 21), (k * 40, 0, 0)) for k in range(4)]  # odd size
    try:
        path = R.save_animation(frames, tmp_path / "anim.mp4")
    except RuntimeError as exc:
        assert "imageio-ffmpeg" in str(exc)
    else:
        assert path.exists() and path.stat().st_size > 0


def test_save_animation_bad_suffix(tmp_path: Path) -> None:
    frames = _solid_frames(2, (8, 8), 1)
    with pytest.raises(ValueError):
        R.save_animation(frames, tmp_path / "anim.webm")
    with pytest.raises(ValueError):
        R.save_animation([], tmp_path / "anim.gif")


def test_step_heatmap_image() -> None:
    im = R.step_heatmap(_step_of(context=True), title="order", size_px=300)
    assert im.mode == "RGB"
    assert 250 <= im.width <= 350 and 150 <= im.height <= 600
    arr = np.asarray(im)
    assert not _is_grey(arr).all()  # colours present
    big = R.step_heatmap(np.arange(40 * 40).reshape(40, 40))  # no annotations path
    assert big.mode == "RGB" and big.width >= 300


def test_image_grid_size_arithmetic() -> None:
    imgs = [np.zeros((10, 12, 3), np.uint8) for _ in range(5)]
    g = R.image_grid(imgs, ncols=3, pad=2)
    assert g.size == (3 * 12 + 4 * 2, 2 * 10 + 3 * 2)
    g2 = R.image_grid([Image.new("RGB", (7, 5))] * 2, ncols=4, pad=0)
    assert g2.size == (14, 5)
    arr = np.asarray(R.image_grid(imgs[:1], ncols=1, pad=3))
    assert (arr[:3] == 255).all() and (arr[3:13, 3:15] == 0).all()


def _results(quality: bool) -> dict:
    rows = []
    for method, steps_list in (("arpg", [4, 8, 16, 32]), ("raster", [48]), ("random1", [48])):
        for steps in steps_list:
            rows.append({
                "method": method, "steps": steps, "batch": 4,
                "images_per_s": 100.0 / steps, "latency_s": steps / 25.0,
                "kv_cache_bytes": 1 << 20, "per_layer_cache_bytes": 1 << 18,
                "peak_mem_bytes": 1 << 24,
                "accuracy": (0.5 + steps / 100) if quality else None,
                "frechet": (40.0 - steps / 2) if quality and method != "random1" else None,
            })
    return {"model": "tiny", "machine": "CPU", "rows": rows}


@pytest.mark.parametrize("quality", [True, False])
def test_tradeoff_figure_image(quality: bool) -> None:
    im = R.tradeoff_figure(_results(quality))
    assert im.mode == "RGB"
    assert im.width > 800 and 250 < im.height < im.width
    assert not _is_grey(np.asarray(im)).all()


def test_tradeoff_figure_empty_rows() -> None:
    im = R.tradeoff_figure({"model": "tiny", "machine": "CPU", "rows": []})
    assert im.mode == "RGB" and im.width > 800


def test_published_figure_and_table() -> None:
    assert len(R.PUBLISHED) == 8
    assert {"model", "steps", "images_per_s", "memory_gb", "fid"} <= set(R.PUBLISHED[0])
    arpg_l32 = next(r for r in R.PUBLISHED if r["model"] == "ARPG-L" and r["steps"] == 32)
    assert arpg_l32["images_per_s"] == pytest.approx(113.01) and arpg_l32["fid"] == 2.44
    im = R.published_figure()
    assert im.mode == "RGB" and im.width > 500 and im.height > 300
    assert not _is_grey(np.asarray(im)).all()
