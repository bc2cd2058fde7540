"""What the images of one request may cost the server, checked before the web framework decodes them.

The framework decodes every image a request names to a full-size array before the app's code
runs (an image editor's background, each of its layers and its composite), so a request that
names one small, highly compressed 16 MP image sixty times costs gigabytes. Two bounds:

* :class:`ImageBudget` (ASGI middleware, every JSON request body): at most :data:`MAX_FILES` files and
  :data:`MAX_REQUEST_PIXELS` decoded pixels together, read from each file's header (uploaded
  files, ``data:`` URLs); HTTP 413 with a plain sentence otherwise.
* :func:`bound_editors` (the editor's own upload route, which the page uses): at most
  :data:`MAX_EDITOR_LAYERS` layers and the same pixel budget per edit, and at most
  :data:`MAX_EDITOR_BYTES` of edits held in memory, oldest dropped first.

An image over the per-image limit is not counted: Pillow refuses it from its header
(:func:`arpg.images.limit_pillow`), so it is never decoded. Standard library and Pillow only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image
from starlette.exceptions import HTTPException

from arpg.images import MAX_PIXELS

from .middleware import Message, Send, respond

MAX_FILES = 4  # files one request may name: an editor's background, composite and two layers
MAX_EDITOR_LAYERS = MAX_FILES - 2  # layers of one edit (the app's editor has one)
MAX_REQUEST_PIXELS = 3 * MAX_PIXELS  # decoded pixels of one request together: a 16 MP photo, its mask, composite
MAX_EDITOR_BYTES = 128 * 2**20  # encoded edits held in memory between upload and use, all sessions together


# -- what an image costs, from its header ------------------------------------------------------------
def image_pixels(source: str | Path | bytes) -> int:
    """Pixels the framework would decode ``source`` (a file or encoded bytes) to, from its header
    only; 0 when it is not an image or Pillow refuses it as too large (it will never be decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's "possible decompression bomb" warning
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
                width, height = im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 0
    return width * height


def upload_roots() -> list[str]:
    """The folders the framework takes input files from (its upload folder and cache, as gradio's
    ``get_upload_folder``), resolved."""
    root = os.environ.get("GRADIO_TEMP_DIR") or str(Path(tempfile.gettempdir()) / "gradio")
    return [os.path.realpath(root)]


def _reference_pixels(ref: dict[str, Any] | str, roots: list[str]) -> int:
    """Decoded pixels of one file reference: a gradio ``FileData`` (``path`` / ``url``) or a data URL."""
    if isinstance(ref, str):
        ref = {"url": ref}
    path, url = ref.get("path"), ref.get("url")
    if isinstance(url, str) and url.startswith("data:") and not (isinstance(path, str) and path):
        _, _, data = url.partition(",")
        try:
            return image_pixels(base64.b64decode(data, validate=False))
        except (binascii.Error, ValueError):
            return 0
    if isinstance(path, str) and path:
        real = os.path.realpath(path)
        if any(real.startswith(root + os.sep) for root in roots):
            return image_pixels(real)
        return 0  # the framework refuses files it did not receive itself
    return MAX_PIXELS  # a web address: its size is unknown until fetched, so it costs the most


def file_references(value: Any) -> Iterator[dict[str, Any] | str]:
    """Every file a JSON value names: dicts with a ``path`` or ``url`` (gradio's ``FileData``) and
    ``data:`` URLs, at any depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("path"), str) or isinstance(item.get("url"), str):
                yield item
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item.startswith("data:"):
            yield item


def _too_many(count: int) -> str:
    return f"The request names {count} images or files: at most {MAX_FILES} in one request."


def _too_large(pixels: int) -> str:
    return (
        f"The images of the request are too large together ({pixels / 1e6:.1f} megapixels): at most "
        f"{MAX_REQUEST_PIXELS / 1e6:g} megapixels in one request."
    )


def refusal(body: bytes) -> str | None:
    """Why a JSON request body names too many images or too many pixels, or None (also None for
    a body that is not JSON: the route answers that itself)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    refs = list(file_references(data))
    if len(refs) > MAX_FILES:
        return _too_many(len(refs))
    roots = upload_roots()
    pixels = sum(_reference_pixels(r, roots) for r in refs)
    return _too_large(pixels) if pixels > MAX_REQUEST_PIXELS else None


class ImageBudget:
    """ASGI middleware: a JSON request naming over :data:`MAX_FILES` files, or images of over
    :data:`MAX_REQUEST_PIXELS` pixels together, gets HTTP 413 before any route reads it. Every
    POST body but a form upload (files go to disk, undecoded) is read whole and parsed as JSON
    (routes parse JSON whatever the declared type); a body that is not JSON passes unchanged.

    Place it inside :class:`~demo.middleware.BodyLimit` (which bounds what is read here)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Any, send: Send) -> None:
        ctype = dict(scope.get("headers") or []).get(b"content-type", b"")
        if scope["type"] != "http" or scope.get("method") != "POST" or ctype.startswith(b"multipart/"):
            return await self.app(scope, receive, send)
        chunks, message = [], {"more_body": True}
        while message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
        body = b"".join(chunks)
        why = await asyncio.to_thread(refusal, body)  # headers are read from disk: not on the event loop
        if why:
            return await respond(send, 413, why)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


# -- the image editor's own upload route -------------------------------------------------------------
def _edit_pixels(edit: Any) -> dict[str, int]:
    """Pixels of each part of a stored edit (gradio's ``EditorDataBlobs``), by part."""
    parts = {"background": edit.background, "composite": edit.composite}
    parts.update({f"layer {i}": b for i, b in enumerate(edit.layers or [])})
    return {k: image_pixels(bytes(v)) for k, v in parts.items() if v}


class BoundedEdits(OrderedDict):
    """The editor's store of uploaded edits (id -> parts), bounded to ``max_bytes`` encoded bytes
    in all: storing an edit drops the oldest others until it fits."""

    def __init__(self, max_bytes: int = MAX_EDITOR_BYTES) -> None:
        super().__init__()
        self.max_bytes = int(max_bytes)

    @staticmethod
    def size(edit: Any) -> int:
        """Encoded bytes of one edit."""
        parts = [edit.background, edit.composite, *(edit.layers or [])]
        return sum(len(p) for p in parts if p)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > 1 and sum(self.size(v) for v in self.values()) > self.max_bytes:
            self.popitem(last=False)


def _check_blob(editor: Any, data: Any) -> None:
    """Refuse (HTTP 413 / 400) one upload of the editor's route before it is stored: a layer index
    beyond :data:`MAX_EDITOR_LAYERS`, or an edit whose images pass :data:`MAX_REQUEST_PIXELS`."""
    fields, files = getattr(data, "data", None), getattr(data, "files", None)
    if not isinstance(fields, dict) or not files:
        raise HTTPException(400, "The editor upload has no image.")
    kind, index = fields.get("type"), fields.get("index")
    slot = str(kind)
    if kind == "layer" and index not in (None, "", "null"):
        try:
            number = int(index)
        except (TypeError, ValueError):
            raise HTTPException(400, "The layer number of the editor upload is not a whole number.") from None
        if not 0 <= number < MAX_EDITOR_LAYERS:
            raise HTTPException(413, f"The image editor takes at most {MAX_EDITOR_LAYERS} layers.")
        slot = f"layer {number}"
    stored = editor.blob_storage.get(fields.get("id"))
    pixels = _edit_pixels(stored) if stored is not None else {}
    pixels[slot] = image_pixels(bytes(files[0][1]))
    if sum(pixels.values()) > MAX_REQUEST_PIXELS:
        raise HTTPException(413, _too_large(sum(pixels.values())))


def bound_editor(editor: Any, max_bytes: int = MAX_EDITOR_BYTES) -> None:
    """Bound one image editor (gradio's ``ImageEditor``): its uploads are checked by :func:`_check_blob`
    before its own ``accept_blobs`` stores them, in a :class:`BoundedEdits` store. Idempotent."""
    if isinstance(editor.blob_storage, BoundedEdits):
        return
    editor.blob_storage = BoundedEdits(max_bytes)
    accept = editor.accept_blobs

    def accept_blobs(data: Any) -> Any:
        _check_blob(editor, data)
        return accept(data)

    accept_blobs._is_server_fn = True  # type: ignore[attr-defined]  # what gradio's component route asks
    editor.accept_blobs = accept_blobs


def bound_editors(blocks: Any, max_bytes: int = MAX_EDITOR_BYTES) -> int:
    """:func:`bound_editor` on every image editor of ``blocks`` (those with an upload store); how many."""
    editors = [b for b in blocks.blocks.values() if hasattr(b, "blob_storage") and hasattr(b, "accept_blobs")]
    for editor in editors:
        bound_editor(editor, max_bytes)
    return len(editors)
