"""Give freed memory back to the operating system.

glibc's ``malloc`` keeps freed blocks in its arenas for reuse: after a model is dropped, or after a
burst of requests, the process stays as large as at its peak although Python and PyTorch hold
nothing more (the released weights and the temporaries of loading them are spread over the arenas
and no longer at their tops, so ``free`` cannot shrink them).  :func:`trim` asks glibc to return
every whole free page (``malloc_trim(0)``); elsewhere (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def trim(collect: bool = True) -> bool:
    """Return the free memory of the allocator's arenas to the system (after a ``gc.collect()``
    when ``collect``, so objects in reference cycles are freed first). True when glibc released
    some memory, False when there was none to release or no glibc."""
    if collect:
        gc.collect()
    fn = _malloc_trim()
    return bool(fn(0)) if fn is not None else False
