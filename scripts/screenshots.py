"""Screenshots of every tab of the app, and of the Model dropdown open, for the documentation.

Starts the app in this process on the chosen model (default: the shipped model, with the
app's usual fallbacks, and the other models the app offers), drives each tab with headless
Chromium (Playwright) so it shows a result, saves ``<out>/<tab>.png`` (and ``<out>/model.png``)
and stops the app::

    python scripts/screenshots.py                    # shipped model -> docs/screenshots/
    python scripts/screenshots.py --random digits    # an untrained model of the same shape
    python scripts/screenshots.py --weights ARPG-L --out /tmp/shots
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# In the order they are captured: Outpaint's and Resolution's scene examples switch the session to the
# scenes model (when it ships), so the tabs shown on the first model come first.
TABS = ("generate", "inpaint", "visualize", "tradeoffs", "outpaint", "resolution")
SCREENS = (*TABS, "model", "phone")  # "model": the header's Model dropdown, open; "phone": the page at 390 px
PHONE = {"width": 390, "height": 844}
TAB_LABELS = {
    "generate": "Generate",
    "inpaint": "Inpaint",
    "outpaint": "Outpaint",
    "resolution": "Resolution",
    "visualize": "Visualize",
    "tradeoffs": "Trade-offs",
}
log = logging.getLogger("screenshots")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", help="ARPG checkpoint (path, hf://org/repo/file or ARPG-L/XL/XXL)")
    p.add_argument("--tokenizer", help="VQ tokenizer checkpoint")
    p.add_argument("--device", default=None, help="cpu or cuda")
    p.add_argument("--random", choices=["tiny", "digits"], help="use an untrained model of this size instead")
    p.add_argument(
        "--offer",
        nargs="*",
        default=["ARPG-L", "ARPG-XL", "ARPG-XXL"],
        help="also list these models in the Model dropdown (loaded only if chosen)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="output folder")
    p.add_argument(
        "--tabs", nargs="+", choices=SCREENS, default=list(SCREENS), help="only these tabs (model: the Model dropdown)"
    )
    p.add_argument("--model", help="pick this model in the Model dropdown first (e.g. the scenes model)")
    p.add_argument("--width", type=int, default=1280, help="browser width in px")
    p.add_argument("--chromium", default=CHROMIUM, help="the Chromium executable")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each result")
    return p.parse_args(argv)


def load_models(a: argparse.Namespace) -> Any:
    """The models the screenshots show (a ModelStore, as the app builds it)."""
    from demo.ui import model_store

    if a.random:
        from arpg.pipeline import Pipeline
        from arpg.store import ModelStore

        pipe = Pipeline.random("ARPG-digits", "VQ-digits") if a.random == "digits" else Pipeline.random()
        pipe.notice = (
            "This is an **untrained, randomly initialised** model: the images are noise; "
            "the app works the same with the trained one."
        )
        return ModelStore(pipe, extra=a.offer, device=a.device)
    return model_store(a.weights, a.tokenizer, device=a.device, offer=a.offer)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_text(page: Any, elem_id: str, text: str, timeout_s: float) -> None:
    """Wait until the element ``#elem_id`` contains ``text``."""
    page.wait_for_function(
        "([id, text]) => { const e = document.getElementById(id); return e && e.innerText.includes(text); }",
        arg=[elem_id, text],
        timeout=timeout_s * 1000,
    )


def open_tab(page: Any, tab: str) -> None:
    page.get_by_role("tab", name=TAB_LABELS[tab], exact=True).click()
    page.wait_for_timeout(600)


def pick_example(page: Any, tab: str) -> bool:
    """Click the first example of the visible tab: a scene's when the app offers the scenes model (the
    click switches to it), else the digits'; False when there is none."""
    for box in (f"{tab}-scenes-examples", f"{tab}-examples"):
        rows = page.locator(f"#{box} table tr")
        if rows.count() >= 2:  # a header and at least one example
            rows.nth(1).click()
            page.wait_for_timeout(3000)  # the example's load, then the model switch it asks for
            return True
    return False


def paint_stroke(page: Any, elem_id: str) -> None:
    """A diagonal brush stroke over the middle of the image editor."""
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


def drive(page: Any, tab: str, timeout_s: float) -> None:
    """Make ``tab`` show a result."""
    if tab == "generate":
        page.click("#generate-btn")
        wait_text(page, "generate-info", "seed", timeout_s)
    elif tab == "inpaint":
        if not pick_example(page, "inpaint"):
            page.click("#inpaint-use-last")
            page.wait_for_timeout(1500)
        paint_stroke(page, "inpaint-editor")
        page.click("#inpaint-btn")
        wait_text(page, "inpaint-info", "regenerated", timeout_s)
    elif tab in ("outpaint", "resolution"):
        if not pick_example(page, tab):
            page.click(f"#{tab}-use-last")
            page.wait_for_timeout(1500)
        page.click(f"#{tab}-btn")
        wait_text(page, f"{tab}-info", "seed", timeout_s)
    elif tab == "visualize":
        page.click("#animate-btn")
        wait_text(page, "visualize-info", "seed", timeout_s)
        page.wait_for_timeout(2500)  # a few frames into the animation
    elif tab == "tradeoffs":
        page.locator("#tradeoffs-published img").wait_for(timeout=timeout_s * 1000)
        wait_text(page, "measure-estimate", "on this machine", timeout_s)  # Measure's estimate (a first calibration)
        page.wait_for_timeout(500)
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)


def load_every_image(page: Any, timeout_s: float) -> None:
    """Scroll through the page so images below the fold load (the page loads them lazily, and a
    full-page screenshot does not scroll), then wait until every visible image has its pixels."""
    height = page.evaluate("document.body.scrollHeight")
    for y in range(0, height + 900, 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(100)
    page.wait_for_function(
        "() => Array.from(document.images).filter(i => i.offsetParent !== null)"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=timeout_s * 1000,
    )
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)


def pick_model(page: Any, name: str, timeout_s: float) -> None:
    """Choose ``name`` in the header's Model dropdown and wait until the model line names it."""
    page.locator("#model-choice input").click()
    page.get_by_role("option", name=name, exact=True).click()
    wait_text(page, "model-line", name, timeout_s)
    page.wait_for_timeout(500)


def shrink(path: Path) -> None:
    """Re-save with an adaptive 256-colour palette (screenshots compress well that way)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def capture(page: Any, screen: str, a: argparse.Namespace) -> Path:
    """Screenshot ``screen`` (a tab with a result, or "model": the Model dropdown open) to ``<out>/<screen>.png``."""
    path = a.out / f"{screen}.png"
    if screen == "model":
        page.evaluate("window.scrollTo(0, 0)")
        page.locator("#model-choice input").click()
        page.get_by_role("option").first.wait_for(timeout=a.timeout * 1000)
        page.wait_for_timeout(400)
        page.screenshot(path=str(path), full_page=False)  # the header and the open list
        page.keyboard.press("Escape")
    elif screen == "phone":
        page.set_viewport_size(PHONE)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(800)
        page.screenshot(path=str(path), full_page=False)  # the header as a phone shows it
        page.set_viewport_size({"width": a.width, "height": 900})
    else:
        open_tab(page, screen)
        drive(page, screen, a.timeout)
        load_every_image(page, a.timeout)
        page.screenshot(path=str(path), full_page=True)
    shrink(path)
    return path


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "localhost,127.0.0.1"
    if not Path(a.chromium).exists():
        log.error("Chromium not found at %s (apt-get install chromium)", a.chromium)
        return 1
    from playwright.sync_api import sync_playwright

    from demo.ui import build_demo, launch_options

    demo = build_demo(load_models(a))
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    a.out.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": a.width, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.wait_for_selector("#generate-btn", timeout=a.timeout * 1000)
            page.wait_for_timeout(1000)
            if a.model:
                pick_model(page, a.model, a.timeout)
            for screen in a.tabs:
                path = capture(page, screen, a)
                log.info("%s (%d kB)", path, path.stat().st_size // 1024)
            browser.close()
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
