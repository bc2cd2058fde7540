"""The Inpaint tab's image editor in a real browser: "Use last generated image" after an earlier inpaint
loads the new image at once, a stroke painted on it is the mask (it spun 20 s and more, the stroke was
lost and Inpaint said "The mask is empty", 3 times of 3), and no event shows its progress on the editor."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunningApp
from tests.e2e.test_browser import browser, open_page, open_tab, paint_stroke, pytestmark, shot, wait_text  # noqa: F401


def generate(page: Any) -> None:
    open_tab(page, "Generate")
    before = page.locator("#generate-info").inner_text()
    page.click("#generate-btn")
    page.wait_for_function(
        "(before) => { const t = document.getElementById('generate-info').innerText; "
        "return t !== before && t.includes('seed'); }",
        arg=before,
    )


def inpaint_last(page: Any) -> str:
    """Use the last generated image, paint a stroke at once, press Inpaint: the new summary."""
    open_tab(page, "Inpaint")
    before = page.locator("#inpaint-info").inner_text()
    page.click("#inpaint-use-last")
    page.locator("#inpaint-editor canvas").first.wait_for()
    page.wait_for_timeout(1500)  # the image drawn into the canvas
    paint_stroke(page, "inpaint-editor")
    page.click("#inpaint-btn")
    page.wait_for_function(
        "(before) => { const t = document.getElementById('inpaint-info').innerText; "
        "return (t !== before && t.includes(' tokens regenerated in ')) "
        "|| document.body.innerText.includes('mask is empty'); }",
        arg=before,
    )
    assert "The mask is empty" not in page.locator("body").inner_text()
    return page.locator("#inpaint-info").inner_text()


def test_use_last_after_an_inpaint_loads_the_image_and_takes_the_stroke(app_server: RunningApp, browser: Any) -> None:  # noqa: F811
    page = open_page(browser, app_server.url)
    try:
        generate(page)
        first = inpaint_last(page)
        generate(page)
        second = inpaint_last(page)
        assert " tokens regenerated in " in first and " tokens regenerated in " in second and first != second
        shot(page, "03b-inpaint-twice")
    finally:
        page.close()
