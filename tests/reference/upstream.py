"""What the reference-vector scripts (``make_*_reference.py`` beside this file) share: the command
line, a scratch copy of the upstream files they run, and writing their two files.

Run only by those scripts (never by the tests, never at import of anything else); nothing here
downloads: the upstream code comes from a checkout or a bare mirror given on the command line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent


def arguments(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """``--upstream DIR`` (a checkout or a bare git dir) and ``--any-commit``."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--upstream", type=Path, required=True, help="upstream checkout or bare git dir")
    ap.add_argument("--any-commit", action="store_true", help="do not insist on the recorded commit")
    return ap.parse_args(argv)


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True, text=True).stdout


def copy_upstream(path: Path, files: tuple[str, ...], commit: str, any_commit: bool, scratch: Path) -> Path:
    """``scratch`` holding a copy of upstream's ``files``, from the checkout ``path`` or, for a bare git
    dir, from its HEAD (upstream's own folder is never written to); exits unless upstream is at
    ``commit`` (or ``any_commit``)."""
    bare = not (path / files[0]).exists()
    git_dir = path if bare else path / ".git"
    found = _git(git_dir, "rev-parse", "HEAD").strip() if git_dir.exists() else "unknown"
    if found != commit and not any_commit:
        sys.exit(f"upstream is at {found}, the reference was made from {commit} (--any-commit to go on)")
    for name in files:
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        (scratch / name).write_text(_git(git_dir, "show", f"HEAD:{name}") if bare else (path / name).read_text())
    return scratch


def write(name: str, weights: dict[str, torch.Tensor], ref: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """``<name>.safetensors`` (the weights) and ``<name>_reference.safetensors`` (the outputs, ``meta``)
    beside this file, readable by all; prints how far apart the top two logits come (a greedy token
    is only a fair test where they are not tied)."""
    for stem, tensors, metadata in ((name, weights, {"format": "pt"}), (f"{name}_reference", ref, meta)):
        path = HERE / f"{stem}.safetensors"
        save_file(tensors, str(path), metadata=metadata)
        path.chmod(0o644)  # safetensors writes 0600
    top2 = torch.cat([ref["logits_cond"], ref["logits_uncond"]]).topk(2).values
    print(
        f"wrote {len(weights)} weights and {len(ref)} reference tensors; smallest top-2 logit gap",
        f"{(top2[..., 0] - top2[..., 1]).min():.4f}",
    )
