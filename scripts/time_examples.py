"""Time example clicks in a real browser: the first click on a row decodes it, a later click on the same
row is answered from memory (demo/instant.py). Against a running app:

    python app.py --port 7870 &
    python scripts/time_examples.py --url http://127.0.0.1:7870/ [--json out.json]

For each example box, rows A and B are clicked in turn (A, B: decoded; A, B again: from memory); a
click's time is from the click until the tab's summary names the row's image file. Then the lookup
a click sends first is timed alone over HTTP (5 calls per clicked row, each answered from memory).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
#: (tab label, sub-tab label or None, examples box, summary element, rows to click)
BOXES = (
    ("Outpaint", None, "outpaint-scenes-examples", "outpaint-info", (0, 1)),
    ("Outpaint", "Panorama", "panorama-scenes-examples", "outpaint-info", (0, 1)),
    ("Resolution", None, "resolution-scenes-examples", "resolution-info", (0, 2)),
)


def click_row(page: Any, box: str, info: str, row: int, timeout_s: float) -> float:
    """Click row ``row`` of ``box``; seconds until ``info`` names the row's image file."""
    cell = page.locator(f"#{box} table tr").nth(row + 1)
    name = cell.locator("img").first.get_attribute("src").split("/")[-1]
    t0 = time.perf_counter()
    cell.click()
    page.wait_for_function(
        "([id, name]) => { const e = document.getElementById(id); return e && e.innerText.includes(name); }",
        arg=[info, name],
        timeout=timeout_s * 1000,
    )
    return time.perf_counter() - t0


def time_box(page: Any, tab: str, sub: str | None, box: str, info: str, rows: tuple, timeout_s: float) -> dict:
    """The clicks on one box: first (decoded) and second (remembered) per row."""
    page.get_by_role("tab", name=tab, exact=True).click()
    if sub:
        page.get_by_role("tab", name=sub, exact=True).click()
    page.wait_for_timeout(500)
    first = [click_row(page, box, info, r, timeout_s) for r in rows]
    second = [click_row(page, box, info, r, timeout_s) for r in rows]
    return {"box": box, "rows": list(rows), "first_click_s": first, "second_click_s": second}


def lookup(url: str, fn_index: int, row: int, model: str, seconds: list[float]) -> bool:
    """One lookup of ``row`` as a session on ``model`` sends it (its time appended to ``seconds``);
    True when the row was answered from memory."""
    import httpx

    body = {"data": [row, model], "fn_index": fn_index, "session_hash": "time-examples"}
    t0 = time.perf_counter()
    r = httpx.post(url.rstrip("/") + "/gradio_api/run/predict", json=body, timeout=60)
    seconds.append(time.perf_counter() - t0)
    return "Same result" in str(r.json()["data"][2])


def time_lookups(url: str, boxes: list[dict], repeats: int = 5) -> list[dict]:
    """Seconds of the HTTP call a click on a clicked row sends first (the lookup outside the queue)."""
    import httpx

    cfg = httpx.get(url.rstrip("/") + "/config", timeout=60).json()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in cfg["components"]}
    choice = next(c["props"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == "model-choice")
    models = [m[1] if isinstance(m, (list, tuple)) else m for m in choice.get("choices") or [choice["value"]]]
    out = []
    for box in boxes:
        dep = next(
            d
            for d in cfg["dependencies"]
            if d.get("queue") is False
            and len(d.get("outputs", [])) == 3
            and str(ids.get(d["outputs"][-1])).endswith("-info")  # the remembered result, not the row's inputs
            and [ids.get(t[0]) for t in d.get("targets") or []] == [box["box"]]
        )
        seconds: list[float] = []
        model = next((m for m in models if lookup(url, dep["id"], box["rows"][0], m, [])), None)  # the clicks' model
        if model is None:
            out.append({"box": box["box"], "error": f"no row in memory for a session on any of {models}"})
            continue
        for _ in range(repeats):
            for row in box["rows"]:
                assert lookup(url, dep["id"], row, model, seconds), "the row was not in memory"
        out.append({"box": box["box"], "model": model, "median_s": statistics.median(seconds), "max_s": max(seconds)})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="the running app")
    p.add_argument("--json", default=None, help="write the timings here (default: print only)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one click's result")
    a = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(a.timeout * 1000)
        page.goto(a.url, wait_until="load")
        page.wait_for_selector("#generate-btn")
        results = [time_box(page, *box, a.timeout) for box in BOXES]
        browser.close()
    out = {
        "command": "python scripts/time_examples.py " + " ".join(argv or sys.argv[1:]),
        "boxes": results,
        "lookups": time_lookups(a.url, results),
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],  # other work on the machine slows the browser most
    }
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
