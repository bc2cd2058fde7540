"""Fast tests of arpg.viz.timeline: frames at given times -> which frame of each panel shows when."""

from __future__ import annotations

import numpy as np
import pytest

from arpg.viz import timeline as T

# two decodes with step times exactly between the frames of a 0.1 s clock
FAST = [0.05, 0.15, 0.25, 0.35]  # 4 steps, done at 0.35 s
SLOW = [0.05 + 0.1 * k for k in range(16)]  # 16 steps, done at 1.55 s


def test_steps_done_counts_the_callbacks_fired_by_then() -> None:
    times = [0.1, 0.2, 0.3]
    assert T.steps_done(times, 0.0) == 0
    assert T.steps_done(times, 0.1) == 1  # a step whose callback fired exactly then is shown
    assert T.steps_done(times, 0.25) == 2
    assert T.steps_done(times, 5.0) == 3
    np.testing.assert_array_equal(T.steps_done(times, np.array([0.0, 0.15, 0.3, 0.31])), [0, 1, 3, 3])


def test_panels_on_one_clock() -> None:
    tl = T.plan_timeline([FAST[-1], SLOW[-1]], fps=5, slow=2.0)  # 200 ms on screen = 0.1 s of decoding
    assert tl.frame_ms == 200 and tl.dt == pytest.approx(0.1) and tl.fps == 5.0
    assert len(tl) == 17 and tl.times[0] == 0 and tl.times[-1] >= SLOW[-1]
    states = T.panel_states(tl, [FAST, SLOW])
    assert states.shape == (17, 2)
    np.testing.assert_array_equal(states[:, 0], [0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    np.testing.assert_array_equal(states[:, 1], np.arange(17))
    assert T.completion_frames(tl, [FAST, SLOW]) == [4, 16]
    assert 4 / 16 == pytest.approx(FAST[-1] / SLOW[-1], abs=1 / 16 + 0.03)  # frames in the ratio of the times


def test_each_frame_shows_the_state_at_its_instant() -> None:
    rng = np.random.default_rng(1)
    a = np.cumsum(rng.uniform(0.001, 0.02, 30))
    b = np.cumsum(rng.uniform(0.001, 0.002, 5))
    tl = T.plan_timeline([a[-1], b[-1]], fps=8)
    states = T.panel_states(tl, [a, b])
    for i, t in enumerate(tl.times):
        assert states[i, 0] == int((a <= t).sum()) and states[i, 1] == int((b <= t).sum())
    assert (np.diff(states, axis=0) >= 0).all() and (states[0] == 0).all()
    assert (states[-1] == [30, 5]).all()  # every decode completes by the last frame
    done = T.completion_frames(tl, [a, b])
    assert done[1] < done[0] == len(tl) - 1
    assert tl.times[done[1] - 1] < b[-1] <= tl.times[done[1]]


def test_slow_factor_shows_the_fastest_decode_for_a_second() -> None:
    assert T.slow_factor([2.0, 0.25]) == pytest.approx(4.0)
    assert T.slow_factor([3.0, 1.5]) == 1.0  # long enough already: real time
    tl = T.plan_timeline([2.0, 0.25], fps=10)
    assert tl.slow == pytest.approx(4.0)
    assert tl.times[T.completion_frames(tl, [[0.25], [2.0]])[0]] * tl.slow >= 1.0  # >= 1 s on screen


def test_long_races_get_fewer_longer_frames() -> None:
    tl = T.plan_timeline([10.0, 0.1], fps=8, max_frames=72)  # 100 s on screen at 8 fps would be 800 frames
    assert len(tl) <= 72 and tl.times[-1] >= 10.0
    assert tl.frame_ms % T.FRAME_MS_UNIT == 0 and tl.frame_ms > 125
    assert tl.times[-2] < 10.0  # no frame wasted after the end


@pytest.mark.parametrize("fps,frame_ms", [(8, 120), (6, 170), (10, 100), (100, 20)])
def test_frame_durations_are_whole_centiseconds(fps: float, frame_ms: int) -> None:
    assert T.plan_timeline([1.0], fps=fps, slow=1.0, max_frames=10_000).frame_ms == frame_ms


def test_a_clock_that_ends_on_a_frame_still_reaches_the_end() -> None:
    for end in (0.3, 0.7, 1.1, 2.9, 0.1 * 3):
        tl = T.plan_timeline([end], fps=10, slow=1.0)
        assert tl.times[-1] >= end and (len(tl) < 2 or tl.times[-2] < end)
        assert T.completion_frames(tl, [[end]]) == [len(tl) - 1]


def test_bad_inputs() -> None:
    for bad in ([], [0.2, 0.1], [-0.1], [float("nan")], [[0.1]]):
        with pytest.raises(ValueError):
            T.check_step_times(bad)
    with pytest.raises(ValueError):
        T.plan_timeline([])
    with pytest.raises(ValueError):
        T.plan_timeline([1.0], fps=0)
    with pytest.raises(ValueError):
        T.plan_timeline([1.0], slow=0)
    with pytest.raises(ValueError):
        T.plan_timeline([1.0], max_frames=1)
