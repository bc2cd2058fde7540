"""One clock for decodes of different lengths: which step each decode has reached at a given time.

A decode's ``step_times`` are the wall-clock seconds, counted from the start of its own
``generate`` call, at which the callback of each of its steps fired (increasing, one per
step). Several decodes share one :class:`Timeline`: frame ``i`` shows every decode as it
was ``times[i]`` seconds after it started, so a faster decode completes in an earlier frame
and the others keep decoding. The timeline may be slowed by a constant factor on screen
(``slow``), so that even the fastest decode lasts long enough to be seen.

Pure numpy, no drawing: :mod:`arpg.viz.compare` draws the frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FRAME_MS_UNIT",
    "Timeline",
    "check_step_times",
    "slow_factor",
    "plan_timeline",
    "steps_done",
    "panel_states",
    "completion_frames",
]

FRAME_MS_UNIT = 10  # GIF frame durations are whole centiseconds: on-screen frames are a multiple of this


@dataclass(frozen=True)
class Timeline:
    """Evenly spaced instants of the shared clock and how long each stays on screen.

    Attributes:
        times: ``(n,)`` float seconds of decoding time shown by each frame; ``times[0] == 0``
            and ``times[-1]`` is at or after the end of the longest decode.
        frame_ms: on-screen milliseconds of one frame (a multiple of :data:`FRAME_MS_UNIT`).
        slow: on-screen seconds per second of decoding (>= 1 slows the decodes down).
    """

    times: np.ndarray
    frame_ms: int
    slow: float

    @property
    def fps(self) -> float:
        """Frames per second on screen."""
        return 1000.0 / self.frame_ms

    @property
    def dt(self) -> float:
        """Seconds of decoding between two frames."""
        return self.frame_ms / 1000.0 / self.slow

    def __len__(self) -> int:
        return len(self.times)


def check_step_times(step_times: Sequence[float] | np.ndarray) -> np.ndarray:
    """``step_times`` as a non-empty, non-decreasing float array of seconds >= 0."""
    arr = np.asarray(step_times, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"step_times must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.isfinite(arr).all() or arr[0] < 0 or (np.diff(arr) < 0).any():
        raise ValueError("step_times must be finite, >= 0 and non-decreasing")
    return arr


def slow_factor(durations: Sequence[float], min_on_screen: float = 1.0) -> float:
    """The constant slow-down that shows the fastest decode for at least ``min_on_screen`` seconds
    (1.0, real time, when it already lasts that long)."""
    fastest = min(float(d) for d in durations)
    return max(1.0, min_on_screen / max(fastest, 1e-6))


def _frame_ms(fps: float) -> int:
    """On-screen milliseconds per frame at about ``fps``, a multiple of :data:`FRAME_MS_UNIT` (at least 20)."""
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return max(20, int(round(1000.0 / fps / FRAME_MS_UNIT)) * FRAME_MS_UNIT)


def _n_frames(end: float, dt: float) -> int:
    """The fewest evenly spaced frames ``0, dt, 2 dt, ...`` whose last one is at or after ``end``."""
    n = int(math.floor(end / dt)) + 1
    return n + 1 if (n - 1) * dt < end else n


def plan_timeline(
    durations: Sequence[float],
    fps: float = 8.0,
    slow: float | None = None,
    max_frames: int = 72,
    min_on_screen: float = 1.0,
) -> Timeline:
    """The frames of a shared clock for decodes lasting ``durations`` seconds.

    Args:
        durations: seconds of each decode (the time of its last step).
        fps: frames per second on screen (lowered when the frames would exceed ``max_frames``).
        slow: on-screen seconds per second of decoding; ``None`` picks :func:`slow_factor`
            (the fastest decode lasts ``min_on_screen`` seconds on screen).
        max_frames: the most frames, the first (nothing decoded) and last included.
        min_on_screen: see ``slow``.

    Returns:
        A :class:`Timeline` from 0 to the end of the longest decode.
    """
    if not durations:
        raise ValueError("no decodes to put on a timeline")
    if max_frames < 2:
        raise ValueError("max_frames must be >= 2")
    end = max(float(d) for d in durations)
    slow = slow_factor(durations, min_on_screen) if slow is None else float(slow)
    if not (math.isfinite(slow) and slow > 0):
        raise ValueError(f"slow must be > 0, got {slow}")
    frame_ms = _frame_ms(fps)
    if end > 0 and _n_frames(end, frame_ms / 1000.0 / slow) > max_frames:  # fewer, longer frames
        frame_ms = int(math.ceil(end * slow * 1000.0 / (max_frames - 1) / FRAME_MS_UNIT)) * FRAME_MS_UNIT
    dt = frame_ms / 1000.0 / slow
    n = _n_frames(end, dt) if end > 0 else 1
    return Timeline(np.arange(n) * dt, frame_ms, slow)


def steps_done(step_times: Sequence[float] | np.ndarray, t: float | np.ndarray) -> np.ndarray:
    """How many steps of a decode are done ``t`` seconds after it started: the number of step
    callbacks fired at or before ``t``. That is the decode's frame at time ``t`` (0: nothing
    decoded yet; ``len(step_times)``: complete)."""
    return np.searchsorted(check_step_times(step_times), np.asarray(t, dtype=np.float64), side="right")


def panel_states(timeline: Timeline, step_times: Sequence[Sequence[float] | np.ndarray]) -> np.ndarray:
    """``(n_frames, n_decodes)`` int array: the steps each decode has done in each frame."""
    return np.stack([steps_done(st, timeline.times) for st in step_times], axis=1)


def completion_frames(timeline: Timeline, step_times: Sequence[Sequence[float] | np.ndarray]) -> list[int]:
    """Per decode, the first frame in which all its steps are done."""
    states = panel_states(timeline, step_times)
    return [int(np.argmax(states[:, j] == len(st))) for j, st in enumerate(step_times)]
