"""The scenes data set: procedural, class-conditional landscapes defined in continuous coordinates.

A scene is a (class, seed) pair and a function of the plane: unbounded sideways (ridgelines,
waves, skylines are seeded functions of x; trees, buildings, stars are placed by a seeded
process along x), with a fixed vertical extent (one scene unit, the canvas height at scale 1).
So any canvas at any resolution is a window of the same scene: the 64x64 render is exactly the
left part of the 64x128 render, and the 128x128 render at scale 2 is the same scene at twice the
resolution (its 2x box-downscale is close to the 64x64 render).  Everything is vectorised NumPy
(see :mod:`arpg.data.scenes_canvas`); a batch renders class by class.

Ten classes, each painted by one function: :mod:`arpg.data.scenes_land` (mountains, desert
dunes, forest, snowfield, flower meadow), :mod:`arpg.data.scenes_water` (sea, sunset clouds,
lake with reflections) and :mod:`arpg.data.scenes_night` (city at night, starry sky).

The data-set interface follows :mod:`arpg.data.digits`: image ``i`` of split ``seed`` is a fixed
(class, scene seed) pair (:func:`scene_of`), the same whatever the batch; :func:`sample` renders
images by index and :func:`batches` iterates over them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..validation import check_int, check_number
from .scenes_canvas import BASE, Canvas, hash32, scene_keys
from .scenes_land import dunes, forest, meadow, mountains, snowfield
from .scenes_night import city, stars
from .scenes_water import lake, sea, sunset

#: What one image shows, in words (the app says what a class edit reshapes).
SUBJECT = "landscape"
CLASS_NAMES = (
    "mountains",
    "sea",
    "desert dunes",
    "forest",
    "city at night",
    "snowfield",
    "flower meadow",
    "sunset clouds",
    "starry sky",
    "lake",
)
#: The painter of each class, in the order of :data:`CLASS_NAMES`.
PAINTERS: tuple[Callable[[Canvas], np.ndarray], ...] = (
    mountains,
    sea,
    dunes,
    forest,
    city,
    snowfield,
    meadow,
    sunset,
    stars,
    lake,
)
IMAGE_SIZE = BASE  # the canvas side at scale 1: the whole vertical extent of a scene
# Seeds of the fixed splits; training draws from TRAIN_SEED, measurements from HELDOUT_SEED.
TRAIN_SEED = 0
HELDOUT_SEED = 1_000_003
_CHUNK_PIXELS = 1 << 16  # pixels painted per call: small enough for the temporaries to stay in cache


def _check_canvas(height: int, width: int, scale: float, left: int) -> tuple[int, int, float, int]:
    return (
        check_int("height", height, 1, 8192),
        check_int("width", width, 1, 8192),
        check_number("scale", scale, 0.0, 32.0, lo_open=True),
        check_int("left", left, -(1 << 40), 1 << 40),
    )


def _check_scenes(labels: Sequence[int] | np.ndarray, seeds: Sequence[int] | np.ndarray) -> tuple[np.ndarray, ...]:
    lab, sd = np.asarray(labels), np.asarray(seeds)
    if lab.ndim != 1 or sd.shape != lab.shape:
        raise ValueError(f"labels and seeds must be 1-D and of one length, got shapes {lab.shape} and {sd.shape}")
    if lab.size and (lab.dtype.kind not in "iu" or lab.min() < 0 or lab.max() >= len(CLASS_NAMES)):
        raise ValueError(f"labels must be class ids in 0..{len(CLASS_NAMES) - 1}, got {lab.tolist()!r:.80}")
    if sd.size and (sd.dtype.kind not in "iu" or sd.min() < 0 or sd.max() >= 1 << 63):
        raise ValueError(f"seeds must be integers in 0..2**63-1, got {sd.tolist()!r:.80}")
    return lab.astype(np.int64), sd.astype(np.int64)


def render_batch(
    labels: Sequence[int] | np.ndarray,
    seeds: Sequence[int] | np.ndarray,
    height: int = IMAGE_SIZE,
    width: int = IMAGE_SIZE,
    scale: float = 1.0,
    left: int = 0,
) -> np.ndarray:
    """Scenes (labels[b], seeds[b]) on a ``height`` x ``width`` pixel canvas: (B, H, W, 3) uint8.

    scale: resolution, ``BASE * scale`` pixels per scene unit (the scene's full height is
    ``64 * scale`` pixels; a taller canvas shows the ground continuing). left: the canvas's first
    column is pixel ``left`` of the scene at this scale (so ``left=32`` is the window 32 pixels
    to the right). Pixel values depend only on (class, seed, scale, pixel), never on the batch.
    """
    height, width, scale, left = _check_canvas(height, width, scale, left)
    lab, sd = _check_scenes(labels, seeds)
    out = np.empty((len(lab), height, width, 3), dtype=np.uint8)
    keys = scene_keys(lab, sd)
    chunk = max(1, _CHUNK_PIXELS // (height * width))
    for cls in np.unique(lab):
        idx = np.flatnonzero(lab == cls)
        for lo in range(0, len(idx), chunk):
            part = idx[lo : lo + chunk]
            img = PAINTERS[cls](Canvas.make(keys[part], height, width, scale, left))
            out[part] = np.clip(img * np.float32(255.0) + np.float32(0.5), 0.0, 255.0).astype(np.uint8)
    return out


def render(
    cls: int, seed: int, height: int = IMAGE_SIZE, width: int = IMAGE_SIZE, scale: float = 1.0, left: int = 0
) -> np.ndarray:
    """One scene of class ``cls`` and ``seed``: (H, W, 3) uint8; see :func:`render_batch`."""
    return render_batch([cls], [seed], height, width, scale, left)[0]


def scene_of(indices: Sequence[int] | np.ndarray, seed: int = TRAIN_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The scenes of images ``indices`` of split ``seed``: ((n,) int64 class ids, (n,) int64 scene seeds).

    Splits draw disjoint-looking scene seeds from 62-bit hashes of (split, index)."""
    i = np.asarray(indices, dtype=np.int64).reshape(-1)
    split = hash32(hash32(np.uint32(seed & 0xFFFFFFFF)) ^ np.uint32((seed >> 32) & 0xFFFFFFFF))
    a = hash32(split ^ i.astype(np.uint32)) ^ hash32((i >> 32).astype(np.uint32) + np.uint32(0x632BE5AB))
    b = hash32(a + np.uint32(0x9E3779B9))
    seeds = ((a.astype(np.uint64) << np.uint64(30)) ^ b.astype(np.uint64)).astype(np.int64)
    labels = (hash32(b ^ np.uint32(0x5BD1E995)) % np.uint32(len(CLASS_NAMES))).astype(np.int64)
    return labels, seeds


def sample(
    indices: Sequence[int] | np.ndarray,
    seed: int = TRAIN_SEED,
    labels: np.ndarray | None = None,
    size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``indices`` of the split ``seed``: ((n, H, W, 3) uint8, (n,) int64 labels).

    The class of image i is drawn with its scene (:func:`scene_of`) unless ``labels`` forces it.
    size: (H, W) pixels; scale: as in :func:`render_batch` (a 96x96 canvas at scale 1.5 is the
    whole height of the scene on a finer grid)."""
    lab, seeds = scene_of(indices, seed)
    if labels is not None:
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    return render_batch(lab, seeds, size[0], size[1], scale), lab


def batches(
    batch_size: int,
    seed: int = TRAIN_SEED,
    start: int = 0,
    size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE),
    scale: float = 1.0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless iterator of (images uint8 (B, H, W, 3), labels (B,)) in index order from ``start``."""
    i = start
    while True:
        yield sample(range(i, i + batch_size), seed, size=size, scale=scale)
        i += batch_size


def contact_sheet(seeds: Sequence[int] = range(8), strip: int = 4 * IMAGE_SIZE, gap: int = 2) -> np.ndarray:
    """A picture of the data set: per class, a row of 64x64 scenes (one per seed) and a 64 x ``strip``
    panorama of the first seed: (H, W, 3) uint8 (``docs/examples/scenes_grid.png``)."""
    n, s = len(seeds), IMAGE_SIZE
    rows = []
    for cls in range(len(CLASS_NAMES)):
        row = np.full((s, n * (s + gap) + strip, 3), 255, dtype=np.uint8)
        tiles = render_batch([cls] * n, list(seeds), s, s)
        for j, tile in enumerate(tiles):
            row[:, j * (s + gap) : j * (s + gap) + s] = tile
        row[:, n * (s + gap) :] = render(cls, seeds[0], s, strip)
        rows += [row, np.full((gap, row.shape[1], 3), 255, dtype=np.uint8)]
    return np.concatenate(rows[:-1])
