"""Fast tests of arpg.viz.animate: animation files, and the decodes it asks a pipeline for."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from arpg.options import SamplingOptions
from arpg.viz import animate as A
from arpg.viz.frames import decode_frames

ROWS, COLS = 2, 3


class FakePipe:
    """Just what arpg.viz.animate and arpg.viz.compare use of a Pipeline: each decode reveals
    cells in raster order, spread over ``options.steps`` steps; a token's value is its cell
    index. With a ``clock``, every step advances it by ``step_s`` seconds."""

    grid = (ROWS, COLS)
    class_names = ["zero", "one"]
    defaults = SamplingOptions(steps=3, cfg_scale=2.0, temperature=0.5)

    def __init__(self, clock: Any = None, step_s: float = 0.0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.clock, self.step_s = clock, step_s

    def generate(
        self,
        labels: list[int],
        options: SamplingOptions | None = None,
        *,
        seed: int | None = None,
        snapshots: bool = False,
        callback: Any = None,
    ) -> SimpleNamespace:
        self.calls.append(dict(labels=labels, options=options, seed=seed, snapshots=snapshots, callback=callback))
        n = ROWS * COLS
        step_of = (np.arange(n) * options.steps // n).reshape(ROWS, COLS)
        cells = torch.arange(n).view(1, ROWS, COLS)
        snaps = [torch.where(torch.from_numpy(step_of <= s), cells, -1) for s in range(options.steps)]
        for s, snap in enumerate(snaps):
            if self.clock is not None:
                self.clock.advance(self.step_s)
            if callback is not None:
                callback(s, options.steps, snap)
        trace = SimpleNamespace(snapshots=snaps, step_of=torch.from_numpy(step_of), forward_passes=options.steps)
        return SimpleNamespace(trace=trace, seed=seed, tokens=cells, images=self.decode(cells))

    def decode(self, tokens: torch.Tensor) -> np.ndarray:
        """(B, rows, cols) -> (B, rows*4, cols*4, 3) uint8, each cell a colour of its token."""
        t = tokens.clamp(min=0).numpy().astype(np.uint8)
        rgb = np.stack([t * 40, 255 - t * 30, np.full_like(t, 90)], -1)
        return np.repeat(np.repeat(rgb, 4, axis=1), 4, axis=2)


def solid(n: int, size: tuple[int, int], seed: int) -> list[Image.Image]:
    """n frames whose colour encodes their index (red channel = 10 + index)."""
    return [Image.new("RGB", size, (10 + k, seed, 200)) for k in range(n)]


def test_save_animation_gif(tmp_path: Path) -> None:
    step = np.arange(ROWS * COLS).reshape(ROWS, COLS) % 4
    frames = decode_frames([np.full((ROWS * 4, COLS * 4, 3), 40 * k, np.uint8) for k in range(4)], step)
    path = A.save_animation(frames, tmp_path / "anim.gif", fps=10, hold_last=1.0)
    assert path.exists()
    with Image.open(path) as im:
        assert im.n_frames == len(frames)
        assert im.size == frames[0].size
        im.seek(0)
        first = im.info["duration"]
        im.seek(im.n_frames - 1)
        assert im.info["duration"] >= 1000 > first
        assert im.info.get("loop") == 0


def test_save_animation_mp4_round_trip(tmp_path: Path) -> None:
    import imageio_ffmpeg

    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]
    frames = [Image.new("RGB", (33, 21), c) for c in colours]  # odd size: padded to even for yuv420p
    path = A.save_animation(frames, tmp_path / "anim.mp4", fps=4, hold_last=1.0)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert tuple(meta["size"]) == (34, 22)  # (width, height)
    back = [np.frombuffer(buf, np.uint8).reshape(22, 34, 3) for buf in reader]
    assert len(back) == len(frames) + 3  # the last frame held for 1 s at 4 fps
    for frame, colour in zip(back, colours):
        centre = frame[5:15, 8:24].reshape(-1, 3).mean(0)
        assert np.abs(centre - np.array(colour)).max() < 20, (centre, colour)  # lossy, but the same colours


def test_save_animation_bad_suffix(tmp_path: Path) -> None:
    frames = solid(2, (8, 8), 1)
    with pytest.raises(ValueError):
        A.save_animation(frames, tmp_path / "anim.webm")
    with pytest.raises(ValueError):
        A.save_animation([], tmp_path / "anim.gif")


def test_decoding_animation_uses_the_pipeline_defaults_with_overrides(tmp_path: Path) -> None:
    pipe = FakePipe()
    path = A.decoding_animation(pipe, 1, tmp_path / "one.gif", steps=2, cfg_scale=None, seed=7, fps=5)
    (call,) = pipe.calls
    assert call["labels"] == [1] and call["seed"] == 7 and call["snapshots"]
    assert call["options"] == FakePipe.defaults.replace(steps=2)  # None keeps the default guidance
    with Image.open(path) as im:
        assert im.n_frames == 3  # nothing decoded, then two steps


def test_decoding_animation_refuses_other_formats_before_decoding(tmp_path: Path) -> None:
    pipe = FakePipe()
    with pytest.raises(ValueError, match="gif or .mp4"):
        A.decoding_animation(pipe, 0, tmp_path / "x.txt")
    assert pipe.calls == []


def test_comparison_frames_three_strategies_same_seed_and_options() -> None:
    pipe = FakePipe()
    seen: list[int] = []
    frames, outs = A.comparison_frames(
        pipe,
        0,
        SamplingOptions(steps=2, order="raster", temperature=0.7),
        seed=3,
        callback=lambda step, n, tokens: seen.append(step),
    )
    n = ROWS * COLS
    got = [(c["options"].steps, c["options"].order) for c in pipe.calls]
    assert got == [(2, "random"), (n, "raster"), (n, "random"), (2, "random")]  # an untimed warm-up first
    assert all(c["seed"] == 3 and c["options"].temperature == 0.7 for c in pipe.calls)
    assert pipe.calls[0]["callback"] is None and seen == [*range(n), *range(n), 0, 1]  # the timed steps only
    assert len(outs) == 3 and len(frames) >= 2 and len({im.size for im in frames}) == 1


def test_decoding_animation_compare_writes_the_race(tmp_path: Path) -> None:
    pipe = FakePipe()
    path = A.decoding_animation(pipe, 1, tmp_path / "race.gif", compare=True, steps=2, seed=4)
    assert [c["seed"] for c in pipe.calls] == [4] * 4
    with Image.open(path) as im:
        assert im.n_frames >= 2 and im.width >= 3 * 256


def test_strategy_frames_titles_and_overrides() -> None:
    pipe = FakePipe()
    strategies = [("a", {"steps": 2}), ("b", {"steps": 3, "order": "raster"})]
    frames, outs = A.strategy_frames(pipe, 1, strategies, seed=5, temperature=0.9)
    assert [(c["options"].steps, c["options"].order, c["options"].temperature) for c in pipe.calls] == [
        (2, "random", 0.9),
        (3, "raster", 0.9),
    ]
    assert len(frames) == 4 and len({im.size for im in frames}) == 1


def test_trace_frames_subsamples_long_decodes() -> None:
    pipe = FakePipe()
    out = pipe.generate([0], SamplingOptions(steps=ROWS * COLS), seed=0, snapshots=True)
    frames = A.trace_frames(pipe, out, label_text="zero", max_frames=3)
    assert len(frames) == 4  # frame 0 + three kept steps (first and last included)
    full = A.trace_frames(pipe, out, scale=1)
    assert len(full) == ROWS * COLS + 1
    np.testing.assert_array_equal(A._subsample(10, 3), [0, 4, 9])


def test_trace_frames_of_a_subsampled_decode_count_the_decodes_steps() -> None:
    """A 6-step decode shown in 3 frames reads "step 6/6" at its end (it read "step 3/3"), and each
    frame's new tokens are those decoded since the frame before."""
    pipe = FakePipe()
    out = pipe.generate([0], SamplingOptions(steps=ROWS * COLS), seed=0, snapshots=True)
    captions = [im.info["caption"] for im in A.trace_frames(pipe, out, label_text="zero", max_frames=3)]
    assert captions == [
        "step 0/6 · 0 new tokens · zero",
        "step 1/6 · 1 new token · zero",
        "step 3/6 · 2 new tokens · zero",
        "step 6/6 · 3 new tokens · zero",
    ]


def test_gif_frames_round_trip(tmp_path: Path) -> None:
    """Frames of few colours that change a little each time read back exactly."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 4, (120, 160)).astype(np.uint8) * 60
    frames = []
    for k in range(30):
        arr = np.stack([base, base[::-1], np.full_like(base, 30)], -1)
        arr[10:20, 5 * k : 5 * k + 5] = (250, 10, 10)
        frames.append(Image.fromarray(arr))
    path = A.save_animation(frames, tmp_path / "few.gif", fps=10)
    with Image.open(path) as im:
        assert im.n_frames == len(frames)
        for k in range(im.n_frames):
            im.seek(k)
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(frames[k]))


def test_gif_of_a_many_coloured_picture_stores_only_what_changes(tmp_path: Path) -> None:
    """A smooth picture (thousands of colours) with small parts changing: one palette for all
    frames, so each frame stores only its changes (362 kB with a palette per frame, now 49 kB)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:240]
    base = np.stack([yy * 255 // 159, xx * 255 // 239, (xx + yy) * 255 // 398], -1).astype(np.uint8)
    frames = []
    for k in range(40):
        arr = base.copy()
        arr[20:40, 5 * k : 5 * k + 5] = rng.integers(0, 255, 3)
        arr[60:80, : 6 * k] = (20, 200, 200)
        frames.append(Image.fromarray(arr))
    path = A.save_animation(frames, tmp_path / "smooth.gif", fps=10)
    assert path.stat().st_size < 120_000
    with Image.open(path) as im:
        im.seek(im.n_frames - 1)
        last = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(last - np.asarray(frames[-1]).astype(int)).mean() < 6  # 255 colours: close to the original
