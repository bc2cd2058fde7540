"""Benchmark and quality results as text: tables, the command that reproduces a run, output files."""

from __future__ import annotations

import argparse
import json
import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..sampling import METHODS


def params_text(n: int) -> str:
    """A parameter count for people: ``"343M"``, ``"1.25M"``."""
    return f"{n / 1e6:.0f}M" if n >= 10e6 else f"{n / 1e6:.2f}M"


def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:.1f}"


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _pct(x: float | None, spec: str = ".1f") -> str:
    return _fmt(None if x is None else 100 * x, spec)


def _header_lines(results: dict) -> list[str]:
    """Model, machine, dtype, matmul peak, load and compile lines above the benchmark table."""
    peak = results.get("matmul_peak_gflops") or {}
    lines = [
        f"model: {results.get('model')}",
        f"machine: {results.get('machine')}",
        f"torch {results.get('torch')}, dtype {results.get('dtype')}, timed call: {results.get('timed_call', '-')}",
        "matmul peak: " + ", ".join(f"{k} {_fmt(v, '.0f')} GFLOP/s" for k, v in peak.items()),
    ]
    mi = results.get("machine_info") or {}
    if mi.get("load_average"):
        lines.append(
            f"load average (1 min) at start {mi['load_average'][0]}, at end "
            f"{(mi.get('load_average_end') or ['-'])[0]}, on {mi.get('cores')} cores"
        )
    comp = results.get("compile") or {}
    if comp.get("requested"):
        lines.append(
            "torch.compile: "
            + (
                f"ok, compile time ~{comp.get('compile_s')} s"
                if comp.get("ok")
                else f"failed ({comp.get('error')}); eager numbers below"
            )
        )
    return lines


def _bench_row(r: dict) -> str:
    return (
        f"{r['method']:<8} {r['steps']:>5} {r['batch']:>5} {r['images_per_s']:>8.3f} "
        f"{r['latency_per_image_s']:>8.3f} {r['latency_s']:>8.3f} {r['forward_passes']:>6} "
        f"{_mb(r.get('kv_cache_bytes')):>8} {_mb(r.get('per_layer_cache_bytes')):>8} "
        f"{_pct(r.get('kv_saving')):>5}% "
        f"{_mb(r.get('peak_mem_bytes')):>8} {_fmt(r.get('achieved_gflops'), '.1f'):>8} "
        f"{_pct(r.get('peak_fraction')):>6} "
        f"{_fmt(r.get('speedup_vs_raster'), '.2f'):>8} "
        f"{_pct(r.get('accuracy')):>6} "
        f"{_fmt(r.get('frechet'), '.2f'):>7}"
    )


def format_table(results: dict) -> str:
    """A :func:`arpg.measure.bench.run_bench` result as a fixed-width text table with a header and a legend."""
    head = (
        f"{'method':<8} {'steps':>5} {'batch':>5} {'img/s':>8} {'s/img':>8} {'call s':>8} {'passes':>6} "
        f"{'KV MB':>8} {'perlayer':>8} {'saved':>6} {'peak MB':>8} {'GFLOP/s':>8} {'%peak':>6} "
        f"{'x raster':>8} {'acc':>6} {'FD':>7}"
    )
    lines = [*_header_lines(results), head, "-" * len(head)]
    lines += [_bench_row(r) for r in results.get("rows", [])]
    lines.append(
        "KV MB: caches allocated (measured); perlayer: every layer keeping its own K/V; "
        "peak MB: "
        + str(results.get("peak_memory_method", "peak process memory"))
        + "; %peak: achieved / matmul peak of the compute dtype"
    )
    return "\n".join(lines)


def format_quality_table(res: dict) -> str:
    """An :func:`arpg.measure.evaluate.evaluate` result as text (a result of before the texture measures:
    "-" in their places)."""
    style = res.get("data_style")
    own = f" ({style})" if style else ""

    def real(key: str, scale: float, unit: str, spec: str = ".2f") -> str:
        if res.get(key) is None:
            return "-"
        text = f"{format(scale * res[key], spec)}{unit}{own}"
        if res.get(f"{key}_wide") is not None:
            text += f", {format(scale * res[f'{key}_wide'], spec)}{unit} (wide)"
        return text

    lines = [
        f"model: {res['model']}" + (f" (data: {res['data']})" if res.get("data") else ""),
        f"tokenizer PSNR (1,000 held-out images): {real('tokenizer_psnr_db', 1, ' dB')}",
        f"tokenizer sharpness (of the real images' detail kept): {real('tokenizer_sharpness', 1, '', '.3f')}",
        f"judge accuracy (2,000 held-out images): {real('judge_accuracy', 100, '%')}",
        f"generation (guidance {res['cfg_scale']}, {res.get('cfg_schedule', 'linear')}):",
        f"  {'order':<8} {'steps':>5} {'samples':>7} {'accuracy':>9} {'Frechet':>8} {'texture':>8} {'sharp':>6}",
    ]
    for r in res["generation"]:
        order = "random" if r["method"] == "arpg" else r["method"]
        lines.append(
            f"  {order:<8} {r['steps']:>5} {r['samples']:>7} {100 * r['accuracy']:>8.1f}% {r['frechet']:>8.2f} "
            f"{_fmt(r.get('texture_frechet'), '.3f'):>8} {_fmt(r.get('sharpness'), '.3f'):>6}"
        )
    lines.append("  Frechet: judge features; texture: Frechet distance of texture features; sharp: detail kept")
    return "\n".join(lines)


def format_order_table(res: dict) -> str:
    """An :func:`arpg.measure.evaluate.order_table` result as text."""
    lines = [
        f"model: {res['model']} (guidance {res['cfg_scale']}, {res['per_class']} images per class)",
        f"  {'order':<11} {'steps':>5} {'accuracy':>9} {'Frechet':>8} {'s/image':>8} {'queries':>8}",
    ]
    for r in res["rows"]:
        lines.append(
            f"  {r['order']:<11} {r['steps']:>5} {100 * r['accuracy']:>8.1f}% {r['frechet']:>8.2f} "
            f"{r['seconds_per_image']:>8.3f} {r['queries_per_image']:>8.0f}"
        )
    return "\n".join(lines)


def bench_command(a: argparse.Namespace) -> str:
    """The ``bench`` command line that reproduces a run of the parsed flags ``a`` (canonical flag order)."""
    args = ["python", "-m", "arpg", "bench"]
    if a.models:  # a race names its models, batch and repeats only
        out = ["--json", a.json] if a.json else []
        runs = ["--repeats", str(a.repeats), "--warmup", str(a.warmup)]
        return shlex.join(args + ["--models", a.models, "--batch", str(a.batch), *runs] + out)
    if a.weights:
        args += ["--weights", a.weights, "--tokenizer", a.tokenizer or ""]
    elif a.preset:
        args += ["--preset", a.preset]
    elif a.model or not a.orders:
        args += ["--model", a.model or "digits"]
    if a.orders:  # the order table takes the model, steps and images per class only
        out = [x for flag, v in (("--json", a.json), ("--plot", a.plot)) if v for x in (flag, v)]
        return shlex.join(
            args + ["--orders", a.orders, "--steps", a.steps, "--quality-per-class", str(a.quality_per_class)] + out
        )
    args += ["--batch", str(a.batch), "--steps", a.steps, "--repeats", str(a.repeats), "--warmup", str(a.warmup)]
    if a.methods != ",".join(METHODS):
        args += ["--methods", a.methods]
    for flag, value in (
        ("--device", a.device),
        ("--dtype", a.dtype),
        ("--cfg", a.cfg),
        ("--threads", a.threads),
        ("--quality-per-class", a.quality_per_class if a.quality else None),
        ("--json", a.json),
        ("--plot", a.plot),
    ):
        if value is not None:
            args += [flag, str(value)]
    args += [
        f
        for f, on in (
            ("--quality", a.quality),
            ("--compile", a.compile),
            ("--autocast", a.autocast),
            ("--no-decode", a.no_decode),
            ("--baseline", getattr(a, "baseline", False)),
            ("--profile", getattr(a, "profile", False)),
        )
        if on
    ]
    if a.seed:
        args += ["--seed", str(a.seed)]
    return shlex.join(args)


def write_outputs(res: dict, json_path: str | None, plot_path: str | None, figure: Callable[[dict], Any]) -> list[Path]:
    """Write ``res`` as JSON to ``json_path`` and ``figure(res)`` (a PIL image) to ``plot_path``,
    each only when given; returns the paths written."""
    written = []
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(res, indent=2) + "\n")
        written.append(Path(json_path))
    if plot_path:
        Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
        figure(res).save(plot_path)
        written.append(Path(plot_path))
    return written


def read_json(path: str | Path | None) -> dict | None:
    """The JSON object in the file ``path``; None when no path is given or there is no such file."""
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else None


def script_command(script: str, argv: list[str], env: dict[str, str] | None = None) -> str:
    """The command line that ran ``scripts/<script>`` with ``argv``, after ``OMP_NUM_THREADS`` when ``env``
    (default: this process's environment) sets it: what a results file records to be run again."""
    threads = (os.environ if env is None else env).get("OMP_NUM_THREADS")
    head = [f"OMP_NUM_THREADS={threads}"] if threads else []
    return " ".join([*head, "python", f"scripts/{script}", *argv])


def names_arg(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    """An argparse ``type``: comma-separated names, each one of ``choices``, at least one."""

    def names(text: str) -> list[str]:
        got = [t.strip() for t in text.split(",") if t.strip()]
        if not got or set(got) - set(choices):
            raise argparse.ArgumentTypeError(f"some of {','.join(choices)}; got {text!r}")
        return got

    return names
