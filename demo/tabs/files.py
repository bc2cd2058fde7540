"""Files the app hands out for download (animations, measured results): one temporary folder,
old files removed as new ones are made, the folder removed when the process exits."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

KEEP_S = 600.0  # gradio copies outputs into its own cache: ours are only needed for a moment
_OUT_DIR: Path | None = None


def _out_dir() -> Path:
    global _OUT_DIR
    if _OUT_DIR is None:
        _OUT_DIR = Path(tempfile.mkdtemp(prefix="arpg-sandbox-"))
        atexit.register(shutil.rmtree, _OUT_DIR, ignore_errors=True)
    return _OUT_DIR


def _remove_old(folder: Path, keep_s: float) -> None:
    now = time.time()
    for old in folder.iterdir():
        try:
            if now - old.stat().st_mtime > keep_s:
                old.unlink()
        except OSError:  # removed by a concurrent request meanwhile
            pass


def out_path(stem: str, suffix: str, keep_s: float = KEEP_S) -> Path:
    """A fresh, empty file ``<stem>-<random><suffix>`` for a download; files older than
    ``keep_s`` seconds are removed first."""
    folder = _out_dir()
    _remove_old(folder, keep_s)
    fd, name = tempfile.mkstemp(prefix=f"{stem}-", suffix=suffix, dir=folder)
    os.close(fd)
    return Path(name)
