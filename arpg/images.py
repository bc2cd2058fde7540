"""The one input-image policy, used by :mod:`arpg.tasks` (so by the library, the CLI and the app).

* **Any source**: a path, encoded bytes (PNG, JPEG, WebP, ...), a PIL image or a NumPy array.
* **Decode only what the model can use.** Files are opened lazily and their header is read
  first; an image whose *decoded* size would exceed :data:`MAX_PIXELS` (16 MP) is refused with
  a plain sentence before any pixel is decoded. JPEGs are decoded reduced (``Image.draft``:
  1/2, 1/4 or 1/8 scale) when the working size is smaller, and any large image is reduced
  (``Image.reduce``) to a few times the working height before it is converted to RGB.
  Decoding a 16 MP image costs about 16 MB (grey) to 64 MB (RGBA) of memory; see
  docs/reliability.md for the measurements.
* **Orientation**: a file's EXIF orientation is applied (as the web framework does for uploads).
* **Colour**: any PIL mode becomes RGB (transparent pixels on white; 16- and 32-bit images
  scaled by their maximum; float arrays clipped to 0..255).
* **Size**: the image is scaled so its height is the model's native height (grid rows x
  tokenizer factor) and its width the nearest multiple of the factor (aspect ratio kept, at most
  :data:`MAX_ASPECT` times the native grid's width).
* **Masks** of another size are resized (nearest) to the image.

Readers we do not control (the web framework decodes uploads with Pillow) are bounded by
:func:`limit_pillow`, which makes Pillow itself refuse oversized images when they are opened.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .validation import show

__all__ = [
    "MAX_PIXELS",
    "MAX_ASPECT",
    "REDUCE_GAP",
    "ImageSource",
    "limit_pillow",
    "open_image",
    "load_image",
    "to_rgb",
    "prepare_image",
    "mask_to_array",
    "working_size",
]

MAX_PIXELS = 16_000_000  # decoded-size budget: 16 MP is 16 MB (grey) to 64 MB (RGBA) while decoding
MAX_ASPECT = 8  # at most this many times the native grid's width (or height)
REDUCE_GAP = 3  # large images are reduced to at least this many times the working height, then resampled
ORIENTATION = 0x0112  # the EXIF tag of a photo's orientation (applied, as the web framework does)
REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr"})  # Image.reduce averages these correctly
#: What every entry point accepts as an image.
ImageSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Image.Image, np.ndarray]


def limit_pillow(max_pixels: int = MAX_PIXELS) -> None:
    """Make Pillow refuse, when an image is opened (before it is decoded), any image of more than
    ``max_pixels``: for decoders outside this module (the web framework's upload handling).

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and raises ``DecompressionBombError`` above twice
    that, so the limit is set to half of ``max_pixels``. Call it once at start-up (the app does);
    the library itself does not change this process-wide setting.
    """
    Image.MAX_IMAGE_PIXELS = max(1, int(max_pixels) // 2)


def _too_large(width: int, height: int, max_pixels: int, decoded: tuple[int, int] | None = None) -> ValueError:
    at = f", {decoded[0]}x{decoded[1]} when decoded reduced" if decoded and decoded != (width, height) else ""
    return ValueError(
        f"the image is too large ({width}x{height}, {width * height / 1e6:.1f} megapixels{at}); "
        f"at most {max_pixels / 1e6:g} megapixels: scale it down first"
    )


def _check_budget(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise ValueError("the image is empty")
    if width * height > max_pixels:
        raise _too_large(width, height, max_pixels)


def _name(source: object) -> str:
    """How a source is named in a message: a file's name only (never a server path)."""
    if isinstance(source, (str, os.PathLike)):
        return f"file {show(os.path.basename(os.fspath(source)) or os.fspath(source))}"
    return "data"


def open_image(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """A lazily opened image (header read, no pixel decoded) from a path or encoded bytes.

    Raises ``ValueError`` with a plain sentence for a missing or undecodable file and for an
    image that Pillow's own limit (:func:`limit_pillow`) refuses."""
    try:
        fp = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f" ({int(found.group(1)) / 1e6:.1f} megapixels)" if found else ""
        raise ValueError(
            f"the image is too large{size}; at most {max_pixels / 1e6:g} megapixels: scale it down first"
        ) from None
    except FileNotFoundError:
        raise ValueError(f"no image: {_name(source)} does not exist") from None
    except (UnidentifiedImageError, OSError, ValueError, TypeError, SyntaxError, EOFError):
        raise ValueError(f"the {_name(source)} is not an image that can be read (use PNG, JPEG or WebP)") from None


def _decode(im: Image.Image, target_height: int | None, max_pixels: int, source: object) -> Image.Image:
    """Decode a lazily opened image, reduced when it is a JPEG larger than the working size."""
    width, height = im.size
    try:
        _check_budget(width, height, max_pixels * 64 if im.format == "JPEG" else max_pixels)
        if im.format == "JPEG" and target_height:
            want_h = min(height, REDUCE_GAP * target_height)
            im.draft(None, (max(1, width * want_h // height), want_h))  # 1/2, 1/4 or 1/8 scale, at least this
        if im.width * im.height > max_pixels:
            raise _too_large(width, height, max_pixels, im.size)
    except ValueError:
        im.close()
        raise
    try:
        im.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        im.close()
        raise ValueError(f"the {_name(source)} could not be decoded: it is truncated or damaged") from None
    return im


def _from_array(arr: np.ndarray, max_pixels: int) -> Image.Image:
    """A numeric (H, W) or (H, W, 1|3|4) array as a PIL image (bool -> 0/255, others clipped to 0..255)."""
    if arr.dtype.kind not in "biuf" or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (1, 3, 4))):
        raise ValueError(
            f"expected an image array of shape (H, W) or (H, W, 1|3|4) with numbers, "
            f"got shape {arr.shape} of {arr.dtype}"
        )
    _check_budget(arr.shape[1], arr.shape[0], max_pixels)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _reduced(im: Image.Image, target_height: int | None) -> Image.Image:
    """``im`` reduced by a whole factor (pixel averages) to at least ``REDUCE_GAP`` x the target height."""
    if not target_height or im.mode not in REDUCIBLE_MODES:
        return im
    factor = im.height // (REDUCE_GAP * target_height)
    return im.reduce(factor) if factor >= 2 else im


def load_image(source: ImageSource, target_height: int | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Any image source as a decoded PIL image of any mode, within the ``max_pixels`` budget.

    target_height: the height the caller will resample to; larger images are decoded or reduced
    to about ``REDUCE_GAP`` times it (never below it). ``None`` keeps the full size.
    Raises ``ValueError`` (a plain sentence) for anything that is not a readable image within budget.
    """
    if isinstance(source, np.ndarray):
        return _reduced(_from_array(source, max_pixels), target_height)
    if isinstance(source, Image.Image):
        _check_budget(source.width, source.height, max_pixels)
        return _reduced(source, target_height)
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        im = _decode(open_image(source, max_pixels), target_height, max_pixels, source)
        if im.getexif().get(ORIENTATION, 1) != 1:  # a phone photo stored sideways
            im = ImageOps.exif_transpose(im)
        return _reduced(im, target_height)
    raise ValueError(f"expected an image (a file, encoded bytes, a PIL image or an array), got {type(source).__name__}")


def _as_rgb(image: Image.Image) -> Image.Image:
    """A decoded PIL image of any mode as RGB (alpha on white, 16/32-bit scaled by their maximum)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image, dtype=np.float64)
        top = arr.max() if arr.max() > 255 else 255.0
        image = Image.fromarray((arr / max(top, 1) * 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or image.mode.endswith("A"):
        rgba = image.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(bg, rgba)
    return image.convert("RGB")


def to_rgb(image: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Any image source -> an RGB PIL image of the same size (see the module docstring)."""
    return _as_rgb(load_image(image, None, max_pixels))


def working_size(width: int, height: int, factor: int, rows: int) -> tuple[int, int]:
    """(W, H) an image of ``width`` x ``height`` is resampled to: H = rows * factor, W the nearest
    multiple of ``factor`` keeping the aspect ratio, from 1 to ``rows * MAX_ASPECT`` cells."""
    h = rows * factor
    cols = int(round(width * h / height / factor))
    return min(max(cols, 1), rows * MAX_ASPECT) * factor, h


def prepare_image(image: ImageSource, factor: int, rows: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """RGB uint8 (rows*factor, W, 3) with W a multiple of ``factor`` (see the module docstring)."""
    h = rows * factor
    img = _as_rgb(load_image(image, h, max_pixels))
    size = working_size(img.width, img.height, factor, rows)
    img = img.resize(size, Image.BICUBIC if img.height < h else Image.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def mask_to_array(mask: ImageSource, size: tuple[int, int]) -> np.ndarray:
    """Any mask (PIL, array, RGBA brush layer, a file) -> bool (H, W) at ``size`` = (W, H)."""
    if isinstance(mask, (str, os.PathLike, bytes, bytearray, memoryview)):
        try:
            mask = load_image(mask)
        except ValueError as exc:
            raise ValueError(f"mask could not be read: {exc}") from None
    if isinstance(mask, Image.Image):
        if mask.mode in ("RGBA", "LA"):
            arr = np.asarray(mask.getchannel("A"))
        else:
            arr = np.asarray(mask.convert("L"))
    else:
        arr = np.asarray(mask)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        if arr.ndim == 3:
            arr = arr[..., 3] if arr.shape[-1] == 4 else arr.max(-1)
        if arr.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W) or an image, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            arr = (np.asarray(arr, dtype=np.float64) > 0).astype(np.uint8) * 255
    m = Image.fromarray(arr.astype(np.uint8))
    if m.size != size:
        m = m.resize(size, Image.NEAREST)
    return np.asarray(m) > 127
