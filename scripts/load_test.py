#!/usr/bin/env python
"""Load test of the web app: concurrent gradio_client users, a fixed number of requests mixing
the endpoints, bounded in time, on loopback only; optionally the abuse probes.

By default the app runs in this process on a random tiny model (4x4 tokens, 16 px images), started
as ``app.py`` starts it (``demo.server.prepare_process``: its own temporary folder; the fair queue,
the body limit, the purge), so its memory and files can be measured. Against a running app give
``--url http://127.0.0.1:7860/ --pid PID --cache-dir DIR``.

    python scripts/load_test.py --users 12 --requests 96 --probes --purge-age 60 --wait-purge 90
    python app.py & sleep 60  # then, against that process:
    python scripts/load_test.py --url http://127.0.0.1:7860/ --pid $! --users 24 --requests 192 --idle 120
    ARPG_TRUST_PROXY=1 python app.py &  # users from 24 addresses, as behind a Space's proxy:
    python scripts/load_test.py --url http://127.0.0.1:7860/ --pid $! --users 24 --requests 192 --addresses

Reports answered / errors / lost requests and latency percentiles per endpoint; resident memory
before, after the first 20 requests and after all (leak check within ``--leak-tolerance``), its peak
during the requests and, with ``--idle S``, after S seconds without requests (memory the server
gives back once idle: ``demo.server.start_trimming``); in-process figures include the clients and
glibc's default arenas (``app.py`` sets ``MALLOC_ARENA_MAX=2``: set it here too to compare); files
and bytes in the app's temporary folder after the requests, after ``--wait-purge`` s and after
shutdown. ``--probes``: 8 concurrent requests with a 64 MP PNG of 80 kB (peak memory growth),
and a 30 MB image as a ``data:`` URL (HTTP 413); tests/test_server.py shows the fair queue and
clean exits. Exit status 0 when all passed. ``/measure`` only runs when named with ``--endpoints``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from arpg.measure.probes import MB, reset_peak, rss_bytes
from arpg.measure.timing import percentile

DEFAULT_ENDPOINTS = (
    "generate",
    "inpaint",
    "outpaint",
    "panorama",
    "resize",
    "animate",
    "side_by_side",
    "compare",
    "saved_results",
)
ALL_ENDPOINTS = (*DEFAULT_ENDPOINTS, "measure")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MEMORY_AFTER = 20  # the first memory reading is taken after this many answered requests


def usage(folder: str | Path | None) -> tuple[int, int] | None:
    """(files, bytes) under ``folder`` (None when there is no folder to count)."""
    if not folder or not Path(folder).is_dir():
        return None
    sizes = [p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()]
    return len(sizes), sum(sizes)


# -- the app under test ---------------------------------------------------------------------------------
SAMPLE_RESULTS = {  # one saved benchmark result, for /saved_results
    "model": "random ARPG-tiny",
    "machine": "load test",
    "rows": [
        {
            "method": "arpg",
            "steps": s,
            "batch": 1,
            "images_per_s": 40.0 / s,
            "latency_s": s / 40.0,
            "kv_cache_bytes": 4096 * s,
            "per_layer_cache_bytes": 1024 * s,
            "peak_mem_bytes": 10**7,
        }
        for s in (4, 8, 16)
    ],
}


def launch_in_process(workdir: Path, a: argparse.Namespace) -> tuple[str, Callable[[], None]]:
    """Build, harden and launch the app on a random model as ``app.py`` does; (url, close)."""
    from arpg.pipeline import Pipeline
    from demo import server
    from demo.ui import build_demo, launch_options

    bench = workdir / "benchmarks"
    bench.mkdir()
    (bench / "tiny.json").write_text(json.dumps(SAMPLE_RESULTS))
    pipe = Pipeline.random(*({"tiny": ("ARPG-tiny", "VQ-tiny"), "digits": ("ARPG-digits", "VQ-digits")}[a.model]))
    demo = server.harden(build_demo(pipe, benchmarks_dir=bench))  # as app.py serves it (idempotent)
    if (a.purge_every, a.purge_age) != (server.PURGE_EVERY_S, server.PURGE_AGE_S):  # a faster purge, to watch it
        server.start_purging(server.prepare_process(), a.purge_every, a.purge_age, lambda: server.kept_files(demo))
    demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        quiet=True,  # a free port from 7860 on
        **launch_options(app_kwargs=server.app_kwargs()),
    )
    return demo.local_url, demo.close


def write_inputs(folder: Path) -> tuple[str, str, str]:
    """An RGB image, a brush layer (RGBA, one painted square) and an 8000x8000 grey PNG (64 MP)."""
    import numpy as np
    from PIL import Image

    image, brush, bomb = folder / "image.png", folder / "brush.png", folder / "grey-64mp.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image)
    m = np.zeros((64, 64, 4), np.uint8)
    m[8:40, 8:40] = (255, 46, 136, 255)
    Image.fromarray(m).save(brush)
    Image.new("L", (8000, 8000), 128).save(bomb, optimize=True)
    return str(image), str(brush), str(bomb)


def make_request(endpoint: str, rng: random.Random, image: str, brush: str, steps: int) -> tuple[tuple, dict]:
    """Positional and keyword arguments of one call of ``endpoint`` (random class and seed)."""
    from gradio_client import handle_file

    cls, seed = str(rng.randrange(10)), rng.randrange(2**31 - 1)  # a class id: every model here has 10 classes
    opts = dict(steps=steps)
    calls: dict[str, Callable[[], tuple[tuple, dict]]] = {
        "generate": lambda: ((cls, rng.choice([1, 2, 4]), seed, False), opts),
        "inpaint": lambda: (
            (
                {"background": handle_file(image), "layers": [handle_file(brush)], "composite": None},
                cls,
                rng.choice([0, 1]),
                True,
                seed,
                False,
            ),
            opts,
        ),
        "outpaint": lambda: (
            (handle_file(image), cls, [rng.choice(["left", "right", "top", "bottom"])], 2, seed, False),
            opts,
        ),
        "panorama": lambda: ((handle_file(image), cls, rng.choice(["right", "bottom"]), 2, seed, False), opts),
        "resize": lambda: (
            (handle_file(image), cls, rng.choice([1.5, 2.0]), rng.choice(["lattice", "reencode"]), 0.5, seed, False),
            opts,
        ),
        "animate": lambda: ((cls, rng.choice(["random", "raster", "spiral-in"]), steps, seed, False, 8), {}),
        "side_by_side": lambda: (
            (cls, *rng.sample(["random", "raster", "spiral-in", "z-curve"], 2), steps, seed, False, 8),
            {},
        ),
        "compare": lambda: ((cls, steps, seed, False, 8), {}),
        "saved_results": lambda: (("tiny.json",), {}),
        "measure": lambda: (([1], [4], False, 1), {}),
    }
    if endpoint not in calls:
        raise ValueError(f"unknown endpoint {endpoint!r}")
    return calls[endpoint]()


# -- the users ------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    endpoint: str
    latency_s: float | None = None
    status: str = "ok"  # ok | error | lost
    error: str | None = None


@dataclass
class Run:
    """Shared state of one load test."""

    deadline: float
    outcomes: list[Outcome] = field(default_factory=list)
    memory: list[tuple[int, int | None]] = field(default_factory=list)  # (answered, rss bytes)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pid: int | None = None

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)
            answered = sum(o.status != "lost" for o in self.outcomes)
            if answered == MEMORY_AFTER or answered % 50 == 0:
                self.memory.append((answered, rss_bytes(self.pid)))


def user(url: str, work: queue.Queue, run: Run, download_dir: str, address: str | None = None) -> None:
    """One user: its own client, taking requests from ``work`` until it is empty or time is up; from
    ``address`` when given (an ``X-Forwarded-For`` header, as a Space's proxy adds)."""
    from gradio_client import Client

    headers = {"X-Forwarded-For": address} if address else None
    client = Client(url, verbose=False, download_files=download_dir, headers=headers)
    while True:
        try:
            endpoint, args, kwargs = work.get_nowait()
        except queue.Empty:
            return
        left, t0 = run.deadline - time.monotonic(), time.monotonic()
        out = Outcome(endpoint)
        if left <= 0:
            out.status, out.error = "lost", "not started before the time limit"
        else:
            job = client.submit(*args, **kwargs, api_name=f"/{endpoint}")
            try:
                job.result(timeout=left)
            except TimeoutError:
                out.status, out.error = "lost", f"no answer within {left:.0f} s"
                job.cancel()
            except Exception as exc:  # the app answered with an error
                out.status, out.error = "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            if out.status != "lost":
                out.latency_s = time.monotonic() - t0
        run.record(out)


# -- abuse probes ---------------------------------------------------------------------------------------------
def probe_bomb(url: str, bomb: str, pid: int | None, n: int = 8) -> dict[str, Any]:
    """``n`` users at once send the 64 MP PNG to /outpaint: memory peak and after, the answers."""
    from gradio_client import Client, handle_file

    clients = [Client(url, verbose=False) for _ in range(n)]
    gc.collect()
    before = rss_bytes(pid) or 0
    reset_peak(pid)
    jobs = [c.submit(handle_file(bomb), "class 1", ["right"], 2, 1, False, api_name="/outpaint") for c in clients]
    answers = [str(j.exception(timeout=120) or "decoded") for j in jobs]
    peak = rss_bytes(pid, "VmHWM") or 0
    gc.collect()
    after = rss_bytes(pid) or 0
    refused = sum("too large" in a for a in answers)
    return {
        "requests": n,
        "refused": refused,
        "answer": answers[0][:160],
        "before_mb": before / MB,
        "peak_growth_mb": (peak - before) / MB,
        "after_mb": after / MB,
        "ok": refused == n and peak - before <= 300 * MB and after <= before * 1.1,
    }


def probe_data_url(url: str) -> dict[str, Any]:
    """A 30 MB image as a ``data:`` URL in the JSON body: HTTP 413 before it is decoded."""
    import httpx

    body = {
        "data": [
            {
                "url": "data:image/png;base64," + base64.b64encode(os.urandom(30 * MB)).decode(),
                "meta": {"_type": "gradio.FileData"},
            },
            "class 1",
            ["right"],
            2,
            1,
            False,
        ]
    }
    t0 = time.monotonic()
    r = httpx.post(f"{url}gradio_api/call/outpaint", json=body, timeout=60)
    return {
        "status": r.status_code,
        "seconds": time.monotonic() - t0,
        "detail": r.text[:160],
        "ok": r.status_code == 413,
    }


def idle_memory(pid: int | None, idle_s: float) -> dict[str, Any]:
    """The peak resident memory since :func:`reset_peak` and, when ``idle_s`` > 0, the resident
    memory after ``idle_s`` seconds without requests."""
    peak = rss_bytes(pid, "VmHWM")
    out: dict[str, Any] = {"peak_mb": peak / MB if peak else None}
    if idle_s > 0:
        time.sleep(idle_s)
        after = rss_bytes(pid)
        out.update(idle_s=idle_s, after_idle_mb=after / MB if after else None)
    return out


# -- report ---------------------------------------------------------------------------------------------------
def summarise(run: Run, endpoints: list[str]) -> dict[str, Any]:
    by: dict[str, Any] = {}
    for name in [*endpoints, "all"]:
        rows = [o for o in run.outcomes if name == "all" or o.endpoint == name]
        lat = [o.latency_s for o in rows if o.status == "ok" and o.latency_s is not None]
        by[name] = {
            "requests": len(rows),
            "ok": sum(o.status == "ok" for o in rows),
            "errors": sum(o.status == "error" for o in rows),
            "lost": sum(o.status == "lost" for o in rows),
            **{k: (round(v, 4) if v is not None else None) for k, v in _percentiles(lat).items()},
        }
    return by


def _percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 / p90 / p99 / max of ``values`` (seconds), nearest-rank."""
    return {
        "p50": percentile(values, 0.5),
        "p90": percentile(values, 0.9),
        "p99": percentile(values, 0.99),
        "max": max(values, default=None),
    }


def memory_report(run: Run, before: int | None, after: int | None, answered: int, tolerance: float) -> dict:
    """The leak check: memory after all requests against after the first ``MEMORY_AFTER``."""
    first = next(((n, r) for n, r in run.memory if n >= min(MEMORY_AFTER, answered) and r), None)
    report: dict[str, Any] = {
        "before_mb": before / MB if before else None,
        "peak_mb": None,
        "idle_s": None,
        "after_idle_mb": None,
        "first_at": None,
        "after_first_mb": None,
        "all_at": answered,
        "after_all_mb": None,
        "growth_pct": None,
        "tolerance_pct": 100 * tolerance,
        "ok": None,
        "series_mb": [(n, round(r / MB, 1)) for n, r in run.memory if r],
    }
    if first and after:
        growth = after / first[1] - 1
        report.update(
            first_at=first[0],
            after_first_mb=first[1] / MB,
            after_all_mb=after / MB,
            growth_pct=100 * growth,
            ok=growth <= tolerance,
        )
    return report


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\n{report['users']} users, {report['requests']} requests, {report['wall_s']:.1f} s "
        f"({report['throughput_rps']:.2f} requests/s) against {report['url']}"
    )
    keys = ("requests", "ok", "errors", "lost", "p50", "p90", "p99", "max")
    print(f"{'endpoint':<14}" + "".join(f"{k:>9}" for k in keys))
    for name, r in report["endpoints"].items():
        print(f"{name:<14}" + "".join(f"{'-':>9}" if r[k] is None else f"{r[k]:>9.3g}" for k in keys))
    for e in report["first_errors"]:
        print(f"  error: {e}")
    m = report["memory"]
    if m["after_first_mb"] is not None:
        print(
            f"memory (RSS): {m['before_mb']:.1f} MB before, {m['after_first_mb']:.1f} MB after {m['first_at']} "
            f"requests, {m['after_all_mb']:.1f} MB after {m['all_at']} ({m['growth_pct']:+.1f} %, limit "
            f"{m['tolerance_pct']:.0f} %): {'ok' if m['ok'] else 'LEAK?'}"
        )
    if m["before_mb"] is not None and m["peak_mb"] is not None:
        idle = f", {m['after_idle_mb']:.1f} MB after {m['idle_s']:g} s idle" if m["after_idle_mb"] else ""
        print(f"memory (RSS): start {m['before_mb']:.1f} MB, peak {m['peak_mb']:.1f} MB{idle}")
    elif m["after_first_mb"] is None:
        print("memory: not measured (give --pid for a server in another process)")
    print(
        "temporary files (files, bytes): " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report["files"].items())
    )
    for name, probe in report.get("probes", {}).items():
        print(f"probe {name}: {'ok' if probe['ok'] else 'FAILED'} {json.dumps(probe, default=str)}")
    print("PASS" if report["pass"] else "FAIL")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running app on loopback (default: launch one in this process)")
    p.add_argument("--pid", type=int, help="process id of the app at --url (memory figures)")
    p.add_argument("--cache-dir", help="temporary folder of the app at --url (file figures)")
    p.add_argument("--users", type=int, default=12, help="concurrent users, each with its own client")
    p.add_argument("--requests", type=int, default=96, help="requests in all, shared by the users")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole run")
    p.add_argument(
        "--endpoints",
        default=",".join(DEFAULT_ENDPOINTS),
        help=f"comma-separated, from {', '.join(ALL_ENDPOINTS)} (or 'all')",
    )
    p.add_argument("--steps", type=int, default=4, help="decoding steps of every request")
    p.add_argument("--model", choices=["tiny", "digits"], default="tiny", help="random model served in-process")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the in-process app")
    p.add_argument("--leak-tolerance", type=float, default=0.10, help="allowed memory growth, first 20 -> all")
    p.add_argument("--probes", action="store_true", help="also run the abuse probes (after the load)")
    p.add_argument("--purge-every", type=float, default=60.0, help="in-process app: seconds between purges")
    p.add_argument("--purge-age", type=float, default=300.0, help="in-process app: purge files older than this")
    p.add_argument("--wait-purge", type=float, default=0.0, help="seconds to wait after the run, then count files")
    p.add_argument("--idle", type=float, default=0.0, help="seconds without requests after the run, then memory")
    p.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    p.add_argument(
        "--addresses",
        action="store_true",
        help="each user from its own address, forwarded as a proxy does (X-Forwarded-For 10.0.0.N): start "
        "the app with ARPG_TRUST_PROXY=1, as on a Space; otherwise all users share 127.0.0.1 and its cap",
    )
    p.add_argument("--json", help="write the report here")
    a = p.parse_args(argv)
    if a.users < 1 or a.requests < 1 or a.timeout <= 0 or a.steps < 1:
        p.error("--users, --requests, --timeout and --steps must be positive")
    a.endpoints = (
        list(ALL_ENDPOINTS)
        if a.endpoints == "all"
        else [e.strip().lstrip("/") for e in a.endpoints.split(",") if e.strip()]
    )
    bad = [e for e in a.endpoints if e not in ALL_ENDPOINTS]
    if bad or not a.endpoints:
        p.error(f"unknown endpoint(s) {bad}; choose from {', '.join(ALL_ENDPOINTS)}")
    if a.url and (urlparse(a.url).hostname or "") not in LOOPBACK:
        p.error(f"--url must be on loopback ({', '.join(sorted(LOOPBACK))}), got {a.url}")
    return a


def run_users(a: argparse.Namespace, url: str, inputs: tuple[str, str], workdir: Path, pid: int | None) -> Run:
    """The load itself: ``a.requests`` mixed requests shared by ``a.users`` users."""
    rng = random.Random(a.seed)
    mix = [a.endpoints[i % len(a.endpoints)] for i in range(a.requests)]
    rng.shuffle(mix)
    work: queue.Queue = queue.Queue()
    for endpoint in mix:
        work.put((endpoint, *make_request(endpoint, rng, *inputs, a.steps)))
    run = Run(deadline=time.monotonic() + a.timeout, pid=pid)
    (workdir / "downloads").mkdir()
    addresses = [f"10.0.{i // 250}.{i % 250 + 1}" if a.addresses else None for i in range(a.users)]
    downloads = str(workdir / "downloads")
    threads = [threading.Thread(target=user, args=(url, work, run, downloads, ad), daemon=True) for ad in addresses]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, run.deadline - time.monotonic()) + 30)
    while not work.empty():  # users that never got to these (time limit)
        endpoint, _, _ = work.get_nowait()
        run.outcomes.append(Outcome(endpoint, status="lost", error="not started in time"))
    return run


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="arpg-load-"))
    close: Callable[[], None] | None = None
    if a.url:
        url, pid, cache_dir = (a.url if a.url.endswith("/") else a.url + "/"), a.pid, a.cache_dir
    else:  # as app.py does, before gradio is imported
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "localhost,127.0.0.1"
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        import torch

        from demo import server

        cache_dir, pid = str(server.prepare_process()), None
        torch.set_num_threads(a.threads)
        url, close = launch_in_process(workdir, a)
    image, brush, bomb = write_inputs(workdir)
    gc.collect()
    measured = bool(pid or not a.url)
    memory_before = rss_bytes(pid) if measured else None
    reset_peak(pid)
    t0 = time.monotonic()
    run = run_users(a, url, (image, brush), workdir, pid)
    wall = time.monotonic() - t0
    gc.collect()
    answered = sum(o.status != "lost" for o in run.outcomes)
    memory = memory_report(run, memory_before, rss_bytes(pid) if measured else None, answered, a.leak_tolerance)
    if measured:
        memory.update(idle_memory(pid, a.idle))
    files = {"after_requests": usage(cache_dir)}
    probes = {"bomb": probe_bomb(url, bomb, pid), "data_url": probe_data_url(url)} if a.probes else {}
    if a.wait_purge > 0:
        time.sleep(a.wait_purge)
        files[f"after_{a.wait_purge:g}_s"] = usage(cache_dir)
    if close is not None:
        close()
        time.sleep(1.0)
        files["after_shutdown"] = usage(cache_dir)
    endpoints = summarise(run, a.endpoints)
    total = endpoints["all"]
    report = {
        "url": url,
        "in_process": not a.url,
        "model": None if a.url else a.model,
        "users": a.users,
        "requests": a.requests,
        "steps": a.steps,
        "timeout_s": a.timeout,
        "wall_s": wall,
        "throughput_rps": total["ok"] / wall if wall else 0.0,
        "endpoints": endpoints,
        "first_errors": [f"/{o.endpoint}: {o.error}" for o in run.outcomes if o.status != "ok"][:10],
        "memory": memory,
        "files": {"folder": cache_dir, **files},
        "probes": probes,
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None},
    }
    shutil.rmtree(workdir, ignore_errors=True)
    report["pass"] = bool(
        total["ok"] == a.requests and memory["ok"] is not False and all(p["ok"] for p in probes.values())
    )
    print_report(report)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {a.json}")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
