"""The app in a real browser (headless Chromium through Playwright): generate, inpaint
with a painted mask, animate the decoding order, open the trade-off plots."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from scripts.screenshots import paint_stroke
from tests.conftest import RunningApp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
TIMEOUT_MS = 120_000

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing "
                                "(apt-get install chromium); the browser test needs it")


@pytest.fixture(scope="module")
def page(app_server: RunningApp) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(app_server.url, wait_until="load")
        pg.wait_for_selector("#generate-btn")
        yield pg
        browser.close()


def wait_text(page: Any, elem_id: str, text: str) -> None:
    page.wait_for_function(
        "([id, text]) => { const e = document.getElementById(id); return e && e.innerText.includes(text); }",
        arg=[elem_id, text], timeout=TIMEOUT_MS)


def open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(400)


def shot(page: Any, name: str, full_page: bool = True) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def test_page_opens_with_header(page: Any) -> None:
    assert "ARPG Sandbox" in page.title()
    header = page.locator("#header").inner_text()
    assert "Randomized parallel decoding" in header and "random ARPG-tiny" in header
    assert "Test notice" in page.locator("#notice").inner_text()
    shot(page, "00-open")


def test_generate_shows_images(page: Any) -> None:
    open_tab(page, "Generate")
    page.click("#generate-btn")
    wait_text(page, "generate-info", "seed")
    images = page.locator("#generate-gallery img")
    images.first.wait_for()
    assert images.count() == 4  # the default number of images
    box = images.first.bounding_box()
    assert box["width"] > 50 and box["height"] > 50
    shot(page, "01-generate")


def test_bad_input_shows_a_message_and_the_app_keeps_working(page: Any) -> None:
    open_tab(page, "Inpaint")
    page.click("#inpaint-btn")  # no image yet
    toast = page.get_by_text("Upload an image first")
    toast.first.wait_for()
    page.wait_for_timeout(600)  # let the message slide in
    shot(page, "02-inpaint-error", full_page=False)  # the message pops up in the visible part
    assert "Traceback" not in page.content()


def test_paint_a_mask_and_inpaint(page: Any) -> None:
    open_tab(page, "Inpaint")
    page.locator("#inpaint-examples table tr").nth(1).click()  # the first example image
    page.wait_for_timeout(1500)
    paint_stroke(page, "inpaint-editor")
    page.click("#inpaint-btn")
    wait_text(page, "inpaint-info", "regenerated")
    info = page.locator("#inpaint-info").inner_text()
    n_new = int(info.split(" of ")[0].split()[-1])
    assert 0 < n_new < 16  # only the painted cells of the 4x4 grid
    page.locator("#inpaint-result img").wait_for()
    shot(page, "03-inpaint")


def test_visualizer_shows_the_animation(page: Any) -> None:
    open_tab(page, "Visualize")
    page.click("#animate-btn")
    wait_text(page, "visualize-info", "seed")
    anim = page.locator("#visualize-animation img")
    anim.wait_for()
    assert ".gif" in (anim.get_attribute("src") or "")
    page.locator("#visualize-heatmap img").wait_for()
    assert ".gif" in page.locator("#visualize-download").inner_text()
    shot(page, "04-visualize")


def test_tradeoff_plots_open(page: Any) -> None:
    open_tab(page, "Trade-offs")
    page.locator("#tradeoffs-published img").wait_for()
    page.locator("#tradeoffs-plot img").wait_for()  # the saved results of the test server
    wait_text(page, "tradeoffs-info", "tiny.json")
    table = page.locator("#tradeoffs-table").inner_text()
    assert "arpg" in table and "raster" in table
    shot(page, "05-tradeoffs")
