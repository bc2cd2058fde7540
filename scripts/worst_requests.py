#!/usr/bin/env python
"""The worst request each endpoint accepts: CPU seconds and peak memory of the server for it.

For every endpoint a few shapes of request that an adversary would try (the largest canvas,
confidence-first order, guidance, every side, the most rounds ...) are sent with as many steps as
the endpoint allows; a request the server refuses as too expensive names the most steps that fit
("try at most N steps"), and the request is sent again with those, so each one measured is one the
server itself accepts at its ceiling (or with every step the grid has). One request at a time
against an otherwise idle server
(``--pid``): CPU seconds from ``/proc/PID/stat``, peak resident memory above the start from
``VmHWM`` (reset through ``clear_refs`` before each request), wall time. The reference is the
costliest Generate request at the ceiling (the plain request the cost model was fitted on); every
endpoint's worst is reported as a multiple of it.

    python app.py --port 7861 &   # serves the shipped models
    python scripts/worst_requests.py --url http://127.0.0.1:7861/ --pid $! --json worst-digits.json
    python scripts/worst_requests.py --url http://127.0.0.1:7861/ --pid $! --model scenes --json worst-scenes.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from arpg.measure.probes import MB, cpu_seconds, reset_peak, rss_bytes

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_STEPS = 4096  # the first try; the server names what fits
TRIES = 4  # refusals followed per request (steps, then the cost ceiling)
FITS = (r"at most (\d+) steps", r"between 1 and (\d+)")  # how a refusal names the most steps

# Each request: the endpoint's parameters by name (the rest keep their defaults); an image (or an
# image editor's background, with a layer painted all over) is named by its size in pixels, "WxH",
# and made here (random colours: nothing about them is cheap).
REQUESTS: dict[str, dict[str, dict[str, Any]]] = {
    "generate": {
        "4 images, random order": dict(n_images=4, order="random"),
        "4 images, confidence-first": dict(n_images=4, order="confidence"),
        "1 image, confidence-first": dict(n_images=1, order="confidence"),
    },
    "inpaint": {
        "whole image, confidence-first": dict(editor="512x512", order="confidence"),
        "whole image, random": dict(editor="512x512", order="random"),
    },
    "outpaint": {
        "4 sides, largest, confidence-first": dict(
            image="512x512", directions=["left", "right", "top", "bottom"], amount=None, order="confidence"
        ),
        "8:1 image to the right, windowed": dict(
            image="4096x512", directions=["right"], amount=None, decoding="windowed", order="random"
        ),
        "8:1 image to the right, whole": dict(
            image="4096x512", directions=["right"], amount=None, decoding="whole", order="random"
        ),
    },
    "panorama": {
        "2:1 image x8, windowed (the most cells)": dict(image="1024x512", side="right", times=8, decoding="windowed"),
        "2:1 image x8, whole": dict(image="1024x512", side="right", times=8, decoding="whole"),
        "square x8, confidence-first": dict(image="512x512", side="right", times=8, order="confidence"),
        "1:8 image downwards x8": dict(image="512x4096", side="bottom", times=8),
    },
    "resize": {
        "x4 re-encode, all regenerated": dict(image="512x512", scale=4.0, strategy="reencode", regenerate=1.0),
        "x4 lattice": dict(image="512x512", scale=4.0, strategy="lattice"),
        "4:1 image x2 re-encode": dict(image="2048x512", scale=2.0, strategy="reencode", regenerate=1.0),
        "x4 re-encode, whole": dict(image="512x512", scale=4.0, strategy="reencode", regenerate=1.0, decoding="whole"),
    },
    "animate": {
        "confidence-first": dict(order="confidence"),
        "random": dict(order="random"),
    },
    "side_by_side": {
        "confidence-first and random": dict(order="confidence", second="random"),
    },
    "compare": {"the race": dict()},
}
# Measure runs several decodes and a quality sample, under its own ceiling (estimated seconds,
# ``ARPG_MAX_MEASURE_S``): these plans, largest first; the first the server accepts is measured.
MEASURE_PLANS: list[dict[str, Any]] = [
    dict(batches=[1, 4], steps=[8, 16, 32, 64], raster=True, repeats=1, orders=[], per_class=8),
    dict(batches=[1, 4], steps=[8, 16, 32, 64], raster=True, repeats=1, orders=[], per_class=6),
    dict(batches=[4], steps=[8, 16, 32, 64], raster=True, repeats=1, orders=[], per_class=5),
    dict(batches=[4], steps=[8, 16, 32], raster=True, repeats=1, orders=[], per_class=5),
    dict(batches=[4], steps=[8, 16, 32], raster=True, repeats=1, orders=[], per_class=4),
]


# -- the server process ------------------------------------------------------------------------------------
def memory(pid: int, key: str) -> int:
    """:func:`arpg.measure.probes.rss_bytes`, refusing to go on without a reading (the results would be wrong)."""
    value = rss_bytes(pid, key)
    if value is None:
        raise RuntimeError(f"no {key} for process {pid}")
    return value


# -- requests ---------------------------------------------------------------------------------------------
def image_file(size: str, folder: Path) -> str:
    w, h = (int(v) for v in size.split("x"))
    path = folder / f"{size}.png"
    if not path.exists():
        Image.fromarray(np.random.default_rng(w * h).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return str(path)


def editor(size: str, folder: Path) -> dict[str, Any]:
    """An image editor value: the background and one layer painted all over (the whole image regenerated)."""
    from gradio_client import handle_file

    w, h = (int(v) for v in size.split("x"))
    layer = folder / f"brush-{size}.png"
    if not layer.exists():
        Image.new("RGBA", (w, h), (255, 46, 136, 255)).save(layer)
    return {"background": handle_file(image_file(size, folder)), "layers": [handle_file(str(layer))], "composite": None}


def arguments(
    params: list[dict[str, Any]], asked: dict[str, Any], steps: int, folder: Path, model: str | None = None
) -> dict[str, Any]:
    """Keyword arguments of one call: ``asked`` by name, ``steps``, a fixed seed, the model when
    named; images made here."""
    from gradio_client import handle_file

    names = {p["parameter_name"] for p in params}
    values = dict(asked)
    if "image" in asked:
        values["image"] = handle_file(image_file(asked["image"], folder))
    if "editor" in asked:
        values["editor"] = editor(asked["editor"], folder)
    values.update(steps=steps, seed=1, randomize=False)
    if model:
        values["model"] = model
    unknown = set(values) - names
    if unknown:
        raise SystemExit(f"the endpoint has no parameter {sorted(unknown)}; it has {sorted(names)}")
    return values


def fitting_steps(message: str) -> int | None:
    for pattern in FITS:
        found = re.search(pattern, message)
        if found:
            return int(found.group(1))
    return None


def timed(pid: int, call: Any, **kwargs: Any) -> dict[str, Any]:
    """Run ``call(**kwargs)`` (one request); the server's CPU seconds, wall time and peak memory above its start."""
    start_rss, start_cpu, t0 = memory(pid, "VmRSS"), cpu_seconds(pid), time.perf_counter()
    reset_peak(pid)
    call(**kwargs)
    return {
        "cpu_s": round(cpu_seconds(pid) - start_cpu, 2),
        "wall_s": round(time.perf_counter() - t0, 2),
        "peak_mb": round((memory(pid, "VmHWM") - start_rss) / MB, 1),
    }


def measure_one(
    client: Any, pid: int, endpoint: str, params: list[dict], asked: dict, folder: Path, model: str | None
) -> dict:
    """Send the request with the most steps the server accepts; its cost to the server."""
    steps, refusals = MAX_STEPS, []
    for _ in range(TRIES):
        kwargs = arguments(params, asked, steps, folder, model)
        try:
            cost = timed(pid, client.predict, **kwargs, api_name=f"/{endpoint}")
        except Exception as err:  # a refusal: follow the number of steps it names
            fits = fitting_steps(str(err))
            refusals.append(str(err)[:200])
            if fits is None or fits >= steps:
                return {"accepted": False, "refusals": refusals}
            steps = fits
            continue
        return {"accepted": True, "steps": steps, **cost, "refusals": refusals}
    return {"accepted": False, "refusals": refusals}


def measure_measure(client: Any, pid: int, model: str | None) -> dict[str, Any]:
    """The largest of :data:`MEASURE_PLANS` the server's Measure ceiling accepts, and its cost."""
    refusals = []
    for plan in MEASURE_PLANS:
        extra = {"model": model} if model else {}
        try:
            cost = timed(pid, client.predict, **plan, **extra, api_name="/measure")
        except Exception as err:  # over the ceiling: the next, smaller plan
            refusals.append(str(err)[:200])
            continue
        return {"asked": plan, "accepted": True, "steps": max(plan["steps"]), **cost, "refusals": refusals}
    return {"asked": MEASURE_PLANS[-1], "accepted": False, "refusals": refusals}


def run(url: str, pid: int, only: list[str] | None, folder: Path, model: str | None) -> dict[str, Any]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    results: dict[str, Any] = {}
    for endpoint, shapes in REQUESTS.items():
        if only and endpoint not in only:
            continue
        for name, asked in shapes.items():
            got = measure_one(client, pid, endpoint, api[f"/{endpoint}"]["parameters"], asked, folder, model)
            results.setdefault(endpoint, {})[name] = {"asked": asked, **got}
            print(f"{endpoint:13s} {name:42s} {summary(got)}", flush=True)
    if not only or "measure" in only:
        got = measure_measure(client, pid, model)
        results["measure"] = {"the largest plan under the ceiling": got}
        print(f"{'measure':13s} {'the largest plan under the ceiling':42s} {summary(got)}", flush=True)
    return results


def summary(got: dict[str, Any]) -> str:
    if not got["accepted"]:
        return "refused: " + (got["refusals"][-1] if got["refusals"] else "?")
    return f"{got['steps']:4d} steps  {got['cpu_s']:7.2f} CPU-s  {got['wall_s']:6.2f} s  +{got['peak_mb']:.0f} MB"


def worst(results: dict[str, Any]) -> dict[str, Any]:
    """Per endpoint the accepted request with the most CPU seconds, as a multiple of the reference."""
    generate = [r for r in results.get("generate", {}).values() if r["accepted"]]
    ref = max(generate, key=lambda r: r["cpu_s"]) if generate else {}
    out = {}
    for endpoint, shapes in results.items():
        accepted = [(name, r) for name, r in shapes.items() if r["accepted"]]
        if not accepted:
            continue
        name, r = max(accepted, key=lambda item: item[1]["cpu_s"])
        ratio = r["cpu_s"] / ref["cpu_s"] if ref.get("cpu_s") else None
        out[endpoint] = {"request": name, "cpu_s": r["cpu_s"], "peak_mb": r["peak_mb"], "x_reference": ratio}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the running app (loopback only)")
    p.add_argument("--pid", type=int, required=True, help="its process id (CPU and memory are read from /proc)")
    p.add_argument("--endpoints", nargs="*", help="only these (default: all)")
    p.add_argument("--model", help="the model each request names (default: the app's first)")
    p.add_argument("--json", type=Path, help="write the results here")
    a = p.parse_args(argv)
    if urlparse(a.url).hostname not in LOOPBACK:
        p.error("--url must be on this machine (127.0.0.1, localhost or ::1)")
    if not Path(f"/proc/{a.pid}/stat").exists():
        p.error(f"no process {a.pid} (the app's process id; Linux only)")
    if not os.access(f"/proc/{a.pid}/clear_refs", os.W_OK):
        p.error(f"cannot reset the peak memory of process {a.pid} (/proc/{a.pid}/clear_refs): run as its owner")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results = run(a.url, a.pid, a.endpoints, Path(tmp), a.model)
    report = {
        "command": "python scripts/worst_requests.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "requests": results,
        "worst": worst(results),
    }
    for endpoint, w in report["worst"].items():
        ratio = f"{w['x_reference']:.1f}x" if w["x_reference"] else "?"
        cost = f"{w['cpu_s']:7.2f} CPU-s  +{w['peak_mb']:.0f} MB"
        print(f"worst {endpoint:13s} {cost}  {ratio} the reference  ({w['request']})")
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
