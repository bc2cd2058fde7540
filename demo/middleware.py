"""The web server's ASGI middleware: a bounded request body (:class:`BodyLimit`) and plain error
texts (:class:`PlainErrors`, :func:`plain_message`); which address a request comes from
(:func:`trust_proxy`, :func:`scope_address`). Pure ASGI and standard-library code: importing this
module does not import gradio. :func:`demo.server.app_kwargs` adds the middleware to gradio's app
(with :class:`demo.image_budget.ImageBudget` and :class:`demo.quota.UploadQuota`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException

from arpg.images import MAX_PIXELS
from arpg.validation import show

Message = MutableMapping[str, Any]  # ASGI: scope, messages
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 12 * 2**20  # every route; a 9 MB image still fits as a base64 data: URL
MAX_MESSAGE = 300  # characters of an error text sent back
#: Trust the client address a proxy forwards (``X-Forwarded-For``): 1/true/yes/on or 0/false/no/off;
#: unset: only on a Hugging Face Space (``$SPACE_ID``), whose proxy sets it.
ENV_TRUST_PROXY = "ARPG_TRUST_PROXY"


# -- where a request comes from -------------------------------------------------------------------
def trust_proxy() -> bool:
    """Whether requests come through a proxy whose ``X-Forwarded-For`` names the client:
    ``$ARPG_TRUST_PROXY`` when set, else whether this runs on a Space (``$SPACE_ID``). Anyone can
    send the header, so without a proxy that sets it, trusting it lets one client pose as many."""
    value = os.environ.get(ENV_TRUST_PROXY, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return bool(os.environ.get("SPACE_ID"))


def forwarded_address(forwarded: str | None) -> str | None:
    """The address the nearest proxy saw: the last entry of an ``X-Forwarded-For`` value (None if empty)."""
    last = (forwarded or "").split(",")[-1].strip()
    return last or None


def scope_address(scope: Message, trust_forwarded: bool) -> str | None:
    """The client address of an ASGI request: :func:`forwarded_address` when ``trust_forwarded``
    and the header is there, else the peer's address."""
    if trust_forwarded:
        headers = [v for k, v in scope.get("headers") or [] if k == b"x-forwarded-for"]
        found = forwarded_address(b",".join(headers).decode("latin-1")) if headers else None
        if found:
            return found
    client = scope.get("client")
    return client[0] if client else None


# -- bounded requests ---------------------------------------------------------------------------------
class BodyTooLarge(HTTPException):
    """Raised while a request body is read, once it passes the limit (an HTTPException, so the
    route answers 413 with this message instead of a body-parsing error)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


async def respond(send: Send, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer with ``status`` and ``{"detail": text, "error": text}`` (and extra ``headers``)."""
    body = json.dumps({"detail": text, "error": text}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def run_answering(app: Any, scope: Message, receive: Any, send: Send, refusal: type[HTTPException]) -> None:
    """Run ``app`` with ``receive`` (which raises ``refusal`` while the body is read, once a limit is
    passed) and answer that refusal in words, with its status and headers; re-raised when the
    response has already started (nothing can be answered any more)."""
    started = False

    async def watched(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await app(scope, receive, watched)
    except refusal as exc:
        if started:
            raise
        headers = [(k.encode(), v.encode()) for k, v in (exc.headers or {}).items()]
        await respond(send, exc.status_code, str(exc.detail), headers)


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
            return await respond(send, 413, self.message)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.message)
            return message

        await run_answering(self.app, scope, counted, send, BodyTooLarge)


# -- plain error texts --------------------------------------------------------------------------------
_PREPROCESS = re.compile(
    r"Could not preprocess input component at index (\d+) \(a `(\w+)` component\)"
    r".*?Original error: (\w+): (.*)",
    re.S,
)
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
