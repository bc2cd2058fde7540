#!/usr/bin/env python
"""Load test of the web app: concurrent gradio_client users, a fixed number of requests
mixing the endpoints, bounded in time, on loopback only.

By default the app is launched in this process on a random tiny model (4x4 tokens, 16 px
images) with its own Gradio temporary folder, so its memory and its files can be measured:

    python scripts/load_test.py                      # 16 users, 200 requests
    python scripts/load_test.py --users 4 --requests 24 --json load.json

Against a running app (``python app.py``), give its process id and temporary folder for the
memory and file figures:

    GRADIO_TEMP_DIR=/tmp/arpg-load python app.py &
    python scripts/load_test.py --url http://127.0.0.1:7860/ --pid $! --cache-dir /tmp/arpg-load

Reports, per endpoint and overall: answered, errors, lost (no answer before ``--timeout``) and
not started, latency percentiles (p50/p90/p99/max); the server's resident memory after the
first 20 requests and after all of them (the leak check: within ``--leak-tolerance``, 10 %);
the files in Gradio's temporary folder before, after the requests and after shutdown
(``delete_cache``).  Exit status 0 when every request was answered without error and the
memory check passed, 1 otherwise.  ``/measure`` (a benchmark that saturates the machine on
purpose) is only run when named with ``--endpoints``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENDPOINTS = ("generate", "inpaint", "outpaint", "panorama", "resize", "animate", "side_by_side", "compare",
                     "saved_results")
ALL_ENDPOINTS = (*DEFAULT_ENDPOINTS, "measure")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MEMORY_AFTER = 20  # the first memory reading is taken after this many answered requests


# -- measurements -------------------------------------------------------------------------------------
def rss_bytes(pid: int | None = None) -> int | None:
    """Resident set size of process ``pid`` (this process when None), from /proc; None elsewhere."""
    try:
        text = Path(f"/proc/{pid or 'self'}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def count_files(folder: str | Path | None) -> int | None:
    """Regular files under ``folder`` (None when there is no folder to count)."""
    if not folder or not Path(folder).is_dir():
        return None
    return sum(1 for p in Path(folder).rglob("*") if p.is_file())


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 / p90 / p99 / max of ``values`` (seconds), nearest-rank."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None}
    v = sorted(values)

    def rank(q: float) -> float:
        return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]

    return {"p50": rank(0.50), "p90": rank(0.90), "p99": rank(0.99), "max": v[-1]}


# -- the app under test ---------------------------------------------------------------------------------
SAMPLE_RESULTS = {  # one saved benchmark result, for /saved_results
    "model": "random ARPG-tiny", "machine": "load test",
    "rows": [{"method": "arpg", "steps": s, "batch": 1, "images_per_s": 40.0 / s, "latency_s": s / 40.0,
              "kv_cache_bytes": 4096 * s, "per_layer_cache_bytes": 1024 * s, "peak_mem_bytes": 10**7}
             for s in (4, 8, 16)],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_in_process(workdir: Path, model: str) -> tuple[str, Any, Callable[[], None]]:
    """Build and launch the app on a random model; (url, demo, close)."""
    from arpg.pipeline import Pipeline
    from demo.ui import build_demo, launch_options

    bench = workdir / "benchmarks"
    bench.mkdir()
    (bench / "tiny.json").write_text(json.dumps(SAMPLE_RESULTS))
    pipe = Pipeline.random(*({"tiny": ("ARPG-tiny", "VQ-tiny"), "digits": ("ARPG-digits", "VQ-digits")}[model]))
    demo = build_demo(pipe, benchmarks_dir=bench)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True,
                **launch_options())
    return f"http://127.0.0.1:{port}/", demo, demo.close


def write_inputs(folder: Path) -> tuple[str, str]:
    """An RGB image and a brush layer (RGBA, one painted square) as PNG files."""
    import numpy as np
    from PIL import Image

    image = folder / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(image)
    brush = folder / "brush.png"
    m = np.zeros((64, 64, 4), np.uint8)
    m[8:40, 8:40] = (255, 46, 136, 255)
    Image.fromarray(m).save(brush)
    return str(image), str(brush)


def make_request(endpoint: str, rng: random.Random, image: str, brush: str, steps: int) -> tuple[tuple, dict]:
    """Positional and keyword arguments of one call of ``endpoint`` (random class and seed)."""
    from gradio_client import handle_file

    cls, seed = f"class {rng.randrange(10)}", rng.randrange(2**31 - 1)
    opts = dict(steps=steps)
    if endpoint == "generate":
        return (cls, rng.choice([1, 2, 4]), seed, False), opts
    if endpoint == "inpaint":
        editor = {"background": handle_file(image), "layers": [handle_file(brush)], "composite": None}
        return (editor, cls, rng.choice([0, 1]), True, seed, False), opts
    if endpoint == "outpaint":
        return (handle_file(image), cls, [rng.choice(["left", "right", "top", "bottom"])], 2, seed, False), opts
    if endpoint == "panorama":
        return (handle_file(image), cls, rng.choice(["right", "bottom"]), 2, seed, False), opts
    if endpoint == "resize":
        return (handle_file(image), cls, rng.choice([1.5, 2.0]), rng.choice(["lattice", "reencode"]), 0.5, seed,
                False), opts
    if endpoint == "animate":
        return (cls, rng.choice(["random", "raster", "spiral-in"]), steps, seed, False, 8), {}
    if endpoint == "side_by_side":
        first, second = rng.sample(["random", "raster", "spiral-in", "z-curve"], 2)
        return (cls, first, second, steps, seed, False, 8), {}
    if endpoint == "compare":
        return (cls, steps, seed, False, 8), {}
    if endpoint == "saved_results":
        return ("tiny.json",), {}
    if endpoint == "measure":
        return ([1], [4], False, 1), {}
    raise ValueError(f"unknown endpoint {endpoint!r}")


# -- the users ------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    endpoint: str
    user: int
    start_s: float
    latency_s: float | None = None
    status: str = "ok"  # ok | error | lost
    error: str | None = None


@dataclass
class Run:
    """Shared state of one load test."""

    deadline: float
    total: int
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


def user(index: int, url: str, work: queue.Queue, run: Run, download_dir: str) -> None:
    """One user: its own client, taking requests from ``work`` until it is empty or time is up."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=download_dir)
    while True:
        try:
            endpoint, args, kwargs = work.get_nowait()
        except queue.Empty:
            return
        left = run.deadline - time.monotonic()
        t0 = time.monotonic()
        out = Outcome(endpoint, index, t0)
        if left <= 0:
            out.status, out.error = "lost", "not started before the time limit"
            run.record(out)
            continue
        job = client.submit(*args, **kwargs, api_name=f"/{endpoint}")
        try:
            job.result(timeout=left)
            out.latency_s = time.monotonic() - t0
        except TimeoutError:
            out.status, out.error = "lost", f"no answer within {left:.0f} s"
            job.cancel()
        except Exception as exc:  # the app answered with an error
            first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
            out.status, out.error = "error", f"{type(exc).__name__}: {first_line}"
            out.latency_s = time.monotonic() - t0
        run.record(out)


# -- report ---------------------------------------------------------------------------------------------------
def summarise(run: Run, endpoints: list[str]) -> dict[str, Any]:
    by: dict[str, Any] = {}
    for name in [*endpoints, "all"]:
        rows = [o for o in run.outcomes if name == "all" or o.endpoint == name]
        lat = [o.latency_s for o in rows if o.status == "ok" and o.latency_s is not None]
        by[name] = {"requests": len(rows), "ok": sum(o.status == "ok" for o in rows),
                    "errors": sum(o.status == "error" for o in rows), "lost": sum(o.status == "lost" for o in rows),
                    **{k: (round(v, 4) if v is not None else None) for k, v in percentiles(lat).items()}}
    return by


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{report['users']} users, {report['requests']} requests, {report['wall_s']:.1f} s "
          f"({report['throughput_rps']:.2f} requests/s) against {report['url']}")
    print(f"{'endpoint':<14}{'requests':>9}{'ok':>6}{'errors':>8}{'lost':>6}{'p50 s':>9}{'p90 s':>9}{'p99 s':>9}"
          f"{'max s':>9}")
    for name, r in report["endpoints"].items():
        cells = [f"{r[k]:>9.3f}" if r[k] is not None else f"{'-':>9}" for k in ("p50", "p90", "p99", "max")]
        print(f"{name:<14}{r['requests']:>9}{r['ok']:>6}{r['errors']:>8}{r['lost']:>6}{''.join(cells)}")
    for e in report["first_errors"]:
        print(f"  error: {e}")
    m = report["memory"]
    if m["after_first_mb"] is not None:
        print(f"memory (RSS): {m['after_first_mb']:.1f} MB after {m['first_at']} requests, {m['after_all_mb']:.1f} MB "
              f"after {m['all_at']} ({m['growth_pct']:+.1f} %, limit {m['tolerance_pct']:.0f} %): "
              f"{'ok' if m['ok'] else 'LEAK?'}")
    else:
        print("memory: not measured (give --pid for a server in another process)")
    f = report["files"]
    print(f"gradio temporary files: {f['before']} before, {f['after_requests']} after the requests, "
          f"{f['after_shutdown']} after shutdown ({f['folder']}; the example images are kept on purpose)")
    if f.get("app_outputs_after") is not None:
        print(f"app output files (GIF/JSON downloads): {f['app_outputs_after']} ({f['app_output_folder']})")
    print("PASS" if report["pass"] else "FAIL")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="a running app on loopback (default: launch one in this process)")
    p.add_argument("--pid", type=int, help="process id of the app at --url (memory figures)")
    p.add_argument("--cache-dir", help="GRADIO_TEMP_DIR of the app at --url (file figures)")
    p.add_argument("--users", type=int, default=16, help="concurrent users, each with its own client")
    p.add_argument("--requests", type=int, default=200, help="requests in all, shared by the users")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole run")
    p.add_argument("--endpoints", default=",".join(DEFAULT_ENDPOINTS),
                   help=f"comma-separated, from {', '.join(ALL_ENDPOINTS)} (or 'all')")
    p.add_argument("--steps", type=int, default=4, help="decoding steps of every request")
    p.add_argument("--model", choices=["tiny", "digits"], default="tiny", help="random model served in-process")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the in-process app")
    p.add_argument("--leak-tolerance", type=float, default=0.10, help="allowed memory growth, first 20 -> all")
    p.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--keep", action="store_true", help="keep the working folder (inputs, downloads, temp files)")
    a = p.parse_args(argv)
    if a.users < 1 or a.requests < 1 or a.timeout <= 0 or a.steps < 1:
        p.error("--users, --requests, --timeout and --steps must be positive")
    a.endpoints = list(ALL_ENDPOINTS) if a.endpoints == "all" else [e.strip().lstrip("/") for e in
                                                                      a.endpoints.split(",") if e.strip()]
    bad = [e for e in a.endpoints if e not in ALL_ENDPOINTS]
    if bad or not a.endpoints:
        p.error(f"unknown endpoint(s) {bad}; choose from {', '.join(ALL_ENDPOINTS)}")
    if a.url and (urlparse(a.url).hostname or "") not in LOOPBACK:
        p.error(f"--url must be on loopback ({', '.join(sorted(LOOPBACK))}), got {a.url}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    work_dir = Path(tempfile.mkdtemp(prefix="arpg-load-"))
    in_process = not a.url
    if in_process:  # before gradio is imported: a private temporary folder, no analytics
        os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "gradio")
        os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "localhost,127.0.0.1"
        sys.path.insert(0, str(ROOT))
        import torch

        torch.set_num_threads(a.threads)
    cache_dir = os.environ["GRADIO_TEMP_DIR"] if in_process else a.cache_dir
    files_before = count_files(cache_dir) or 0
    close: Callable[[], None] | None = None
    if in_process:
        url, _, close = launch_in_process(work_dir, a.model)
    else:
        url = a.url if a.url.endswith("/") else a.url + "/"
    from gradio_client import Client

    named = set(Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"])
    missing = [e for e in a.endpoints if f"/{e}" not in named]
    if missing:
        print(f"error: the app has no endpoint(s) {', '.join('/' + e for e in missing)}", file=sys.stderr)
        if close is not None:
            close()
        return 2
    skipped = sorted(named - {f"/{e}" for e in a.endpoints})
    if skipped:
        print(f"not exercised: {', '.join(skipped)}")
    image, brush = write_inputs(work_dir)
    rng = random.Random(a.seed)
    mix = [a.endpoints[i % len(a.endpoints)] for i in range(a.requests)]
    rng.shuffle(mix)
    work: queue.Queue = queue.Queue()
    for endpoint in mix:
        work.put((endpoint, *make_request(endpoint, rng, image, brush, a.steps)))
    run = Run(deadline=time.monotonic() + a.timeout, total=a.requests, pid=None if in_process else a.pid)
    downloads = work_dir / "downloads"
    downloads.mkdir()
    t0 = time.monotonic()
    threads = [threading.Thread(target=user, args=(i, url, work, run, str(downloads)), name=f"user-{i}", daemon=True)
               for i in range(a.users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, run.deadline - time.monotonic()) + 30)
    wall = time.monotonic() - t0
    while not work.empty():  # users that never got to these (time limit)
        endpoint, _, _ = work.get_nowait()
        run.outcomes.append(Outcome(endpoint, -1, wall, status="lost", error="not started before the time limit"))
    gc.collect()
    answered = sum(o.status != "lost" for o in run.outcomes)
    rss_all = rss_bytes(run.pid) if (in_process or run.pid) else None
    files_after = count_files(cache_dir)
    out_dir = None
    if in_process:  # the app's own download folder (GIFs, benchmark JSON)
        from demo.tabs import common

        out_dir = getattr(common, "_OUT_DIR", None)
    app_outputs = count_files(out_dir) if out_dir else None
    if close is not None:
        close()
        time.sleep(1.0)
    files_shutdown = count_files(cache_dir)

    first = next(((n, r) for n, r in run.memory if n >= min(MEMORY_AFTER, answered) and r), None)
    mem_ok = True
    memory: dict[str, Any] = {"first_at": None, "after_first_mb": None, "all_at": answered, "after_all_mb": None,
                              "growth_pct": None, "tolerance_pct": 100 * a.leak_tolerance, "ok": None,
                              "series_mb": [(n, round(r / 2**20, 1)) for n, r in run.memory if r]}
    if first and rss_all:
        growth = rss_all / first[1] - 1
        mem_ok = growth <= a.leak_tolerance
        memory.update(first_at=first[0], after_first_mb=first[1] / 2**20, after_all_mb=rss_all / 2**20,
                      growth_pct=100 * growth, ok=mem_ok)
    endpoints = summarise(run, a.endpoints)
    total = endpoints["all"]
    report = {
        "url": url, "in_process": in_process, "model": a.model if in_process else None, "users": a.users,
        "requests": a.requests, "steps": a.steps, "timeout_s": a.timeout, "wall_s": wall,
        "throughput_rps": total["ok"] / wall if wall else 0.0, "endpoints": endpoints,
        "first_errors": [f"/{o.endpoint}: {o.error}" for o in run.outcomes if o.status != "ok"][:10],
        "memory": memory,
        "not_exercised": skipped,
        "files": {"folder": cache_dir, "before": files_before, "after_requests": files_after,
                  "after_shutdown": files_shutdown, "app_output_folder": str(out_dir) if out_dir else None,
                  "app_outputs_after": app_outputs},
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None},
    }
    if not a.keep:
        shutil.rmtree(work_dir, ignore_errors=True)
    report["pass"] = bool(total["ok"] == a.requests and total["errors"] == 0 and total["lost"] == 0 and mem_ok)
    print_report(report)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(report, indent=2, default=str))
        print(f"wrote {a.json}")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
