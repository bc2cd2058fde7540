"""Files the app hands out for download (animations, measured results): one temporary folder,
old files removed as new ones are made, the folder removed when the process exits.

The folder lives in the app's temporary folder, whose purge (:func:`demo.server.purge`) removes
empty folders once they are old: it is made again whenever a file is asked for, so a server left
running keeps handing out files."""

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
    """The download folder, made again if it was removed (by the purge) since the last call."""
    global _OUT_DIR
    if _OUT_DIR is None:
        _OUT_DIR = Path(tempfile.mkdtemp(prefix="arpg-sandbox-"))
        atexit.register(shutil.rmtree, _OUT_DIR, ignore_errors=True)
    _OUT_DIR.mkdir(parents=True, exist_ok=True)
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
    for _ in range(3):  # the purge may remove the (empty) folder between its check and the file
        folder = _out_dir()
        try:
            _remove_old(folder, keep_s)
            fd, name = tempfile.mkstemp(prefix=f"{stem}-", suffix=suffix, dir=folder)
        except FileNotFoundError:
            continue
        os.close(fd)
        return Path(name)
    raise OSError(f"could not make a file for {stem}{suffix} in the download folder")
