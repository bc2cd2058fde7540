"""The one place that checks user-supplied values: numbers, whole numbers, choices, seeds.

Every layer (library, CLI, web app, benchmarks) calls these and gets a ``ValueError`` whose
message names the argument, the allowed range and the value given, shortened so that a
huge input is never echoed back in full.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable
from typing import Any

MAX_SEED = 2**31 - 1
ECHO_CHARS = 80  # a rejected value is quoted at most this long
MESSAGE_CHARS = 300  # a whole error message, as the command line and the web app print it

# A quoted value inside a message: a quote that no letter touches from outside, up to the same quote.
_QUOTED = re.compile(r"""(?<!\w)(?:'[^'\n]*'|"[^"\n]*")(?!\w)""")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _big_int(value: int) -> str:
    """A whole number too long to print whole: 1.23e+45, or its count of digits past a float's range."""
    try:
        return f"{float(value):.3g}"
    except OverflowError:
        return f"a {len(str(abs(value))) if abs(value) < 10**4000 else 'many'}-digit number"


def show(value: Any, limit: int = ECHO_CHARS) -> str:
    """``value`` for an error message: numbers readable (1e+308, not 309 digits), text cut to ``limit``.

    This is the one rule for echoing user input: every message that quotes what it was given
    goes through it (or through :func:`short_message`, which applies it to a finished message)."""
    if isinstance(value, bool):
        text = repr(value)
    elif isinstance(value, int) and abs(value) >= 10**15:
        text = _big_int(value)
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = repr(value)
    return _cut(text, limit)


def short_message(text: str, limit: int = MESSAGE_CHARS) -> str:
    """An error message as shown to a user: its first line, every quoted value in it cut to
    :data:`ECHO_CHARS` the way :func:`show` cuts, the whole cut to ``limit`` characters.

    The command line and the web app pass every error through this, so a message built deep in a
    library (or by a dependency) from a huge input cannot echo it back whole."""
    lines = str(text).strip().splitlines()
    first = lines[0] if lines else ""
    return _cut(_QUOTED.sub(lambda m: _cut(m.group(0), ECHO_CHARS), first), limit)


def _bound(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def check_number(
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    *,
    integer: bool = False,
    lo_open: bool = False,
) -> Any:
    """``value`` as a finite number in [lo, hi] (``(lo, hi]`` with ``lo_open``).

    ``integer=True`` also requires a whole number (int, integral float, NumPy integer, or a
    string of digits) and returns an ``int``; otherwise a ``float``. Booleans are refused.
    """
    kind = "a whole number" if integer else "a number"
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be {kind}, got {show(value)}")
    try:
        v = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be {kind}, got {show(value)}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {show(value)}")
    if integer and not v.is_integer():
        raise ValueError(f"{name} must be a whole number, got {show(value)}")
    too_low = lo is not None and (v < lo or (lo_open and v == lo))
    if too_low or (hi is not None and v > hi):
        if lo is not None and hi is not None:
            left = "(" if lo_open else "["
            rng = f"in {left}{_bound(lo)}, {_bound(hi)}]" if not integer else f"between {lo} and {hi}"
        elif lo is not None:
            rng = f"{'>' if lo_open else '>='} {_bound(lo)}"
        else:
            rng = f"<= {_bound(hi)}"
        raise ValueError(f"{name} must be {rng}, got {show(value)}")
    if integer:
        return int(value) if isinstance(value, int) else int(v)
    return v


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """Shorthand for ``check_number(..., integer=True)``."""
    return check_number(name, value, lo, hi, integer=True)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices`` (exact string match)."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {show(value)}")
    return value


def check_seed(seed: Any) -> int:
    """A seed in 0..2**31-1; ``None`` draws a fresh one (shown to the user so it can be reused)."""
    if seed is None:
        return random.randint(0, MAX_SEED)
    if isinstance(seed, str):  # a seed typed as text is refused: "12" vs 12 would silently differ in type
        raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {show(seed)}")
    return check_int("seed", seed, 0, MAX_SEED)
