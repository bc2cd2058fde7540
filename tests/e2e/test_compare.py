"""Compare in a real browser (headless Chromium) on the shipped model: the GIF the page shows
plays the three decodes on one clock, so ARPG's panel completes first, in the ratio of the
decode times the page reports; the GIF stays small, its panels are at least 256 px on screen,
and an MP4 is offered for download."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.conftest import serve
from tests.e2e.test_browser import CHROMIUM, TIMEOUT_MS, browser, open_page, open_tab, shot, wait_text  # noqa: F401
from tests.test_viz_compare import gif_frames, panel_done_frames

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium); the browser test needs it"
)

GIF_MAX_BYTES = 1_500_000
PANEL_PX = 256


@pytest.fixture(scope="module")
def shipped_app() -> Iterator[str]:
    """The app on the shipped digits model (64 px images, 16x16 tokens), on a free port."""
    from arpg.pipeline import Pipeline
    from demo.ui import build_demo

    yield from serve(build_demo(Pipeline.shipped(device="cpu")))


def reported_seconds(info: str) -> dict[str, float]:
    """The decode times of the summary: ``{"raster": 4.48, "ARPG": 0.372, ...}``."""
    times = info.split("decode times:")[1]
    return {name: float(v) for name, v in re.findall(r"(raster|random 1/step|ARPG) ([0-9.e+-]+) s", times)}


def test_compare_plays_the_decodes_on_one_clock(browser: Any, shipped_app: str) -> None:  # noqa: F811
    pg = open_page(browser, shipped_app)
    try:
        open_tab(pg, "Visualize")
        pg.click("#compare-btn")
        wait_text(pg, "visualize-info", "decode times")
        info = pg.locator("#visualize-info").inner_text()
        anim = pg.locator("#visualize-animation img")
        anim.wait_for()
        response = pg.request.get(anim.get_attribute("src"), timeout=TIMEOUT_MS)
        assert response.ok
        data = response.body()
        frames, durations = gif_frames(io.BytesIO(data))
        box = anim.bounding_box()
        shot(pg, "04b-compare")
        download = pg.locator("#visualize-download").inner_text()
    finally:
        pg.close()

    assert len(data) <= GIF_MAX_BYTES, f"GIF of {len(data) / 1e6:.2f} MB"
    seconds = reported_seconds(info)
    assert set(seconds) == {"raster", "random 1/step", "ARPG"}
    raster, _, arpg = panel_done_frames(frames)  # panels: raster, random one at a time, ARPG
    assert 0 < arpg < raster, (arpg, raster)
    # the GIF's clock: each frame starts at the sum of the durations before it (the last frame is held)
    starts = np.concatenate([[0], np.cumsum(durations[:-1])])
    frame_ms = durations[0]
    shown, measured = starts[arpg] / starts[raster], seconds["ARPG"] / seconds["raster"]
    assert shown == pytest.approx(measured, abs=2 * frame_ms / starts[raster] + 0.02), (shown, measured, info)
    assert arpg / raster == pytest.approx(measured, abs=2 / raster + 0.02)  # frames of equal length
    width = frames[0].shape[1]
    assert width >= 3 * PANEL_PX and box["width"] * PANEL_PX / width >= PANEL_PX - 1, (box, width)
    assert ".mp4" in download and "MP4 to download" in info
