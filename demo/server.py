"""The web server's defences, for a public Space: bounded requests, a fair queue, plain error
texts, clean exits, bounded disk and memory given back while idle. Pure ASGI and standard-library
code: importing this module does not import gradio, so :func:`prepare_process` can run before
gradio is imported. The ASGI middleware is in :mod:`demo.middleware` (body limit, plain error
texts, client addresses), :mod:`demo.image_budget` (the images one request may name, the image
editor's uploads) and :mod:`demo.quota` (bytes per client, the temporary folder's cap).

Wiring: ``app.py`` calls :func:`prepare_process` first; ``demo.ui.build_demo`` calls :func:`harden`
on the finished Blocks; ``demo.ui.launch_options`` passes :func:`app_kwargs` (middleware) to ``launch``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware

from arpg.allocator import trim
from arpg.images import MAX_PIXELS, limit_pillow

from .image_budget import ImageBudget, bound_editors
from .middleware import MAX_BODY_BYTES, BodyLimit, PlainErrors, forwarded_address, trust_proxy
from .quota import UploadQuota

log = logging.getLogger("demo.server")

PER_SESSION = 4  # queued or running jobs of one browser session / API client
PER_ADDRESS = 16  # ... of one network address (API clients that open a new session per call)
TEMP_PREFIX = "arpg-sandbox-"
PURGE_EVERY_S = 60.0
PURGE_AGE_S = 300.0
DELETE_CACHE = (int(PURGE_EVERY_S), int(PURGE_AGE_S))  # the same rule for gradio's own cache (Blocks(delete_cache))
UPLOAD_WINDOW_S = PURGE_AGE_S  # the upload quota counts what a client sent while its files may still be kept
TRIM_EVERY_S = 10.0  # while no request is queued or running, freed memory goes back to the system this often


# -- bounded requests and plain error texts (:mod:`demo.middleware`) -----------------------------------
def distrust_forwarded_headers() -> bool:
    """Unless a proxy is trusted (:func:`demo.middleware.trust_proxy`), make the web server ignore
    ``X-Forwarded-For`` from every peer: uvicorn otherwise takes it from loopback peers, so a local
    client could pose as many addresses. Call before the server starts; True when it was set."""
    if trust_proxy():
        return False
    os.environ["FORWARDED_ALLOW_IPS"] = ""  # read by uvicorn when gradio builds its config, at launch
    return True


def app_kwargs(max_body_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """``launch(app_kwargs=...)`` for gradio's FastAPI app: the body limit, the upload quota (with a
    cap on the app's folder once :func:`prepare_process` made it), the image budget and plain error
    texts; forwarded addresses ignored unless trusted (:func:`distrust_forwarded_headers`)."""
    distrust_forwarded_headers()
    return {
        "middleware": [
            Middleware(PlainErrors),
            Middleware(BodyLimit, max_bytes=max_body_bytes),
            Middleware(UploadQuota, folder=_TEMP_DIR, window_s=UPLOAD_WINDOW_S),
            Middleware(ImageBudget),
        ]
    }


# -- a fair queue ----------------------------------------------------------------------------------
def client_address(request: Any, trust_forwarded: bool = False) -> str | None:
    """The network address of a request: the last ``X-Forwarded-For`` entry (the one a trusted
    proxy such as a Space's adds) when ``trust_forwarded``, else the peer's address."""
    if trust_forwarded:
        found = forwarded_address((getattr(request, "headers", None) or {}).get("x-forwarded-for"))
        if found:
            return found
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


class FairQueue:
    """At most ``per_session`` queued or running jobs per browser session or API client (its
    session hash) and ``per_address`` per network address; a job over either limit is refused
    at once (HTTP 503 with a plain sentence) while everybody else is still served.

    Behind a proxy every request comes from the proxy's address: ``trust_forwarded`` (default:
    :func:`demo.middleware.trust_proxy`, ``$ARPG_TRUST_PROXY``, else on a Hugging Face Space) takes
    the address the proxy forwards instead.
    :meth:`attach` wraps the ``push`` of a gradio Blocks' queue (gradio 6's ``Queue.push``:
    ``(body, request, username) -> (ok, event id or message, state)``)."""

    def __init__(
        self, per_session: int = PER_SESSION, per_address: int = PER_ADDRESS, trust_forwarded: bool | None = None
    ) -> None:
        self.per_session, self.per_address = int(per_session), int(per_address)
        self.trust_forwarded = trust_proxy() if trust_forwarded is None else trust_forwarded
        self._lock = asyncio.Lock()
        self.accepted = 0  # jobs pushed so far (the idle trimmer trims after new ones)

    @staticmethod
    def jobs(queue: Any) -> list[Any]:
        """Every waiting and running event of a gradio queue."""
        waiting = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
        running = [e for job in queue.active_jobs if job for e in job]
        return waiting + running

    def address(self, request: Any) -> str | None:
        """The address a request counts against (:func:`client_address`)."""
        return client_address(request, self.trust_forwarded)

    def refusal(self, queue: Any, session: str | None, address: str | None) -> str | None:
        """Why a new job of ``session`` / ``address`` is refused now, or None."""
        jobs = self.jobs(queue)
        if session and sum(e.session_hash == session for e in jobs) >= self.per_session:
            return (
                f"You already have {self.per_session} requests queued or running: wait for one to finish "
                "(other users are being served meanwhile)."
            )
        if address and sum(self.address(e.request) == address for e in jobs) >= self.per_address:
            return f"Your address already has {self.per_address} requests queued or running: wait for some to finish."
        return None

    def attach(self, blocks: Any) -> FairQueue:
        """Limit the queue of ``blocks`` (after ``blocks.queue(...)``); returns self."""
        queue = blocks._queue
        push = queue.push

        async def fair_push(body: Any, request: Any, username: Any) -> tuple[bool, Any, str]:
            async with self._lock:  # the count and the push happen together
                why = self.refusal(queue, getattr(body, "session_hash", None), self.address(request))
                if why:
                    return False, why, "queue_full"
                self.accepted += 1
                return await push(body, request, username)

        queue.push = fair_push
        return self


# -- clean exits and bounded disk ---------------------------------------------------------------------
_TEMP_DIR: Path | None = None
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
REMOVE_TRIES = 100  # attempts to move the folder aside while other threads still write into it


@functools.cache
def _unlink_function() -> Callable[[bytes], int] | None:
    """The C library's ``unlink`` called through ``PyDLL``, which keeps Python's interpreter lock
    during the call; None where there is none (found once, ahead of the exit)."""
    try:
        return ctypes.PyDLL(None).unlink
    except (OSError, AttributeError, TypeError):
        return None


def _unlink_keeping_the_interpreter(path: Path) -> None:
    """Unlink ``path`` without releasing the interpreter lock, so no other thread of this process
    runs between this and the caller's next step (``os._exit``)."""
    unlink = _unlink_function()
    if unlink is not None:
        unlink(os.fsencode(path))
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def remove_tree(folder: str | Path, tries: int = REMOVE_TRIES) -> bool:
    """Remove ``folder`` and everything in it although threads of this process may still write into
    it (a request saving a file makes its folders again, parents included): the folder is moved
    aside and a file takes its place, so nothing can make it again while the rest is removed; the
    file goes last. True once both are gone."""
    folder = Path(folder)
    aside = folder.with_name(folder.name + ".removing")
    for _ in range(tries):
        shutil.rmtree(aside, ignore_errors=True)
        try:
            os.rename(folder, aside)
        except FileNotFoundError:
            pass  # already gone
        except OSError:
            continue  # what was moved aside before still has files
        try:
            os.close(os.open(folder, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue  # a thread made the folder again in between: move that aside too
        break
    else:
        return False
    for _ in range(tries):
        shutil.rmtree(aside, ignore_errors=True)
        if not os.path.lexists(aside):
            break
    gone = not os.path.lexists(aside)
    _unlink_keeping_the_interpreter(folder)  # last: nothing after it may let another thread run
    return gone


def remove_temp_dir() -> None:
    """Remove the app's temporary folder (idempotent)."""
    if _TEMP_DIR is not None:
        remove_tree(_TEMP_DIR)


def _set_handlers(handler: Any) -> None:
    for sig in _SIGNALS:
        signal.signal(sig, handler)


def _remove_for_good() -> None:
    """The last removal of the folder, as the process ends: no signal may cut it short, what is
    buffered is written first, and the interpreter stays on this thread while the folder goes
    (other threads run only while this one waits for the disk)."""
    if threading.current_thread() is threading.main_thread():
        _set_handlers(signal.SIG_IGN)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    sys.setswitchinterval(60.0)
    remove_temp_dir()


def _at_exit() -> None:
    """``atexit``: remove the folder. After a signal the process ends right here: the rest of the
    interpreter's shutdown would let threads still saving files run again and make the folder again."""
    _remove_for_good()
    if getattr(_on_signal, "seen", False):
        os._exit(0)


def _on_signal(signum: int, frame: Any) -> None:
    """SIGTERM / SIGINT: remove the files now, then stop like Ctrl-C (gradio closes the server,
    :func:`_at_exit` removes what was written meanwhile). Further signals wait while files are
    removed, so none cuts a removal short; a second signal removes the folder and exits at once."""
    _set_handlers(signal.SIG_IGN)
    if getattr(_on_signal, "seen", False):
        _remove_for_good()
        os._exit(128 + signum)
    _on_signal.seen = True  # type: ignore[attr-defined]
    remove_temp_dir()
    _set_handlers(_on_signal)
    raise KeyboardInterrupt()


def prepare_process(max_pixels: int = MAX_PIXELS) -> Path:
    """Call first in ``app.py``, before gradio is imported: one fresh temporary folder for
    everything the app writes (``GRADIO_TEMP_DIR`` and Python's ``tempfile``), removed on SIGTERM,
    on SIGINT and at exit; Pillow limited to ``max_pixels`` (:func:`arpg.images.limit_pillow`)."""
    global _TEMP_DIR
    if _TEMP_DIR is None:
        _TEMP_DIR = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        os.environ["GRADIO_TEMP_DIR"] = str(_TEMP_DIR)
        tempfile.tempdir = str(_TEMP_DIR)
        atexit.register(_at_exit)
        _unlink_function()  # looked up now, not while exiting
        if threading.current_thread() is threading.main_thread():
            _set_handlers(_on_signal)
    limit_pillow(max_pixels)
    return _TEMP_DIR


def purge(folder: str | Path, max_age_s: float = PURGE_AGE_S, keep: Iterable[str] = ()) -> tuple[int, int]:
    """Remove the files under ``folder`` not modified for ``max_age_s`` seconds (except ``keep``),
    then the old empty folders; returns (files, bytes) removed."""
    keep, now = {os.path.abspath(k) for k in keep}, time.time()
    files = size = 0
    for root, dirs, names in os.walk(folder, topdown=False):
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
                if now - st.st_mtime > max_age_s and os.path.abspath(path) not in keep:
                    os.unlink(path)
                    files, size = files + 1, size + st.st_size
            except OSError:  # removed meanwhile by gradio or a request
                continue
        for name in dirs:  # old and empty (a new one may be about to receive a file)
            try:
                if now - os.lstat(os.path.join(root, name)).st_mtime > max_age_s:
                    os.rmdir(os.path.join(root, name))
            except OSError:
                pass
    return files, size


def start_purging(
    folder: str | Path,
    every_s: float = PURGE_EVERY_S,
    max_age_s: float = PURGE_AGE_S,
    keep: Callable[[], Iterable[str]] = tuple,
) -> threading.Event:
    """Purge ``folder`` every ``every_s`` seconds in a daemon thread; set the event returned to stop."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            files, size = purge(folder, max_age_s, keep())
            if files:
                log.info("purged %d old temporary files (%.1f MB)", files, size / 2**20)

    threading.Thread(target=run, daemon=True, name="purge-temp").start()
    return stop


def start_trimming(blocks: Any, every_s: float = TRIM_EVERY_S) -> threading.Event:
    """Give freed memory back to the system (:func:`arpg.allocator.trim`: what a burst of requests
    or a dropped model left in the allocator's arenas) once after start-up and once after each
    burst of requests of ``blocks``: every ``every_s`` seconds a daemon thread looks, and trims when
    nothing is queued or running and the fair queue accepted a request since the last trim. The
    thread holds ``blocks`` weakly and ends once it is closed or gone (a test suite builds many
    apps: each idle thread would otherwise run a full garbage collection forever); set the event
    returned to stop it sooner."""
    stop = threading.Event()
    ref = weakref.ref(blocks)

    def accepted(b: Any) -> int:
        queue = fair_queue(b)
        return queue.accepted if queue is not None else 0

    def run() -> None:
        trimmed_at, was_running = -1, False
        while not stop.wait(every_s):
            b = ref()
            if b is None or (was_running and not getattr(b, "is_running", False)):
                return
            was_running = was_running or bool(getattr(b, "is_running", False))
            try:
                busy, seen = bool(FairQueue.jobs(b._queue)), accepted(b)
            except (AttributeError, RuntimeError):  # the queue changed under us: look again later
                continue
            finally:
                del b
            if not busy and seen != trimmed_at:
                trim()
                trimmed_at = seen

    threading.Thread(target=run, daemon=True, name="trim-memory").start()
    return stop


def kept_files(blocks: Any) -> set[str]:
    """Files gradio keeps in its cache for ``blocks`` (the examples), never purged."""
    return {str(f) for b in blocks.blocks.values() for f in getattr(b, "keep_in_cache", ())}


def harden(
    blocks: Any,
    per_session: int = PER_SESSION,
    per_address: int = PER_ADDRESS,
    purge_every_s: float = PURGE_EVERY_S,
    purge_age_s: float = PURGE_AGE_S,
) -> Any:
    """Call on the finished Blocks (after ``queue``): the fair queue (:func:`fair_queue`), bounded
    image editors (:func:`demo.image_budget.bound_editors`), memory given back while idle
    (:func:`start_trimming`) and, when :func:`prepare_process` made the app's folder, its periodic
    purge. Idempotent; returns ``blocks``."""
    if fair_queue(blocks) is None:
        blocks._arpg_fair_queue = FairQueue(per_session, per_address).attach(blocks)
        bound_editors(blocks)
        start_trimming(blocks)
        if _TEMP_DIR is not None:
            start_purging(_TEMP_DIR, purge_every_s, purge_age_s, keep=lambda: kept_files(blocks))
    return blocks


def fair_queue(blocks: Any) -> FairQueue | None:
    """The :class:`FairQueue` :func:`harden` attached to ``blocks`` (its limits can be changed), or None."""
    return getattr(blocks, "_arpg_fair_queue", None)
