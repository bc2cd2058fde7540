"""What one client may send and what the app's temporary folder may hold: an upload quota.

Uploaded files stay at least :data:`demo.server.PURGE_AGE_S` seconds, so without a bound one client
could fill the disk in seconds. :class:`UploadQuota` (ASGI middleware, every POST body) counts the
bytes each client address sends in a sliding window (:data:`demo.server.UPLOAD_WINDOW_S`, as long
as an upload is kept) and refuses past :data:`PER_CLIENT_BYTES` (HTTP 429); a body that can carry
a file (over :data:`SMALL_BODY` bytes) is refused while the folder holds :data:`FOLDER_MAX_BYTES`
(HTTP 503). Standard library only.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException

from .middleware import Message, Send, respond, run_answering, scope_address, trust_proxy

PER_CLIENT_BYTES = 128 * 2**20  # sent by one address within WINDOW_S: a dozen images at the upload limit
FOLDER_MAX_BYTES = 2 * 2**30  # the app's temporary folder, uploads and outputs together
SMALL_BODY = 64 * 2**10  # a body this small carries no file (an API call): never refused for a full folder
FOLDER_RECOUNT_S = 2.0  # the folder is walked at most this often; bytes accepted meanwhile are added
MB = 2**20


class ClientBytes:
    """Bytes sent per client address over the last ``window_s`` seconds (thread-safe)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = float(window_s)
        self._sent: dict[str, deque[tuple[float, int]]] = {}
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def _expire(self, address: str, now: float) -> None:
        entries = self._sent.get(address)
        while entries and now - entries[0][0] > self.window_s:
            self._totals[address] -= entries.popleft()[1]
        if entries is not None and not entries:
            del self._sent[address], self._totals[address]

    def used(self, address: str, now: float | None = None) -> int:
        """Bytes ``address`` sent within the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for other in list(self._sent):  # forget addresses that went quiet
                self._expire(other, now)
            return self._totals.get(address, 0)

    def add(self, address: str, n: int, now: float | None = None) -> int:
        """Count ``n`` more bytes from ``address``; returns its total within the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._expire(address, now)
            self._sent.setdefault(address, deque()).append((now, int(n)))
            self._totals[address] = self._totals.get(address, 0) + int(n)
            return self._totals[address]


class FolderBytes:
    """Bytes under a folder: walked at most every ``recount_s`` seconds, plus what was added since."""

    def __init__(self, folder: str | Path, recount_s: float = FOLDER_RECOUNT_S) -> None:
        self.folder, self.recount_s = Path(folder), float(recount_s)
        self._walked, self._at, self._added = 0, -float("inf"), 0
        self._lock = threading.Lock()

    def _walk(self) -> int:
        total = 0
        for root, _, names in os.walk(self.folder):
            for name in names:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:  # removed meanwhile
                    continue
        return total

    def used(self) -> int:
        """Bytes in the folder now (at most ``recount_s`` seconds old, plus :meth:`add` since)."""
        with self._lock:
            if time.monotonic() - self._at >= self.recount_s:
                self._walked, self._at, self._added = self._walk(), time.monotonic(), 0
            return self._walked + self._added

    def add(self, n: int) -> None:
        """Count ``n`` bytes being written now (until the next walk sees them)."""
        with self._lock:
            self._added += int(n)


class Refused(HTTPException):
    """Raised while a body is read, once it passes a quota (answered by :class:`UploadQuota`)."""


class UploadQuota:
    """ASGI middleware: per-address bytes in a sliding window of ``window_s`` seconds (HTTP 429)
    and a cap on the app's temporary folder ``folder`` (HTTP 503, skipped when None), on every POST
    body. A declared ``Content-Length`` is judged before anything is read; a body is also counted
    as it arrives. The address is :func:`~demo.middleware.scope_address` (the forwarded one only
    behind a trusted proxy)."""

    def __init__(
        self,
        app: Any,
        window_s: float,
        folder: str | Path | None = None,
        per_client: int = PER_CLIENT_BYTES,
        folder_max: int = FOLDER_MAX_BYTES,
        trust_forwarded: bool | None = None,
    ) -> None:
        self.app, self.per_client, self.folder_max = app, int(per_client), int(folder_max)
        self.sent = ClientBytes(window_s)
        self.folder = FolderBytes(folder) if folder is not None else None
        self.trust_forwarded = trust_proxy() if trust_forwarded is None else trust_forwarded

    def client_refusal(self, used: int) -> Refused:
        """HTTP 429 for a client that sent ``used`` bytes within the window."""
        minutes = self.sent.window_s / 60
        return Refused(
            429,
            f"Too much uploaded: {used / MB:.0f} MB in the last {minutes:g} minutes, at most "
            f"{self.per_client / MB:g} MB. Wait a few minutes and try again.",
            headers={"retry-after": str(int(self.sent.window_s))},
        )

    def folder_refusal(self, incoming: int, counted: bool = False) -> Refused | None:
        """HTTP 503 when a body of ``incoming`` bytes (already in the folder's count when ``counted``)
        would take the folder past its cap, else None (always for a small body)."""
        if self.folder is None or incoming <= SMALL_BODY:
            return None
        if self.folder.used() + (0 if counted else incoming) <= self.folder_max:
            return None
        return Refused(
            503, "The server's space for uploads is full: try again in a few minutes.", headers={"retry-after": "60"}
        )

    async def __call__(self, scope: Message, receive: Any, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        address = scope_address(scope, self.trust_forwarded) or "unknown"
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        size = int(declared) if declared.isdigit() else 0
        used = self.sent.used(address)
        early = self.client_refusal(used + size) if used + size > self.per_client else self.folder_refusal(size)
        if early is not None:
            return await self._refuse(send, early)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            chunk = len(message.get("body", b""))
            seen += chunk
            total = self.sent.add(address, chunk)
            if self.folder is not None and seen > SMALL_BODY:
                self.folder.add(chunk)
            if total > self.per_client:
                raise self.client_refusal(total)
            if not size and (why := self.folder_refusal(seen, counted=True)) is not None:  # no declared length
                raise why
            return message

        await run_answering(self.app, scope, counted, send, Refused)

    @staticmethod
    async def _refuse(send: Send, exc: Refused) -> None:
        headers = [(k.encode(), v.encode()) for k, v in (exc.headers or {}).items()]
        await respond(send, exc.status_code, str(exc.detail), headers)
