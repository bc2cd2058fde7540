"""Where the app's weights come from: local files, the Hugging Face hub, or the shipped model.

A weights *spec* is a local path or ``hf://<org>/<repo>/<filename>``; a few short names
(``ARPG-L``, ``ARPG-XL``, ``ARPG-XXL``, ``VQ-16``) stand for the released checkpoints.
Hub files come from the local cache first; the network is only tried when
``HF_HUB_OFFLINE`` is not set, after a quick reachability check, so an offline machine
fails in seconds instead of hanging.  :func:`load_app_pipeline` never fails: when the
requested weights cannot be loaded it falls back to the shipped digits model (or to a
random model when that is missing too) and says why in ``pipe.notice``.
"""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:  # pragma: no cover - typing only
    from arpg.pipeline import Pipeline

log = logging.getLogger(__name__)

HF_PREFIX = "hf://"
#: Released checkpoints, by short name.
RELEASED: dict[str, str] = {
    "ARPG-L": "hf://hp-l33/ARPG/arpg_300m.pt",
    "ARPG-XL": "hf://hp-l33/ARPG/arpg_700m.pt",
    "ARPG-XXL": "hf://hp-l33/ARPG/arpg_1b.pt",
    "VQ-16": "hf://FoundationVision/LlamaGen/vq_ds16_c2i.pt",
}
#: The tokenizer the released ARPG checkpoints were trained with.
RELEASED_TOKENIZER = RELEASED["VQ-16"]
DEFAULT_TIMEOUT = 5.0
_TRUE = {"1", "true", "yes", "on"}


class WeightsUnavailable(RuntimeError):
    """A weights spec that cannot be turned into a local file (missing, offline, no network)."""


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (read now, not at import time)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE")
    if env is not None:
        return env.strip().lower() in _TRUE
    return bool(constants.HF_HUB_OFFLINE)


def parse_hub_spec(spec: str) -> tuple[str, str]:
    """``hf://org/name/path/to/file`` -> (``org/name``, ``path/to/file``)."""
    rest = spec[len(HF_PREFIX):].strip("/")
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts):
        raise WeightsUnavailable(f"{spec!r} is not a hub file; write it as hf://<org>/<repo>/<filename>")
    return "/".join(parts[:2]), "/".join(parts[2:])


def _endpoint_reachable(timeout: float) -> bool:
    """Can a TCP connection to the hub endpoint be opened within ``timeout`` seconds?"""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def resolve_weights(spec: str | Path, cache_dir: str | Path | None = None,
                    timeout: float = DEFAULT_TIMEOUT) -> Path:
    """A local path for ``spec`` (a path, ``hf://org/repo/file`` or a short name in :data:`RELEASED`).

    Hub files are looked up in the cache (``cache_dir``, default the hub cache) without any
    network access; a download is attempted only when the hub is not marked offline and
    answers within ``timeout`` seconds.  Raises :class:`WeightsUnavailable` otherwise.
    """
    spec = str(spec).strip()
    if not spec:
        raise WeightsUnavailable("no weights file given")
    spec = RELEASED.get(spec, RELEASED.get(spec.upper(), spec))
    if not spec.startswith(HF_PREFIX):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(f"{path}: no such file")
        return path

    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    repo_id, filename = parse_hub_spec(spec)
    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    if isinstance(cached, str) and Path(cached).is_file():
        return Path(cached)
    if hub_offline():
        raise WeightsUnavailable(f"{filename} from {repo_id} is not in the local cache and HF_HUB_OFFLINE is set")
    if not _endpoint_reachable(timeout):
        raise WeightsUnavailable(f"{filename} from {repo_id} is not in the local cache and the hub is unreachable")
    try:
        return Path(hf_hub_download(repo_id, filename, cache_dir=cache_dir, etag_timeout=timeout))
    except Exception as exc:  # network, auth, missing file: all mean "not available here"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsUnavailable(f"could not download {filename} from {repo_id}: {first}") from exc


def _shipped_or_random(device: str | None, reason: str | None) -> "Pipeline":
    """The shipped digits model, or a random one when its files are missing; ``pipe.notice``
    says why (``reason``: why the requested weights were not used, if any)."""
    from arpg.pipeline import SHIPPED_DIR, Pipeline

    missing = [n for n in ("arpg.safetensors", "vq.safetensors") if not (SHIPPED_DIR / n).is_file()]
    if not missing:
        try:
            pipe = Pipeline.shipped(device=device)
            pipe.notice = f"{reason}; showing the shipped digits model instead." if reason else None
            return pipe
        except Exception as exc:  # a broken file must not take the app down
            log.exception("could not load the shipped model")
            missing = [f"unreadable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"]
    pipe = Pipeline.random("ARPG-digits", "VQ-digits")
    if device:
        pipe.model.to(device)
        pipe.vq.to(device)
    where = "/".join(SHIPPED_DIR.parts[-2:])
    first = f"{reason}, and the shipped" if reason else "The shipped"
    pipe.notice = (f"{first} model files are missing from `{where}/` ({', '.join(missing)}): this is an "
                   "**untrained, randomly initialised** digits model, so its images are noise. Train it with "
                   "`python -m arpg train`, or start the app with `--weights` and `--tokenizer`.")
    return pipe


def load_app_pipeline(weights: str | None = None, tokenizer: str | None = None,
                      device: str | None = None, cache_dir: str | Path | None = None) -> "Pipeline":
    """The pipeline the app serves; falls back (with ``pipe.notice``) instead of failing.

    No ``weights``: the shipped model.  ``weights`` without ``tokenizer``: a released ARPG
    checkpoint is paired with the LlamaGen tokenizer it was trained with.
    """
    from arpg.pipeline import Pipeline

    if not weights and not tokenizer:
        return _shipped_or_random(device, None)
    if not weights:
        return _shipped_or_random(device, "A tokenizer was given without `--weights`, so it is not used")
    try:
        w = resolve_weights(weights, cache_dir)
        t = resolve_weights(tokenizer or RELEASED_TOKENIZER, cache_dir)
        return Pipeline.from_files(w, t, device=device)
    except Exception as exc:
        log.warning("could not load %s: %s", weights, exc)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return _shipped_or_random(device, f"Could not load the requested weights ({reason})")
