"""The app in a real browser (headless Chromium through Playwright): generate, inpaint
with a painted mask, animate the decoding order, open the trade-off plots, switch models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningApp, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
TIMEOUT_MS = 120_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium); the browser test needs it"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_page(browser: Any, url: str) -> Any:
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(url, wait_until="load")
    pg.wait_for_selector("#generate-btn")
    return pg


@pytest.fixture(scope="module")
def page(app_server: RunningApp, browser: Any) -> Iterator[Any]:
    pg = open_page(browser, app_server.url)
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def models_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second app: the shipped model first, and a fake ARPG-L (a tiny 1000-class model, 16 px
    images) in a hub cache, offered by the Model dropdown."""
    from arpg.pipeline import Pipeline
    from arpg.store import ModelStore
    from demo.ui import build_demo
    from tests.test_hub import fake_hub_cache

    cache = fake_hub_cache(tmp_path_factory.mktemp("models") / "hub", num_classes=1000)
    yield from serve(build_demo(ModelStore(Pipeline.shipped(device="cpu"), device="cpu", cache_dir=cache)))


def wait_text(page: Any, elem_id: str, text: str) -> None:
    page.wait_for_function(
        "([id, text]) => { const e = document.getElementById(id); return e && e.innerText.includes(text); }",
        arg=[elem_id, text],
        timeout=TIMEOUT_MS,
    )


def open_tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(400)


def paint_stroke(page: Any, elem_id: str) -> None:
    """A diagonal brush stroke over the middle of the image editor ``#elem_id``."""
    canvas = page.locator(f"#{elem_id} canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 50, cy - 40)
    page.mouse.down()
    for k in range(1, 21):
        page.mouse.move(cx - 50 + 5 * k, cy - 40 + 4 * k)
    page.mouse.up()
    page.wait_for_timeout(300)


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
    wait_text(page, "inpaint-info", " tokens regenerated in ")
    info = page.locator("#inpaint-info").inner_text()
    assert " tokens regenerated in " in info, info
    n_new = int(info.split(" tokens regenerated")[0].split(" of ")[-2].split()[-1])
    assert 0 < n_new < 16  # only the painted cells of the 4x4 grid
    page.locator("#inpaint-result img").first.wait_for()  # a before/after slider: the image and the result
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


def choose(page: Any, elem_id: str, option: str, typed: str | None = None) -> None:
    """Open the dropdown ``#elem_id`` (typing ``typed`` to filter it) and pick ``option``."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    if typed is not None:
        box.fill("")
        box.press_sequentially(typed, delay=30)  # key by key, as a person types: the list filters
    page.get_by_role("option", name=option, exact=True).click()


def test_the_model_dropdown_switches_models_and_their_class_names(browser: Any, models_app: str) -> None:
    pg = open_page(browser, models_app)
    try:
        assert "shipped digits model" in pg.locator("#model-line").inner_text()
        assert pg.locator("#generate-class input").input_value() == "zero"
        pg.locator("#model-choice input").click()
        pg.get_by_role("option", name="ARPG-L", exact=True).wait_for()
        shot(pg, "06-model-choice", full_page=False)
        pg.get_by_role("option", name="ARPG-L", exact=True).click()
        wait_text(pg, "model-line", "Model: ARPG-L")  # (while it loads the line says "Loading ARPG-L …")
        assert "1000 classes" in pg.locator("#model-line").inner_text()
        pg.wait_for_function("() => document.querySelector('#generate-class input').value === 'tench'")
        choose(pg, "generate-class", "golden retriever", typed="golden")  # searchable ImageNet names
        pg.click("#generate-btn")
        wait_text(pg, "generate-info", "golden retriever")
        pg.locator("#generate-gallery img").first.wait_for()
        shot(pg, "07-model-arpg-l")
        choose(pg, "model-choice", "shipped digits model")
        wait_text(pg, "model-line", "Model: shipped digits model")
        pg.wait_for_function("() => document.querySelector('#generate-class input').value === 'zero'")
        pg.locator("#generate-class input").click()
        assert pg.get_by_role("option", name="nine", exact=True).count() == 1
        assert pg.get_by_role("option", name="golden retriever", exact=True).count() == 0
    finally:
        pg.close()
