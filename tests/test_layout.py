"""The shape of the code: the library never imports the app; files with one job, short functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "arpg").rglob("*.py"))
APP = sorted((ROOT / "demo").rglob("*.py")) + [ROOT / "app.py"]
# A file over this many lines is a prompt to ask whether it has two jobs, not a failure: it is
# listed (pytest -rP shows it), never split only to meet the number.
LOOK_AT_FILE_LINES = 500
# Past this, no file in this project has had a single job: that one fails.
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 60


def _imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (absolute imports; relative ones stay inside)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_library_never_imports_the_app() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in LIBRARY if {"demo", "app", "gradio"} & _imported_modules(p)]
    assert not offenders, f"arpg modules importing demo/app/gradio: {offenders}"


@pytest.mark.slow
def test_importing_every_library_module_loads_no_app_module() -> None:
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in LIBRARY if p.name != "__main__.py"]
    modules = [m.removesuffix(".__init__") for m in modules]
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('demo', 'app', 'gradio'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"importing arpg loaded: {out.stdout.strip()}"


def test_long_files_are_listed_to_look_at() -> None:
    long = [
        f"{p.relative_to(ROOT)} ({n} lines)"
        for p in LIBRARY + APP
        if (n := len(p.read_text().splitlines())) > LOOK_AT_FILE_LINES
    ]
    print("files over", LOOK_AT_FILE_LINES, "lines, to look at for a second job:", ", ".join(long) or "none")
    too_long = [p for p in LIBRARY + APP if len(p.read_text().splitlines()) > MAX_FILE_LINES]
    assert not too_long, f"files over {MAX_FILE_LINES} lines (split them by job): {too_long}"


def test_functions_are_short() -> None:
    long = []
    for path in LIBRARY + APP:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 60 lines: " + "; ".join(long)
