"""The JSON beside a model's weights (``<stem>.json``): the one reader.

A model's JSON holds its config (``"family"`` and the architecture), the data set it learnt
(``"data"``), its sampling defaults (``"sampling"``) and decodings (``"decoding"``).  Every part of
the project that reads it (checkpoint loading, sampling defaults, class names, training) goes
through :func:`read_sidecar`, so a file that is not a JSON object is refused the same way
everywhere, with one line naming it, instead of being ignored by some readers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .validation import short_message

#: How a JSON value that is not an object is named in the refusal.
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true or false"}


def sidecar_path(weights: str | Path) -> Path:
    """Where the JSON of ``weights`` is: the same path with the suffix ``.json``."""
    return Path(weights).with_suffix(".json")


def read_sidecar(weights: str | Path) -> dict[str, Any]:
    """The JSON object beside ``weights``; ``{}`` when there is no such file (or ``weights`` is itself it).

    ``ValueError`` (one line naming the file) when it cannot be read, is not JSON, or holds
    anything but an object (an array, a string, ...): a model's JSON is an object of settings."""
    side = sidecar_path(weights)
    if side == Path(weights) or not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{side}: unreadable JSON ({short_message(str(exc)) or type(exc).__name__})") from None
    if not isinstance(data, dict):
        kind = "null" if data is None else _JSON_KINDS.get(type(data), type(data).__name__)
        raise ValueError(f"{side}: a model's JSON must be an object of settings ({{...}}), not {kind}")
    return data
