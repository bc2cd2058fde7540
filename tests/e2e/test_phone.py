"""The page on a 390 px phone (headless Chromium): the model line and the Model dropdown one above the
other, each the width of the screen, and the seed above its "Randomize seed" checkbox, nothing clipped."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningApp
from tests.e2e.test_browser import SHOTS, TIMEOUT_MS, browser, pytestmark  # noqa: F401  (fixture, skip mark)

PHONE = {"width": 390, "height": 844}


def box(page: Any, selector: str) -> dict[str, float]:
    return page.locator(selector).first.bounding_box()


def test_the_header_and_the_seed_fit_a_phone(app_server: RunningApp, browser: Any) -> None:  # noqa: F811
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app_server.url, wait_until="load")
        page.wait_for_selector("#generate-btn")
        line, choice = box(page, "#model-line"), box(page, "#model-choice")
        assert line["width"] > 0.75 * PHONE["width"], line  # it was a 70 px column ("paramet-ers")
        assert choice["y"] >= line["y"] + line["height"] - 1 and choice["width"] > 0.75 * PHONE["width"]
        blocks = page.locator(".seed-row").first.locator(":scope > .form > .block")
        seed, randomize = blocks.nth(0).bounding_box(), blocks.nth(1)
        label = randomize.locator(".label-text")
        assert randomize.bounding_box()["y"] >= seed["y"] + seed["height"] - 1  # below the seed, not beside it
        right = label.bounding_box()["x"] + label.bounding_box()["width"]
        assert right <= randomize.bounding_box()["x"] + randomize.bounding_box()["width"]  # not clipped
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(SHOTS / "phone-header.png"))
    finally:
        page.close()
