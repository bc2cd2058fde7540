"""Measure and the shown images in a real browser (headless Chromium) on the shipped model: the
time estimate appears before Measure runs, a progress bar while it runs, then judge accuracy and
Frechet distance per step count; the published figure's title is clear of the image toolbar;
generated images come at their native pixels, drawn enlarged and crisp, all four on a phone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import serve
from tests.e2e.test_browser import CHROMIUM, browser, open_page, open_tab, shot, wait_text  # noqa: F401

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium); the browser test needs it"
)


@pytest.fixture(scope="module")
def shipped_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on the shipped digits model (it has a judge), no saved benchmark results."""
    from arpg.pipeline import Pipeline
    from demo.ui import build_demo

    yield from serve(build_demo(Pipeline.shipped(device="cpu"), benchmarks_dir=tmp_path_factory.mktemp("no-results")))


def tick(page: Any, group: str, label: str) -> None:
    """Click the checkbox ``label`` of the checkbox group ``#group``."""
    page.locator(f"#{group} label").filter(has_text=label).first.click()


def table_rows(page: Any, elem_id: str) -> list[list[str]]:
    """The rows of the data frame ``#elem_id`` as texts (its drawn rows: gradio's table is virtual)."""
    rows = page.locator(f"#{elem_id} .virtual-row")
    return [[t.strip() for t in rows.nth(i).locator("[role=gridcell]").all_inner_texts()] for i in range(rows.count())]


def watch_progress(page: Any, elem_id: str) -> None:
    """Make the page remember (``window.sawProgress``) whether a progress bar shows on ``#elem_id``."""
    page.evaluate(
        """id => {
        window.sawProgress = false;
        const seen = () => document.querySelector(`#${id} .progress-text, #${id} .eta-bar, #${id} .progress-bar`);
        new MutationObserver(() => { if (seen()) window.sawProgress = true; })
            .observe(document.body, {childList: true, subtree: true, attributes: true});
    }""",
        elem_id,
    )


def small_settings(page: Any) -> None:
    """Batch 4 only, 8 steps only, no raster row, one image per class: a measurement of seconds."""
    tick(page, "measure-steps", "16")
    tick(page, "measure-steps", "32")
    page.get_by_label("Also raster order").uncheck()
    box = page.locator("#measure-sample input[type=number]")
    box.fill("1")
    box.press("Enter")


def test_measure_reports_accuracy_and_frechet_after_an_estimate(browser: Any, shipped_url: str) -> None:  # noqa: F811
    pg = open_page(browser, shipped_url)
    try:
        open_tab(pg, "Trade-offs")
        wait_text(pg, "measure-estimate", "Estimated time")  # before anything runs
        assert "quality of 40 images per row" in pg.locator("#measure-estimate").inner_text()  # the defaults
        small_settings(pg)
        wait_text(pg, "measure-estimate", "quality of 10 images per row")  # said again for the new settings
        watch_progress(pg, "tradeoffs-plot")
        pg.click("#measure-btn")
        wait_text(pg, "tradeoffs-info", "Measured on this machine")
        assert pg.evaluate("() => window.sawProgress"), "no progress bar while measuring"
        info = pg.locator("#tradeoffs-info").inner_text()
        assert "judge accuracy and Fréchet distance of 10 images" in info and "estimated" in info
        headers = pg.locator("#tradeoffs-table thead th").all_inner_texts()
        assert any("seconds per call" in h for h in headers) and any("images/s" in h for h in headers)
        arpg = table_rows(pg, "tradeoffs-table")[0]
        assert arpg[:3] == ["arpg", "8", "4"]
        accuracy, frechet = float(arpg[-2]), float(arpg[-1])
        assert 0 <= accuracy <= 1 and frechet > 0
        orders = table_rows(pg, "measure-orders-table")[0]
        assert orders[:4] == ["random", "8", "10", "10"] and float(orders[4]) == accuracy  # its batch: 10 images
        shot(pg, "10-measure")
    finally:
        pg.close()


def test_published_title_is_clear_of_the_image_toolbar(browser: Any, shipped_url: str) -> None:  # noqa: F811
    from demo.tabs.tradeoffs_results import TOOLBAR_ROOM

    pg = open_page(browser, shipped_url)
    try:
        open_tab(pg, "Trade-offs")
        img = pg.locator("#tradeoffs-published img")
        img.wait_for()
        pg.wait_for_function("() => document.querySelector('#tradeoffs-published img').naturalWidth > 0")
        pg.locator("#tradeoffs-published").hover()  # scrolls it into view: every box below is read after
        box = img.bounding_box()
        natural_w, natural_h = img.evaluate("e => [e.naturalWidth, e.naturalHeight]")
        scale = min(1.0, box["width"] / natural_w, box["height"] / natural_h)  # object-fit: scale-down
        top = box["y"] + (box["height"] - natural_h * scale) / 2  # the drawn figure's top edge
        room = round(TOOLBAR_ROOM * natural_w) * scale  # the white band above the title, on screen
        icons = pg.locator("#tradeoffs-published .icon-button")
        buttons = [icons.nth(i).bounding_box() for i in range(icons.count())]
        assert buttons, "the image toolbar was not found"
        assert max(b["y"] + b["height"] for b in buttons) <= top + room + 1
        shot(pg, "11-published", full_page=False)
        wait_text(pg, "measure-estimate", "Estimated time")  # (no decode left running when the server stops)
    finally:
        pg.close()


def test_a_phone_shows_all_four_images_crisp_at_native_pixels(browser: Any, shipped_url: str) -> None:  # noqa: F811
    pg = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        pg.goto(shipped_url, wait_until="load")
        pg.wait_for_selector("#generate-btn")
        pg.click("#generate-btn")
        wait_text(pg, "generate-info", "seed")
        gallery = pg.locator("#generate-gallery")
        images = gallery.locator("img")
        images.nth(3).wait_for()
        frame = gallery.bounding_box()
        for i in range(4):
            b = images.nth(i).bounding_box()
            assert b["width"] >= 100, f"image {i} is {b['width']:.0f} px wide"
            assert frame["x"] <= b["x"] and b["x"] + b["width"] <= frame["x"] + frame["width"] + 1, f"image {i}"
            assert b["y"] + b["height"] <= frame["y"] + frame["height"] + 1, f"image {i} is below the gallery"
        natural, rendering = images.first.evaluate("e => [e.naturalWidth, getComputedStyle(e).imageRendering]")
        assert natural == 64 and rendering == "pixelated"  # native pixels, enlarged without blur
        shot(pg, "12-phone-generate")
    finally:
        pg.close()
