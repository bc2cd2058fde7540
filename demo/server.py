"""The web server's defences, for a public Space: bounded requests, a fair queue, plain error
texts, clean exits and bounded disk. Pure ASGI and standard-library code: importing this
module does not import gradio, so :func:`prepare_process` can run before gradio is imported.

Wiring: ``app.py`` calls :func:`prepare_process` first; ``demo.ui.build_demo`` calls :func:`harden`
on the finished Blocks; ``demo.ui.launch_options`` passes :func:`app_kwargs` (middleware) to ``launch``.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from arpg.images import MAX_PIXELS, limit_pillow
from arpg.validation import show

log = logging.getLogger("demo.server")

Message = MutableMapping[str, Any]  # ASGI: scope, messages
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 12 * 2**20  # every route; a 9 MB image still fits as a base64 data: URL
PER_SESSION = 4  # queued or running jobs of one browser session / API client
PER_ADDRESS = 16  # ... of one network address (API clients that open a new session per call)
TEMP_PREFIX = "arpg-sandbox-"
PURGE_EVERY_S = 60.0
PURGE_AGE_S = 300.0
DELETE_CACHE = (int(PURGE_EVERY_S), int(PURGE_AGE_S))  # the same rule for gradio's own cache (Blocks(delete_cache))
MAX_MESSAGE = 300  # characters of an error text sent back


# -- bounded requests ---------------------------------------------------------------------------------
class BodyTooLarge(HTTPException):
    """Raised while a request body is read, once it passes the limit (an HTTPException, so the
    route answers 413 with this message instead of a body-parsing error)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


async def _respond(send: Send, status: int, text: str) -> None:
    body = json.dumps({"detail": text, "error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: HTTP 413 for a request body over ``max_bytes``, on every route.

    A declared ``Content-Length`` over the limit is refused before anything is read; a body
    without one (chunked) is counted as it arrives and refused as soon as it passes the limit,
    before the route parses it (so a ``data:`` URL in a JSON body is bounded too)."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, int(max_bytes)
        self.message = f"The request is too large: at most {self.max_bytes / 2**20:g} MB (images included)."

    async def __call__(self, scope: Message, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _respond(send, 413, self.message)
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.message)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await _respond(send, 413, self.message)


# -- plain error texts --------------------------------------------------------------------------------
_PREPROCESS = re.compile(r"Could not preprocess input component at index (\d+) \(a `(\w+)` component\)"
                         r".*?Original error: (\w+): (.*)", re.S)
_CHOICES = re.compile(r"^Value: (.*) is not in the list of choices: (\[.*\])\s*$", re.S)
_PIXELS = re.compile(r"Image size \((\d+) pixels\) exceeds limit")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[\w.\-~%+@]+){2,}/?")


def _capital(text: str) -> str:
    text = text.strip()
    if not text:
        return "Something went wrong."
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def plain_message(text: Any) -> str:
    """One plain sentence for an error text of the web framework: no server paths, no framework
    internals, inputs echoed at most ~80 characters, at most :data:`MAX_MESSAGE` characters."""
    if not isinstance(text, str):
        return "The request has the wrong form: check the API page for each input's type."
    found = _PREPROCESS.search(text)
    if found:
        index, kind, error, detail = int(found.group(1)), found.group(2), found.group(3), found.group(4)
        pixels = _PIXELS.search(detail)
        if pixels or "DecompressionBomb" in error:
            size = f" ({int(pixels.group(1)) / 1e6:.1f} megapixels)" if pixels else ""
            return f"The image is too large{size}: at most {MAX_PIXELS / 1e6:g} megapixels. Scale it down first."
        if error == "UnidentifiedImageError" or "cannot identify image" in detail:
            return "The uploaded file is not an image that can be read: use PNG, JPEG or WebP."
        return f"Input {index + 1} (the {kind}) has the wrong type or format."
    choices = _CHOICES.match(text)
    if choices:
        listed = choices.group(2).strip("[]")
        listed = listed if len(listed) <= 120 else listed[:119] + "…"
        return f"{show(choices.group(1))} is not one of the choices: {listed}."
    if "validation error" in text and "pydantic" in text:
        return "The request has the wrong form: check the API page for each input's type."
    text = _PATH.sub("<file>", text.strip().splitlines()[0] if text.strip() else "")
    return _capital(text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…")


def _plain_detail(detail: Any) -> str:
    """A FastAPI ``detail`` (a string, or pydantic's list of errors with inputs and URLs) in plain words."""
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        where = " > ".join(str(p) for p in first.get("loc", ()) if p != "body")[:80] or "the body"
        what = str(first.get("msg", "a value of the wrong type"))[:120]
        return _capital(f"The request has the wrong form at {where}: {what[:1].lower()}{what[1:]}")
    return plain_message(detail)


def _rewrite_event(event: str) -> str:
    """One server-sent event with any error text made plain (other events unchanged)."""
    lines = event.split("\n")
    for i, line in enumerate(lines):
        if not line.startswith("data:") or '"error"' not in line:
            continue
        try:
            data = json.loads(line[5:])
        except ValueError:
            continue
        holder = data.get("output") if isinstance(data, dict) and isinstance(data.get("output"), dict) else data
        if isinstance(holder, dict) and isinstance(holder.get("error"), str):
            holder["error"] = plain_message(holder["error"])
            lines[i] = "data: " + json.dumps(data)
    return "\n".join(lines)


def _rewrite_json(body: bytes) -> bytes:
    """An error response's JSON body with ``detail`` / ``error`` made plain."""
    try:
        data = json.loads(body)
    except ValueError:
        return json.dumps({"detail": "The request was refused: it has the wrong form."}).encode()
    if isinstance(data, dict):
        for key in ("detail", "error"):
            if key in data and data[key] is not None:
                data[key] = _plain_detail(data[key])
    return json.dumps(data).encode()


class PlainErrors:
    """ASGI middleware: error texts in responses made plain by :func:`plain_message`, in the
    server-sent event streams of the queue and ``/call`` routes and in JSON error responses."""

    MAX_ERROR_BODY = 64 * 1024  # an error response is read this far; the rest is dropped

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state: dict[str, Any] = {"mode": None, "start": None, "buffer": b""}

        async def rewriting(message: Message) -> None:
            if message["type"] == "http.response.start":
                ctype = dict(message.get("headers") or []).get(b"content-type", b"")
                if b"text/event-stream" in ctype:
                    state["mode"] = "sse"
                elif message["status"] >= 400 and b"json" in ctype:
                    state["mode"], state["start"] = "json", message
                    return
                return await send(message)
            if message["type"] != "http.response.body" or state["mode"] is None:
                return await send(message)
            await (self._sse if state["mode"] == "sse" else self._json)(message, state, send)

        await self.app(scope, receive, rewriting)

    @staticmethod
    async def _sse(message: Message, state: dict[str, Any], send: Send) -> None:
        data = state["buffer"] + message.get("body", b"")
        more = message.get("more_body", False)
        head, sep, rest = data.rpartition(b"\n\n")
        ready, state["buffer"] = (head + sep, rest) if more else (data, b"")
        out = b"\n\n".join(_rewrite_event(e.decode("utf-8", "replace")).encode() for e in ready.split(b"\n\n"))
        await send({"type": "http.response.body", "body": out, "more_body": more})

    async def _json(self, message: Message, state: dict[str, Any], send: Send) -> None:
        if len(state["buffer"]) < self.MAX_ERROR_BODY:
            state["buffer"] += message.get("body", b"")
        if message.get("more_body", False):
            return
        body = _rewrite_json(state["buffer"][: self.MAX_ERROR_BODY])
        start = state["start"]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def app_kwargs(max_body_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """``launch(app_kwargs=...)`` for gradio's FastAPI app: the body limit and plain error texts."""
    return {"middleware": [Middleware(PlainErrors), Middleware(BodyLimit, max_bytes=max_body_bytes)]}


# -- a fair queue ----------------------------------------------------------------------------------
def client_address(request: Any, trust_forwarded: bool = False) -> str | None:
    """The network address of a request: the last ``X-Forwarded-For`` entry (the one a trusted
    proxy such as a Space's adds) when ``trust_forwarded``, else the peer's address."""
    if trust_forwarded:
        forwarded = (getattr(request, "headers", None) or {}).get("x-forwarded-for", "")
        if forwarded.strip():
            return forwarded.split(",")[-1].strip()
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


class FairQueue:
    """At most ``per_session`` queued or running jobs per browser session or API client (its
    session hash) and ``per_address`` per network address; a job over either limit is refused
    at once (HTTP 503 with a plain sentence) while everybody else is still served.

    Behind a proxy every request comes from the proxy's address: ``trust_forwarded`` (default:
    on a Hugging Face Space, ``$SPACE_ID`` set) takes the address the proxy forwards instead.
    :meth:`attach` wraps the ``push`` of a gradio Blocks' queue (gradio 6's ``Queue.push``:
    ``(body, request, username) -> (ok, event id or message, state)``)."""

    def __init__(self, per_session: int = PER_SESSION, per_address: int = PER_ADDRESS,
                 trust_forwarded: bool | None = None) -> None:
        self.per_session, self.per_address = int(per_session), int(per_address)
        self.trust_forwarded = bool(os.environ.get("SPACE_ID")) if trust_forwarded is None else trust_forwarded
        self._lock = asyncio.Lock()

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
            return (f"You already have {self.per_session} requests queued or running: wait for one to finish "
                    "(other users are being served meanwhile).")
        if address and sum(self.address(e.request) == address for e in jobs) >= self.per_address:
            return (f"Your address already has {self.per_address} requests queued or running: wait for some "
                    "to finish.")
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
                return await push(body, request, username)

        queue.push = fair_push
        return self


# -- clean exits and bounded disk ---------------------------------------------------------------------
_TEMP_DIR: Path | None = None


def remove_temp_dir() -> None:
    """Remove the app's temporary folder (idempotent)."""
    if _TEMP_DIR is not None:
        shutil.rmtree(_TEMP_DIR, ignore_errors=True)


def _on_signal(signum: int, frame: Any) -> None:
    """SIGTERM / SIGINT: remove the files now, then stop like Ctrl-C (gradio closes the server,
    ``atexit`` removes what was written meanwhile); a second signal exits at once."""
    remove_temp_dir()
    if getattr(_on_signal, "seen", False):
        os._exit(128 + signum)
    _on_signal.seen = True  # type: ignore[attr-defined]
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
        atexit.register(remove_temp_dir)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, _on_signal)
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


def start_purging(folder: str | Path, every_s: float = PURGE_EVERY_S, max_age_s: float = PURGE_AGE_S,
                  keep: Callable[[], Iterable[str]] = tuple) -> threading.Event:
    """Purge ``folder`` every ``every_s`` seconds in a daemon thread; set the event returned to stop."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            files, size = purge(folder, max_age_s, keep())
            if files:
                log.info("purged %d old temporary files (%.1f MB)", files, size / 2**20)

    threading.Thread(target=run, daemon=True, name="purge-temp").start()
    return stop


def kept_files(blocks: Any) -> set[str]:
    """Files gradio keeps in its cache for ``blocks`` (the examples), never purged."""
    return {str(f) for b in blocks.blocks.values() for f in getattr(b, "keep_in_cache", ())}


def harden(blocks: Any, per_session: int = PER_SESSION, per_address: int = PER_ADDRESS,
           purge_every_s: float = PURGE_EVERY_S, purge_age_s: float = PURGE_AGE_S) -> Any:
    """Call on the finished Blocks (after ``queue``): the fair queue (:func:`fair_queue`), and, when
    :func:`prepare_process` made the app's folder, its periodic purge. Idempotent; returns ``blocks``."""
    if fair_queue(blocks) is None:
        blocks._arpg_fair_queue = FairQueue(per_session, per_address).attach(blocks)
        if _TEMP_DIR is not None:
            start_purging(_TEMP_DIR, purge_every_s, purge_age_s, keep=lambda: kept_files(blocks))
    return blocks


def fair_queue(blocks: Any) -> FairQueue | None:
    """The :class:`FairQueue` :func:`harden` attached to ``blocks`` (its limits can be changed), or None."""
    return getattr(blocks, "_arpg_fair_queue", None)
