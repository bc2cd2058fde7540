"""The input-image policy (:mod:`arpg.images`): any source, a decoded-size budget checked from the
header, reduced decoding of large inputs, RGB conversion, the native height, plain messages."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arpg import images

ROOT = Path(__file__).resolve().parents[1]
F, ROWS = 4, 4  # the tiny model: 4 px per token, 4 rows -> 16 px high


def grey_png(width: int, height: int, level: int = 128) -> bytes:
    """A flat grey PNG written row by row, so a 64 MP file costs a few kB of memory to make."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = b"\0" + bytes([level]) * width  # filter type 0, then the pixels
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w: int, h: int) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    return Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8))


@pytest.fixture(autouse=True)
def pillow_default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's own decompression-bomb limit in every test (the app lowers it process-wide when
    it builds the page, which other tests in this process may have done)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(1024 * 1024 * 1024 // 4 // 3))


def test_the_64_mp_png_is_a_small_file() -> None:
    data = grey_png(8000, 8000)
    assert len(data) < 100_000
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (8000, 8000) and im.mode == "L"


# -- any source, the same result ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(20, 12), (300, 200)])  # kept as is, and reduced before resampling
def test_paths_bytes_pil_images_and_arrays_give_the_same_pixels(tmp_path: Path, size: tuple[int, int]) -> None:
    img = gradient(*size)
    path = tmp_path / "in.png"
    img.save(path)
    want = images.prepare_image(img, F, ROWS)
    for source in (str(path), path, path.read_bytes(), np.asarray(img)):
        assert np.array_equal(images.prepare_image(source, F, ROWS), want), type(source).__name__
    assert want.dtype == np.uint8 and want.shape[0] == F * ROWS and want.shape[1] % F == 0


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "I;16", "CMYK", "1"])
def test_image_modes_are_converted(mode: str) -> None:
    img = (
        gradient(20, 12).convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.random.default_rng(0).integers(0, 65535, (12, 20), dtype=np.uint16))
    )
    arr = images.prepare_image(img, F, ROWS)
    assert arr.dtype == np.uint8 and arr.shape == (16, 28, 3)
    assert images.to_rgb(img).size == (20, 12) and images.to_rgb(encoded(img, "TIFF")).mode == "RGB"


@pytest.mark.parametrize(
    "w, h, want",
    [(16, 16, (16, 16)), (20, 12, (28, 16)), (1, 500, (4, 16)), (8000, 10, (128, 16)), (100, 50, (32, 16))],
)
def test_working_size_keeps_the_aspect_within_the_limits(w: int, h: int, want: tuple[int, int]) -> None:
    assert images.working_size(w, h, F, ROWS) == want


# -- decode only what the model can use --------------------------------------------------------------------
def test_large_jpegs_are_decoded_reduced() -> None:
    data = encoded(gradient(2000, 1600), "JPEG", quality=90)
    full = images.load_image(data)
    small = images.load_image(data, target_height=16)
    assert full.size == (2000, 1600)
    assert small.size == (63, 50)  # 1/8 by the JPEG decoder (250x200), then reduced by 4: at least 3 x 16 px high
    assert images.prepare_image(data, F, ROWS).shape == (16, 20, 3)


def test_large_images_are_reduced_before_they_are_converted() -> None:
    img = gradient(960, 480).convert("RGBA")
    small = images.load_image(img, target_height=16)
    assert small.size == (96, 48) and small.mode == "RGBA"  # reduced by 10, still at least 3 x 16 px high
    assert images.load_image(img).size == (960, 480)


def test_the_exif_orientation_of_a_file_is_applied() -> None:
    exif = Image.Exif()
    exif[images.ORIENTATION] = 6  # stored sideways: rotate 90 degrees to view
    data = encoded(gradient(40, 20), "JPEG", exif=exif.tobytes())
    assert images.load_image(data).size == (20, 40)
    assert images.prepare_image(data, F, ROWS).shape == (16, 8, 3)


def test_a_jpeg_over_the_budget_fits_when_decoded_reduced() -> None:
    data = encoded(gradient(1000, 800), "JPEG")
    assert images.prepare_image(data, F, ROWS, max_pixels=100_000).shape == (16, 20, 3)  # decoded at 1/8: 125x100
    with pytest.raises(ValueError, match=r"too large \(1000x800, 0.8 megapixels, 500x400 when decoded reduced\)"):
        images.prepare_image(data, 25, 4, max_pixels=100_000)  # 100 px high: only 1/2 scale keeps 300 px
    with pytest.raises(ValueError, match="too large"):
        images.to_rgb(data, max_pixels=100_000)


@pytest.mark.parametrize("source", ["png", "pil", "array"])
def test_images_over_the_budget_are_refused_before_decoding(source: str) -> None:
    w, h = 4001, 4000  # just over 16 MP
    if source == "png":
        value = grey_png(w, h)
    elif source == "pil":
        value = Image.new("L", (w, h))
    else:
        value = np.zeros((h, w), np.uint8)
    for call in (lambda: images.prepare_image(value, F, ROWS), lambda: images.to_rgb(value)):
        with pytest.raises(ValueError, match=r"too large \(4001x4000, 16.0 megapixels\); at most 16 megapixels"):
            call()


@pytest.mark.slow  # over 0.5 s: the fast tier stays under a minute
def test_limit_pillow_makes_pillow_refuse_at_open(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    images.limit_pillow()
    assert Image.MAX_IMAGE_PIXELS == images.MAX_PIXELS // 2  # Pillow refuses above twice its limit
    data = grey_png(8000, 8000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))  # what a framework's own decoder meets
    with pytest.raises(ValueError, match=r"too large \(64.0 megapixels\); at most 16 megapixels"):
        images.open_image(data)
    with pytest.warns(Image.DecompressionBombWarning), Image.open(io.BytesIO(grey_png(4000, 4000))) as im:
        assert im.size == (4000, 4000)  # exactly the budget: still opens (Pillow only warns)


MEASURE = textwrap.dedent("""
    import json, resource, sys
    from arpg import images
    data = open(sys.argv[1], "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        images.prepare_image(data, 16, 16)
        outcome = "decoded"
    except ValueError as exc:
        outcome = str(exc)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"outcome": outcome, "peak_growth_kb": grew}))
""")


@pytest.mark.slow
def test_the_64_mp_png_is_refused_without_allocating_it(tmp_path: Path) -> None:
    """In a fresh process: the peak resident memory grows by far less than the 64 MB of pixels."""
    path = tmp_path / "grey.png"
    path.write_bytes(grey_png(8000, 8000))
    r = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    found = json.loads(r.stdout.strip().splitlines()[-1])
    assert "too large (8000x8000, 64.0 megapixels)" in found["outcome"]
    assert found["peak_growth_kb"] < 8 * 1024, found


# -- plain messages -------------------------------------------------------------------------------------------
def test_missing_and_undecodable_files_are_one_plain_sentence(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no image: file 'nothing.png' does not exist") as err:
        images.to_rgb(tmp_path / "nothing.png")
    assert str(tmp_path) not in str(err.value)  # never a server path
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="file 'bad.png' is not an image that can be read"):
        images.to_rgb(bad)
    with pytest.raises(ValueError, match="data is not an image"):
        images.to_rgb(b"\x89PNG but not really")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    truncated = encoded(noise)[:5000]
    with pytest.raises(ValueError, match="could not be decoded: it is truncated or damaged"):
        images.to_rgb(truncated)


def test_long_names_are_shortened_in_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        images.to_rgb(tmp_path / ("x" * 500 + ".png"))
    assert len(str(err.value)) < 150


@pytest.mark.parametrize("value", [None, 3, 2.5, [1, 2], {"a": 1}, object()])
def test_anything_else_is_not_an_image(value: object) -> None:
    with pytest.raises(ValueError, match="expected an image"):
        images.to_rgb(value)  # type: ignore[arg-type]


def test_masks_can_be_files_too(tmp_path: Path) -> None:
    m = np.zeros((8, 8), np.uint8)
    m[:, 4:] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(m).save(path)
    out = images.mask_to_array(path, (16, 16))
    assert out[:, 8:].all() and not out[:, :8].any()
    with pytest.raises(ValueError, match="mask could not be read"):
        images.mask_to_array(tmp_path / "none.png", (16, 16))
