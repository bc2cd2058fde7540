"""Where weights come from: local files, the Hugging Face hub, or the shipped model.

A weights *spec* is a local path or ``hf://<org>/<repo>/<filename>``; a few short names
(``ARPG-L``, ``ARPG-XL``, ``ARPG-XXL``, ``VQ-16``) stand for the released checkpoints.
Hub files come from the local cache first; the network is only tried when
``HF_HUB_OFFLINE`` is not set, after a quick reachability check, so an offline machine
fails in seconds instead of hanging.  The CLI, ``sample-many`` and the app all resolve
weights here: :func:`load_pipeline` raises :class:`WeightsUnavailable` (the CLI prints it
as one line); :func:`load_app_pipeline` never fails: when the requested weights cannot be
loaded it falls back to the shipped digits model (or to a random model when that is
missing too) and says why in ``pipe.notice``.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

from .pipeline import SHIPPED_DIR, Pipeline
from .zoo import MODEL_FILES, TOKENIZERS, find, released

log = logging.getLogger(__name__)

HF_PREFIX = "hf://"
#: Released checkpoints by short name: the registry's released models (:mod:`arpg.zoo`) and their tokenizers.
RELEASED: dict[str, str] = {**{e.name: e.weights for e in released() if e.weights}, **TOKENIZERS}
#: The tokenizer the released ARPG checkpoints were trained with.
RELEASED_TOKENIZER = TOKENIZERS["VQ-16"]
#: Environment variables that choose the served model (same forms as the flags; a flag wins).
ENV_WEIGHTS, ENV_TOKENIZER = "ARPG_WEIGHTS", "ARPG_TOKENIZER"
DEFAULT_TIMEOUT = 5.0
_TRUE = {"1", "true", "yes", "on"}


class WeightsUnavailable(RuntimeError):
    """A weights spec that cannot be turned into a local file (missing, offline, no network)."""


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (read now, not at import time)."""
    env = os.environ.get("HF_HUB_OFFLINE")
    if env is not None:
        return env.strip().lower() in _TRUE
    return bool(constants.HF_HUB_OFFLINE)


def parse_hub_spec(spec: str) -> tuple[str, str]:
    """``hf://org/name/path/to/file`` -> (``org/name``, ``path/to/file``)."""
    rest = spec[len(HF_PREFIX) :].strip("/")
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts):
        raise WeightsUnavailable(f"{spec!r} is not a hub file; write it as hf://<org>/<repo>/<filename>")
    return "/".join(parts[:2]), "/".join(parts[2:])


def _endpoint_reachable(timeout: float) -> bool:
    """Can a TCP connection to the hub endpoint be opened within ``timeout`` seconds?"""
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def expand(spec: str) -> str:
    """A short name (``ARPG-L``, any case) -> its ``hf://`` spec; anything else unchanged."""
    spec = spec.strip()
    return RELEASED.get(spec, RELEASED.get(spec.upper(), spec))


def cached_file(spec: str, cache_dir: str | Path | None = None) -> Path | None:
    """The local file of ``spec`` if it is on disk or in the hub cache, else None (never touches the network)."""
    spec = expand(str(spec))
    if not spec.startswith(HF_PREFIX):
        path = Path(spec).expanduser()
        return path if path.is_file() else None
    repo_id, filename = parse_hub_spec(spec)
    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return Path(cached) if isinstance(cached, str) and Path(cached).is_file() else None


def released_present(cache_dir: str | Path | None = None) -> list[str]:
    """Names of the registry's released models whose weights and tokenizer are both available offline."""
    return [
        e.name
        for e in released()
        if cached_file(e.tokenizer_spec() or RELEASED_TOKENIZER, cache_dir) is not None
        and cached_file(e.weights or "", cache_dir) is not None
    ]


def env_choice(weights: str | None = None, tokenizer: str | None = None) -> tuple[str | None, str | None]:
    """The flags, or where a flag is not given, ``$ARPG_WEIGHTS`` / ``$ARPG_TOKENIZER`` (empty = unset)."""
    weights = weights or os.environ.get(ENV_WEIGHTS, "").strip() or None
    tokenizer = tokenizer or os.environ.get(ENV_TOKENIZER, "").strip() or None
    return weights, tokenizer


def resolve_weights(spec: str | Path, cache_dir: str | Path | None = None, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """A local path for ``spec`` (a path, ``hf://org/repo/file`` or a short name in :data:`RELEASED`).

    Hub files are looked up in the cache (``cache_dir``, default the hub cache) without any
    network access; a download is attempted only when the hub is not marked offline and
    answers within ``timeout`` seconds.  Raises :class:`WeightsUnavailable` otherwise.
    """
    spec = str(spec).strip()
    if not spec:
        raise WeightsUnavailable("no weights file given")
    spec = expand(spec)
    if not spec.startswith(HF_PREFIX):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(f"{path}: no such file")
        return path
    repo_id, filename = parse_hub_spec(spec)
    cached = cached_file(spec, cache_dir)
    if cached is not None:
        return cached
    if hub_offline():
        raise WeightsUnavailable(f"{filename} from {repo_id} is not in the local cache and HF_HUB_OFFLINE is set")
    if not _endpoint_reachable(timeout):
        raise WeightsUnavailable(f"{filename} from {repo_id} is not in the local cache and the hub is unreachable")
    try:
        return Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir, etag_timeout=timeout))
    except Exception as exc:  # network, auth, missing file: all mean "not available here"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsUnavailable(f"could not download {filename} from {repo_id}: {first}") from exc


def load_pipeline(
    weights: str | Path,
    tokenizer: str | Path | None = None,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    dtype: torch.dtype | None = None,
) -> Pipeline:
    """The pipeline of ``weights`` (a path, ``hf://...`` or ``ARPG-L``/``ARPG-XL``/``ARPG-XXL``) and
    ``tokenizer`` (same forms; default: the LlamaGen VQ-16 the released models were trained with).

    Raises :class:`WeightsUnavailable` when a file cannot be found or fetched, ``ValueError``
    when a file is not a checkpoint of the right kind.
    """
    w = resolve_weights(weights, cache_dir)
    entry = find(str(weights))
    paired = entry.tokenizer_spec() if entry is not None and not entry.trained_here else None
    t = resolve_weights(tokenizer or paired or RELEASED_TOKENIZER, cache_dir)
    pipe = Pipeline.from_files(w, t, device=device, dtype=dtype)
    short = expand(str(weights))
    pipe.name = next((name for name, spec in RELEASED.items() if spec == short), pipe.name)
    return pipe


def shipped_missing() -> list[str]:
    """The files of the shipped model that are missing from ``assets/models`` (none: it can be loaded)."""
    return [n for n in MODEL_FILES if not (SHIPPED_DIR / n).is_file()]


def _shipped_or_random(device: str | None, reason: str | None) -> Pipeline:
    """The shipped digits model, or a random one when its files are missing; ``pipe.notice``
    says why (``reason``: why the requested weights were not used, if any)."""
    missing = shipped_missing()
    if not missing:
        try:
            pipe = Pipeline.shipped(device=device)
            pipe.notice = f"{reason}; showing the shipped digits model instead." if reason else None
            return pipe
        except Exception as exc:  # a broken file must not take the app down
            log.exception("could not load the shipped model")
            missing = [f"unreadable: {_first_line(exc)}"]
    pipe = Pipeline.random("ARPG-digits", "VQ-digits")
    if device:
        pipe.model.to(device)
        pipe.vq.to(device)
    where = "/".join(SHIPPED_DIR.parts[-2:])
    first = f"{reason}, and the shipped" if reason else "The shipped"
    pipe.notice = (
        f"{first} model files are missing from `{where}/` ({', '.join(missing)}): this is an "
        "**untrained, randomly initialised** digits model, so its images are noise. Train it with "
        "`python -m arpg train`, or start the app with `--weights` and `--tokenizer`."
    )
    return pipe


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_app_pipeline(
    weights: str | None = None,
    tokenizer: str | None = None,
    device: str | None = None,
    cache_dir: str | Path | None = None,
) -> Pipeline:
    """The pipeline the app serves; falls back (with ``pipe.notice``) instead of failing.

    No ``weights``: the shipped model.  ``weights`` without ``tokenizer``: a released ARPG
    checkpoint is paired with the LlamaGen tokenizer it was trained with.
    """
    if not weights and not tokenizer:
        return _shipped_or_random(device, None)
    if not weights:
        return _shipped_or_random(device, "A tokenizer was given without `--weights`, so it is not used")
    try:
        return load_pipeline(weights, tokenizer, device, cache_dir)
    except Exception as exc:
        log.warning("could not load %s: %s", weights, exc)
        return _shipped_or_random(device, f"Could not load the requested weights ({_first_line(exc)})")
