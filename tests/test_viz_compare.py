"""Tests of arpg.viz.compare: timed decodes racing on one clock, their frames, GIF/MP4 files,
and ``arpg animate --compare``."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageSequence

from arpg import cli
from arpg.options import SamplingOptions
from arpg.viz import animate as A
from arpg.viz import compare as C
from arpg.viz.frames import mask_unknown
from arpg.viz.timeline import completion_frames, panel_states
from tests.test_viz_animate import COLS, ROWS, FakePipe

pytestmark = pytest.mark.slow  # GIF and MP4 encoding: seconds

N = ROWS * COLS  # 6 cells: raster and random decode in 6 steps, ARPG in 2
STEP_S = 0.01  # each fake step takes 10 ms of the fake clock


class FakeClock:
    """A perf_counter that only moves when a fake decode step advances it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def pipe(monkeypatch: pytest.MonkeyPatch) -> FakePipe:
    clock = FakeClock()
    monkeypatch.setattr(C, "time", SimpleNamespace(perf_counter=clock))
    return FakePipe(clock, STEP_S)


def gif_frames(data: bytes | Path) -> tuple[list[np.ndarray], list[int]]:
    """The frames of a GIF as RGB arrays, and their durations in ms."""
    with Image.open(data) as im:
        pairs = [(np.asarray(f.convert("RGB")), int(f.info["duration"])) for f in ImageSequence.Iterator(im)]
    return [a for a, _ in pairs], [d for _, d in pairs]


def panel_done_frames(frames: list[np.ndarray], n_panels: int = 3) -> list[int]:
    """Per panel (equal columns of the frame), the first frame after which its pixels no longer change."""
    width = frames[0].shape[1]
    done = []
    for j in range(n_panels):
        cols = slice(j * width // n_panels, (j + 1) * width // n_panels)
        changed = [i for i in range(1, len(frames)) if not np.array_equal(frames[i][:, cols], frames[i - 1][:, cols])]
        done.append(changed[-1] if changed else 0)
    return done


def test_timed_decodes_measure_each_step(pipe: FakePipe) -> None:
    decodes = C.timed_decodes(pipe, 1, SamplingOptions(steps=2), seed=7)
    assert [d.method for d in decodes] == list(C.METHODS)
    assert [d.steps for d in decodes] == [N, N, 2]
    np.testing.assert_allclose(decodes[0].step_times, STEP_S * np.arange(1, N + 1))  # from its own start
    np.testing.assert_allclose(decodes[2].step_times, [STEP_S, 2 * STEP_S])
    assert decodes[2].seconds == pytest.approx(0.02) and decodes[0].seconds == pytest.approx(0.06)
    assert len(pipe.calls) == 4 and pipe.calls[0]["callback"] is None  # the warm-up is not timed


def test_titles_and_counters_count_the_same_steps(pipe: FakePipe) -> None:
    decodes = C.timed_decodes(pipe, 0, SamplingOptions(steps=2), seed=0)
    assert [d.title for d in decodes] == [
        f"ablation: ARPG weights in raster order, 1 token/step ({N} steps)",
        f"random, 1 token/step ({N} steps)",
        "ARPG, 2 steps",
    ]
    for d in decodes:
        assert f"{d.steps} steps" in d.title
        assert C.panel_text(d, d.steps, 9.0) == (
            f"step {d.steps}/{d.steps}",
            f"forward passes: {d.steps}",
            f"done in {C.seconds(d.seconds)}",
        )
    assert C.panel_text(decodes[0], 3, 0.031) == (f"step 3/{N}", "forward passes: 3", "0.031 s")
    assert C.method_title("arpg", 16, 256) == "ARPG, 16 steps"
    assert C.method_title("raster", 16, 256) == "ablation: ARPG weights in raster order, 1 token/step (256 steps)"


def test_race_frames_complete_in_the_ratio_of_the_times(pipe: FakePipe) -> None:
    cmp = C.compare_decodes(pipe, 0, SamplingOptions(steps=2), seed=0, fps=10)
    tl = cmp.timeline
    assert tl.slow == pytest.approx(1.0 / 0.02)  # ARPG's 20 ms last 1 s on screen
    assert len(cmp.frames) == len(tl) and len({im.size for im in cmp.frames}) == 1
    arrays = [np.asarray(im) for im in cmp.frames]
    done = panel_done_frames(arrays)
    assert done == completion_frames(tl, [d.step_times for d in cmp.decodes])
    assert done[2] < done[0]
    assert done[2] / done[0] == pytest.approx(0.02 / 0.06, abs=1.5 / done[0])
    assert cmp.speedup() == pytest.approx(3.0)
    assert (
        "decode times: raster 0.06 s, random 1/step 0.06 s, ARPG 0.02 s (ARPG 3.0x faster than raster)" == cmp.timings()
    )
    assert cmp.passes() == f"raster / random 1/step / ARPG = {N} / {N} / 2"
    assert cmp.pace() == "played 50.0x slower than real time"


def test_panels_are_at_least_256_px(pipe: FakePipe) -> None:
    cmp = C.compare_decodes(pipe, 0, SamplingOptions(steps=2), seed=0)
    frame = cmp.frames[-1]
    assert frame.width >= 3 * C.PANEL_PX
    arr = np.asarray(frame)
    image = cmp.decodes[0].output.images[0]  # 8 x 12 px
    scale = -(-C.PANEL_PX // 12)
    final = np.repeat(np.repeat(image, scale, 0), scale, 1)  # upscaled (nearest) to >= 256 px wide
    assert final.shape[1] >= C.PANEL_PX
    ys, xs = np.nonzero((arr == final[0, 0]).all(-1))
    y0, x0 = ys.min(), xs.min()
    box = (slice(y0, y0 + final.shape[0]), slice(x0, x0 + final.shape[1]))
    np.testing.assert_array_equal(arr[box], final)
    # mid-race, the panel shows the cells decoded by then, the others checkered
    states = panel_states(cmp.timeline, [d.step_times for d in cmp.decodes])
    i = int(np.argmax((states[:, 0] > 0) & (states[:, 0] < N)))
    want = mask_unknown(final, cmp.decodes[0].step_of < states[i, 0])
    np.testing.assert_array_equal(np.asarray(cmp.frames[i])[box], want)


def test_comparison_animation_gif_and_mp4(pipe: FakePipe, tmp_path: Path) -> None:
    cmp = A.comparison_animation(pipe, 0, tmp_path / "race.gif", SamplingOptions(steps=2), seed=1)
    frames, durations = gif_frames(tmp_path / "race.gif")
    assert durations[:-1] == [cmp.timeline.frame_ms] * (len(frames) - 1)
    assert durations[-1] >= A.RACE_HOLD_S * 1000
    assert panel_done_frames(frames) == completion_frames(cmp.timeline, [d.step_times for d in cmp.decodes])
    assert (tmp_path / "race.gif").stat().st_size < 1_500_000
    import imageio_ffmpeg

    A.comparison_animation(pipe, 0, tmp_path / "race.mp4", SamplingOptions(steps=2), seed=1)
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "race.mp4"))
    meta = next(reader)
    assert meta["fps"] == pytest.approx(cmp.timeline.fps, rel=0.02)
    assert sum(1 for _ in reader) == len(cmp.frames) + round(A.RACE_HOLD_S * cmp.timeline.fps) - 1


def tiny_args(tiny_files: tuple[Path, Path]) -> list[str]:
    return ["--weights", str(tiny_files[0]), "--tokenizer", str(tiny_files[1]), "--device", "cpu"]


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_cli_animate_compare(
    tiny_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture, suffix: str
) -> None:
    out = tmp_path / f"race{suffix}"
    assert cli.main(["animate", "--compare", "--steps", "4", "--out", str(out), *tiny_args(tiny_files)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "forward passes raster / random 1/step / ARPG = 16 / 16 / 4" in printed
    times = {m: float(v) for m, v in re.findall(r"(raster|ARPG) ([0-9.e-]+) s", printed)}
    assert set(times) == {"raster", "ARPG"} and out.stat().st_size > 0
    if suffix == ".gif":  # (a tiny model's times are mostly noise: which panel ends first is tested above)
        frames, durations = gif_frames(out)
        assert len(frames) >= 2 and frames[0].shape[1] >= 3 * 256 and durations[-1] >= A.RACE_HOLD_S * 1000


def test_cli_animate_flags(tiny_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "slow.gif"
    assert (
        cli.main(
            [
                "animate",
                "--compare",
                "--steps",
                "4",
                "--slow",
                "3",
                "--fps",
                "5",
                "--out",
                str(out),
                *tiny_args(tiny_files),
            ]
        )
        == 0
    )
    assert "played 3.0x slower than real time" in capsys.readouterr().out
    for bad, needle in (
        (["--slow", "2"], "--slow only applies"),
        (["--compare", "--slow", "0"], "--slow"),
        (["--fps", "-1"], "--fps"),
    ):
        assert cli.main(["animate", *bad, "--out", str(out), *tiny_args(tiny_files)]) == 2
        assert needle in capsys.readouterr().err


def test_models_race_each_at_their_own_settings_on_one_clock() -> None:
    from arpg.pipeline import Pipeline

    a, b = Pipeline.random("ARPG-tiny", "VQ-tiny"), Pipeline.random("ARPG-tiny", "VQ-tiny", seed=1)
    b.name = "other tiny"
    a.defaults = b.defaults = a.defaults.replace(steps=4)  # a 4x4 grid: at most 16 steps
    cmp = C.compare_models([a, b], 1, steps={"other tiny": 3}, seed=0, slow=2.0)
    assert [d.steps for d in cmp.decodes] == [a.defaults.steps, 3] and cmp.frames
    assert [d.name for d in cmp.decodes] == ["random ARPG-tiny", "other tiny"]
    assert cmp.decodes[1].title == "other tiny (ARPG), 3 steps"
    assert cmp.passes().startswith("random ARPG-tiny / other tiny = ")
    with pytest.raises(ValueError, match="2 to 4 models"):
        C.compare_models([a], 1)


@pytest.mark.slow  # loads both shipped models
def test_animate_races_models_from_the_command_line(tmp_path, capsys) -> None:
    from arpg import cli

    out = tmp_path / "race.gif"
    assert cli.main(["animate", "--models", "digits:4,scenes:2", "--class", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "forward passes shipped digits model / shipped scenes model = 4 / 2" in printed
    assert cli.main(["animate", "--models", "digits", "--out", str(out)]) == 2  # one model is no race
