"""The shape of the code: the library never imports the app, its layers point down (inference imports neither
training nor measurement; no import cycles); files with one job, short functions."""

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


#: Calls that load a module from a file path (a script is not a package): no test module makes them.
FILE_LOADERS = {"spec_from_file_location", "run_path", "exec_module", "SourceFileLoader", "load_script"}


def _reaches_into_scripts(source: str) -> list[str]:
    """How a test module's code uses ``scripts/`` as a library: imports of the ``scripts`` package (``import
    scripts.x``, ``from scripts.x import y``), ``import_module("scripts...")``, or any load of a module from
    its file (:data:`FILE_LOADERS`). Running a script in its own process (``subprocess``) is none of these."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "scripts"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "scripts":
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            first = node.args[0] if node.args else None
            named = isinstance(first, ast.Constant) and str(first.value).split(".")[0] == "scripts"
            if name in FILE_LOADERS or (name == "import_module" and named):
                found.append(f"{name}(...) at line {node.lineno}")
    return found


def test_no_test_module_imports_a_script() -> None:
    """Scripts only parse arguments and call the library: tests test the library, and run a script (if at all)
    in its own process."""
    tests = [p for p in (ROOT / "tests").rglob("*.py") if p.name.startswith("test_") or p.name == "conftest.py"]
    offenders = {
        str(p.relative_to(ROOT)): hits for p in sorted(tests) if (hits := _reaches_into_scripts(p.read_text()))
    }
    assert not offenders, f"test modules using scripts/ as a library: {offenders}"


def test_the_script_import_finder_names_every_way_in() -> None:
    code = (
        "import scripts.bench_tasks\nfrom scripts.screenshots import paint_stroke\nimport importlib.util\n"
        "spec = importlib.util.spec_from_file_location('b', ROOT / 'scripts' / 'b.py')\n"
        "importlib.import_module('scripts.make_docs')\nimportlib.import_module('RandAR.model')\n"
        "subprocess.run([sys.executable, 'scripts/bench_tasks.py', '--help'])\n"
    )
    assert len(_reaches_into_scripts(code)) == 4


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_time_statements(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: all but those inside functions (deliberately lazy).

    Those under ``if TYPE_CHECKING:`` count: a cycle there is the same tangle of layers, only hidden."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def _import_graph(root: Path) -> dict[str, set[str]]:
    """Each ``arpg`` module -> the ``arpg`` modules it imports at import time.

    Relative imports are resolved; ``from P import x`` points at the submodule ``P.x`` when there is one,
    else at ``P``."""
    files = {_module_name(root, p): p for p in sorted((root / "arpg").rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in _import_time_statements(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names)
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as its modules in order, the first repeated at the end; None without."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        path.append(module)
        for after in sorted(graph[module]):
            if after in path:
                return path[path.index(after) :] + [after]
            if after not in done and (cycle := visit(after)):
                return cycle
        done.add(path.pop())
        return None

    return next((c for m in sorted(graph) if m not in done and (c := visit(m))), None)


@pytest.fixture(scope="module")
def library_graph() -> dict[str, set[str]]:
    return _import_graph(ROOT)


def test_library_modules_import_each_other_in_no_cycle(library_graph: dict[str, set[str]]) -> None:
    cycle = _a_cycle(library_graph)
    assert cycle is None, "arpg modules importing each other in a cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"b"}, "d": set()}
    assert _a_cycle(graph) == ["b", "c", "b"]
    assert _a_cycle({"a": {"b"}, "b": set()}) is None


def test_the_pipeline_imports_neither_training_nor_measurement(library_graph: dict[str, set[str]]) -> None:
    seen, todo = set(), ["arpg.pipeline"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(library_graph[module])
    upper = sorted(m for m in seen if m.startswith(("arpg.train", "arpg.measure")))
    assert not upper, f"arpg.pipeline imports, directly or not: {upper}"


@pytest.mark.slow
def test_importing_the_pipeline_loads_no_training_or_measurement_module() -> None:
    code = (
        "import sys\nimport arpg.pipeline\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(('arpg.train', 'arpg.measure')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"importing arpg.pipeline loaded: {out.stdout.strip()}"


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
