"""scripts/: every script parses its arguments and calls the library, so each answers ``--help`` in its own
process; and the helpers of arpg.measure the scripts share (flags, command lines, results files, memory)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from arpg.measure.probes import MB, cpu_seconds, reset_peak, rss_bytes
from arpg.measure.report import names_arg, read_json, script_command
from arpg.measure.timing import percentile
from tests.conftest import ROOT, run_script

#: Scripts with a command line (``make_docs.py`` takes none: it writes the README's pictures when run).
SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("*.py") if "argparse" in p.read_text())


@pytest.mark.slow  # a process per script
@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_answers_help(name: str) -> None:
    run = run_script(name, "--help", timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("usage:") and "--" in run.stdout


def test_names_arg_takes_some_of_its_choices() -> None:
    names = names_arg(("a", "b", "c"))
    assert names(" c, a ") == ["c", "a"]
    for bad in ("", "a,d"):
        with pytest.raises(argparse.ArgumentTypeError, match="some of a,b,c"):
            names(bad)


def test_a_results_file_records_its_command(tmp_path: Path) -> None:
    assert script_command("x.py", ["--a", "1"], {}) == "python scripts/x.py --a 1"
    assert script_command("x.py", [], {"OMP_NUM_THREADS": "2"}) == "OMP_NUM_THREADS=2 python scripts/x.py"
    (tmp_path / "r.json").write_text('{"model": "m"}')
    assert read_json(tmp_path / "r.json") == {"model": "m"}
    assert read_json(tmp_path / "none.json") is None and read_json(None) is None and read_json("") is None


def test_nearest_rank_percentiles() -> None:
    assert percentile([], 0.5) is None and percentile([3.0], 0.99) == 3.0
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.5) == 6.0 and percentile(values, 0.25) == 3.0 and percentile(values, 1.0) == 10.0


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_process_memory_and_cpu_time() -> None:
    now, peak = rss_bytes(), rss_bytes(os.getpid(), "VmHWM")
    assert now and peak and 10 * MB < now <= peak
    reset_peak()  # a new peak from here (where /proc allows it)
    assert rss_bytes(key="VmHWM") <= peak and rss_bytes(key="NoSuchKey") is None
    assert rss_bytes(2**22 + 12345) is None  # no such process
    assert cpu_seconds(os.getpid()) > 0
