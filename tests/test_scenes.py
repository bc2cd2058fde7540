"""The scenes data set: windows of one unbounded scene, resolution, determinism, distinct classes, the interface."""

import numpy as np
import pytest

from arpg.data import scenes

CLASSES = range(len(scenes.CLASS_NAMES))


@pytest.mark.parametrize("cls", CLASSES)
def test_a_canvas_is_a_window_of_the_scene(cls):
    seeds = [0, 7, 123_456_789_012]
    square = scenes.render_batch([cls] * 3, seeds, 64, 64)
    wide = scenes.render_batch([cls] * 3, seeds, 64, 128)
    assert np.array_equal(square, wide[:, :, :64])  # the 64x64 render is exactly the left part
    right = scenes.render_batch([cls] * 3, seeds, 64, 64, left=64)
    assert np.array_equal(right, wide[:, :, 64:])  # and the next window is its right part
    shifted = scenes.render_batch([cls] * 3, seeds, 64, 96, left=-32)
    assert np.array_equal(shifted[:, :, 32:], square)  # the scene extends to the left too


@pytest.mark.parametrize("cls", CLASSES)
def test_twice_the_scale_is_the_same_scene_at_twice_the_resolution(cls):
    seeds = list(range(4))
    small = scenes.render_batch([cls] * 4, seeds, 64, 64).astype(np.float32)
    big = scenes.render_batch([cls] * 4, seeds, 128, 128, scale=2).astype(np.float32)
    down = big.reshape(4, 64, 2, 64, 2, 3).mean((2, 4))
    other = scenes.render_batch([cls] * 4, [s + 100 for s in seeds], 64, 64).astype(np.float32)
    same, different = np.abs(down - small).mean(), np.abs(other - small).mean()
    assert same < 4.0, f"{scenes.CLASS_NAMES[cls]}: mean abs diff {same:.2f} of 255"
    assert same < 0.25 * different


def test_deterministic_and_independent_of_batching():
    labels, seeds = scenes.scene_of(range(40))
    batch = scenes.render_batch(labels, seeds, 64, 96)
    alone = np.stack([scenes.render(int(c), int(s), 64, 96) for c, s in zip(labels[::7], seeds[::7])])
    assert np.array_equal(batch[::7], alone)
    assert np.array_equal(batch, scenes.render_batch(labels, seeds, 64, 96))
    assert batch.dtype == np.uint8 and batch.shape == (40, 64, 96, 3)
    assert not np.array_equal(scenes.render(0, 1), scenes.render(0, 2))
    assert not np.array_equal(scenes.render(3, 1), scenes.render(4, 1))


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_classes_are_distinct_even_by_coarse_colour_layout():
    """A nearest-centroid classifier on 8x8 colour averages separates the classes."""

    def features(x):
        return x.astype(np.float32).reshape(len(x), 8, 8, 8, 8, 3).mean((2, 4)).reshape(len(x), -1)

    xa, ya = scenes.sample(range(300), seed=5)
    xb, yb = scenes.sample(range(200), seed=6)
    assert set(ya.tolist()) == set(CLASSES)
    centroids = np.stack([features(xa[ya == c]).mean(0) for c in CLASSES])
    pred = ((features(xb)[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (pred == yb).mean() >= 0.95
    assert (xa.reshape(300, -1, 3).std(axis=1).max(axis=1) > 15).all()  # every scene has real contrast


def test_data_interface_like_digits():
    x, y = scenes.sample(range(10))
    assert x.shape == (10, 64, 64, 3) and y.dtype == np.int64
    b, yb = scenes.sample(range(5, 10))
    assert np.array_equal(x[5:], b) and np.array_equal(y[5:], yb)
    held, _ = scenes.sample(range(10), seed=scenes.HELDOUT_SEED)
    assert not np.array_equal(x, held)
    forced, labels = scenes.sample([3, 4], labels=np.array([8, 8]))
    assert labels.tolist() == [8, 8]
    it = scenes.batches(4)
    first, second = next(it)[0], next(it)[0]
    assert np.array_equal(np.concatenate([first, second]), scenes.sample(range(8))[0])
    fine, _ = scenes.sample(range(3), size=(96, 96), scale=1.5)
    assert fine.shape == (3, 96, 96, 3)
    labels, seeds = scenes.scene_of(range(8))
    assert np.array_equal(scenes.render_batch(labels, seeds), scenes.sample(range(8))[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"labels": [10], "seeds": [0]}, "labels must be class ids"),
        ({"labels": [1.5], "seeds": [0]}, "labels must be class ids"),
        ({"labels": [1], "seeds": [-1]}, "seeds must be integers"),
        ({"labels": [1, 2], "seeds": [0]}, "one length"),
        ({"labels": [1], "seeds": [0], "height": 0}, "height"),
        ({"labels": [1], "seeds": [0], "scale": 0}, "scale"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        scenes.render_batch(**kwargs)


def test_contact_sheet_shape():
    sheet = scenes.contact_sheet(seeds=[0, 1], strip=64)
    assert sheet.shape == (10 * 64 + 9 * 2, 2 * 66 + 64, 3)
