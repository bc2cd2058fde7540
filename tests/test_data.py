import numpy as np

from arpg import data


def test_deterministic_and_independent_of_batching():
    a, la = data.sample(range(10))
    b, lb = data.sample(range(5, 10))
    assert np.array_equal(a[5:], b) and np.array_equal(la[5:], lb)
    c, _ = data.sample(range(10), seed=data.HELDOUT_SEED)
    assert not np.array_equal(a, c)


def test_images_and_labels():
    x, y = data.sample(range(200))
    assert x.shape == (200, 64, 64, 3) and x.dtype == np.uint8
    assert set(y.tolist()) == set(range(10))
    # glyph and background differ: every image has real contrast
    assert (x.reshape(200, -1, 3).std(axis=1).max(axis=1) > 20).all()


def test_forced_labels_and_batches():
    x, y = data.sample([3, 4], labels=np.array([7, 7]))
    assert y.tolist() == [7, 7]
    it = data.batches(4)
    b1, _ = next(it)
    b2, _ = next(it)
    assert np.array_equal(np.concatenate([b1, b2]), data.sample(range(8))[0])
