#!/usr/bin/env python
"""Generate under load, with request batching on and off: images/s and latency of concurrent clients.

For each mode the app is started as a visitor's Space runs it (``python app.py``, its own process,
the shipped model), with ``$ARPG_BATCH_WAIT_MS`` set to the mode's wait (0 = off); ``--clients``
gradio_client users then each ask Generate ``--requests`` times for ``--images`` images at
``--steps`` steps, all at once. Reported per mode: images/s over the whole run, request latency
p50/p90/max, the app's resident memory after the run, and the speed-up of batching.

    python scripts/batch_load.py --clients 8 --images 4 --steps 32 --requests 4 \
        --json docs/benchmarks/batch-load.json

``--url`` measures one running app instead (one mode, whatever it was started with).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from arpg.measure.probes import MB, machine_info, rss_bytes  # noqa: E402
from arpg.measure.timing import percentile  # noqa: E402
from arpg.serve import DEFAULT_MAX_BATCH, DEFAULT_WAIT_MS, ENV_MAX_BATCH, ENV_WAIT  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict[str, str], timeout: float = 300.0) -> tuple[subprocess.Popen, str]:
    """``python app.py`` on a free loopback port with ``env`` added; (process, url) once it answers."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"error: the app exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    proc.terminate()
    raise SystemExit(f"error: the app did not answer within {timeout:.0f} s")


def new_client(url: str) -> Any:
    """A gradio client with patient timeouts (a loaded machine answers slowly, it does not fail)."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 300})


def client(c: Any, a: argparse.Namespace, index: int, start: threading.Barrier, out: list) -> None:
    """One visitor: its own client, ``a.requests`` Generate calls in a row; latencies go to ``out``."""
    start.wait()
    for r in range(a.requests):
        t0 = time.monotonic()
        try:
            c.predict(f"{(index + r) % 10}", a.images, 1000 * index + r, False, steps=a.steps, api_name="/generate")
            out.append(("ok", time.monotonic() - t0))
        except Exception as exc:  # the app answered with an error: counted, never hidden
            out.append((f"{type(exc).__name__}: {str(exc)[:160]}", time.monotonic() - t0))


def load(url: str, a: argparse.Namespace, pid: int | None) -> dict[str, Any]:
    """One warm-up call, then every client at once; the numbers of the run."""
    clients = [new_client(url) for _ in range(a.clients)]  # one after another, before the clock starts
    clients[0].predict("0", a.images, 0, False, steps=a.steps, api_name="/generate")
    out: list[tuple[str, float]] = []
    start = threading.Barrier(a.clients + 1)
    threads = [threading.Thread(target=client, args=(c, a, i, start, out), daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    ok = [s for status, s in out if status == "ok"]
    rss = rss_bytes(pid) if pid is not None else None  # the app's, never this process's
    return {
        "requests": len(out),
        "ok": len(ok),
        "errors": [status for status, _ in out if status != "ok"][:5],
        "wall_s": round(wall, 3),
        "images_per_s": round(len(ok) * a.images / wall, 3),
        "latency_p50_s": percentile(ok, 0.5),
        "latency_p90_s": percentile(ok, 0.9),
        "latency_max_s": max(ok, default=None),
        "app_rss_mb": None if rss is None else rss / MB,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8, help="concurrent visitors")
    p.add_argument("--requests", type=int, default=4, help="Generate calls per visitor, one after another")
    p.add_argument("--images", type=int, default=4, help="images per call")
    p.add_argument("--steps", type=int, default=32, help="decoding steps per call")
    p.add_argument("--wait-ms", type=float, default=DEFAULT_WAIT_MS, help="batching's wait in the 'on' mode")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="images per decode in the 'on' mode")
    p.add_argument("--modes", default="off,on", help="comma-separated: off, on")
    p.add_argument("--url", help="measure this running app (loopback) instead of starting one per mode")
    p.add_argument("--json", help="write the report here")
    a = p.parse_args(argv)
    a.modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    if not a.modes or set(a.modes) - {"off", "on"}:
        p.error("--modes takes off and/or on")
    if min(a.clients, a.requests, a.images, a.steps, a.max_batch) < 1 or a.wait_ms <= 0:
        p.error("--clients, --requests, --images, --steps, --max-batch and --wait-ms must be positive")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    report: dict[str, Any] = {"command": " ".join(["python", "scripts/batch_load.py", *sys.argv[1:]])}
    report.update(clients=a.clients, requests_per_client=a.requests, images=a.images, steps=a.steps)
    report["machine"] = machine_info(torch.device("cpu"))
    if a.url:
        report["url"] = load(a.url, a, None)
    for mode in [] if a.url else a.modes:
        env = {ENV_WAIT: "0" if mode == "off" else str(a.wait_ms), ENV_MAX_BATCH: str(a.max_batch)}
        proc, url = start_app(env)
        try:
            report[mode] = {**load(url, a, proc.pid), "env": env}
        finally:
            proc.terminate()
            proc.wait(60)
        print(mode, json.dumps(report[mode]))
    if "on" in report and "off" in report and report["off"]["images_per_s"]:
        report["speedup"] = round(report["on"]["images_per_s"] / report["off"]["images_per_s"], 3)
        print(f"batching: {report['speedup']}x the images/s")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {a.json}")
    return 0 if all(report[m]["ok"] == report[m]["requests"] for m in report if m in ("on", "off", "url")) else 1


if __name__ == "__main__":
    sys.exit(main())
