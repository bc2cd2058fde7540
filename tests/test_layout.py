"""The shape of the code: the library never imports the app; small files, short functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = sorted((ROOT / "arpg").rglob("*.py"))
APP = sorted((ROOT / "demo").rglob("*.py")) + [ROOT / "app.py"]
MAX_FILE_LINES = 400
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


@pytest.mark.parametrize("path", LIBRARY + APP, ids=lambda p: str(p.relative_to(ROOT)))
def test_files_are_small(path: Path) -> None:
    n = len(path.read_text().splitlines())
    assert n <= MAX_FILE_LINES, f"{path.relative_to(ROOT)} has {n} lines (at most {MAX_FILE_LINES})"


def test_functions_are_short() -> None:
    long = []
    for path in LIBRARY + APP:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 60 lines: " + "; ".join(long)
