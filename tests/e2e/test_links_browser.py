"""A shared link in a real browser (headless Chromium): the link of a result's summary opens a fresh page
on the same tab, model, class, seed and settings, and pressing the button there makes the same images."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import RunningApp
from tests.e2e.test_browser import browser, open_page, pytestmark, wait_text  # noqa: F401  (fixture, skip mark)


def summary(page: Any) -> str:
    return page.locator("#generate-info").inner_text()


def gallery_bytes(page: Any) -> list[bytes]:
    images = page.locator("#generate-gallery img")
    images.first.wait_for()
    return [page.request.get(images.nth(i).get_attribute("src")).body() for i in range(images.count())]


def test_a_summary_link_opens_a_page_that_makes_the_same_images(app_server: RunningApp, browser: Any) -> None:  # noqa: F811
    first = open_page(browser, app_server.url)
    first.get_by_role("tab", name="Generate", exact=True).click()
    first.click("#generate-btn")  # a random seed
    wait_text(first, "generate-info", "link to these settings")
    made = summary(first)
    seed = re.search(r"seed (\d+)", made).group(1)
    href = first.locator("#generate-info a", has_text="link to these settings").get_attribute("href")
    assert href.startswith("?tab=generate") and f"seed={seed}" in href
    images = gallery_bytes(first)
    first.close()

    second = open_page(browser, app_server.url.rstrip("/") + "/" + href)
    second.wait_for_timeout(1500)  # the page reads its address once loaded
    second.click("#generate-btn")
    wait_text(second, "generate-info", f"seed {seed}")
    assert summary(second).split(" · ")[:3] == made.split(" · ")[:3]  # class, seed, steps
    assert gallery_bytes(second) == images
    second.close()
