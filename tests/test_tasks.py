import numpy as np
import pytest
import torch
from PIL import Image

from arpg import masks, tasks
from arpg.images import prepare_image
from arpg.pipeline import Pipeline


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.random()  # ARPG-tiny on a 4x4 grid, VQ-tiny (4 px per token): 16x16 images


def rand_image(w=16, h=16, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_inpaint_keeps_known_cells_token_exact(pipe):
    img = rand_image()
    mask = np.zeros((16, 16), bool)
    mask[:, 8:] = True  # right half
    codes = pipe.encode(prepare_image(img, 4, 4)[None])[0]
    res = tasks.inpaint(pipe, img, mask, 1, seed=0, steps=3)
    assert torch.equal(res.tokens[:, :2], codes[:, :2])
    assert torch.equal(res.known, torch.tensor([[True, True, False, False]] * 4))
    assert (res.trace.step_of[:, :2] == -1).all() and (res.trace.step_of[:, 2:] >= 0).all()
    assert sorted(res.trace.order.tolist()) == [2, 3, 6, 7, 10, 11, 14, 15]
    # blended output keeps the original pixels outside the regenerated cells and their seam band
    orig = prepare_image(img, 4, 4)
    assert np.array_equal(res.image[:, : 8 - masks.SEAM_BAND], orig[:, : 8 - masks.SEAM_BAND])
    assert res.image.shape == res.raw.shape == (16, 16, 3)


def test_mask_touching_a_cell_regenerates_it_and_dilation(pipe):
    m = np.zeros((16, 16), bool)
    m[5, 5] = True  # one pixel in cell (1, 1)
    cells = tasks.cells_from_mask(m, 4)
    assert cells.sum() == 1 and cells[1, 1]
    assert tasks.cells_from_mask(m, 4, dilate=1).sum() == 9


def test_mask_of_another_size_is_resized(pipe):
    big = Image.new("L", (160, 160), 0)
    big.paste(255, (0, 0, 80, 160))  # left half
    res = tasks.inpaint(pipe, rand_image(), big, 2, seed=1, steps=2)
    assert res.known[:, 2:].all() and not res.known[:, :2].any()


def test_empty_mask_is_refused_full_mask_is_generation(pipe):
    with pytest.raises(ValueError, match="empty"):
        tasks.inpaint(pipe, rand_image(), np.zeros((16, 16), bool), 1)
    res = tasks.inpaint(pipe, rand_image(), np.ones((16, 16), bool), 1, seed=0, steps=2)
    assert res.note and "plain generation" in res.note


def test_outpaint_zero_returns_input_tokens(pipe):
    img = rand_image()
    codes = pipe.encode(prepare_image(img, 4, 4)[None])[0]
    res = tasks.outpaint(pipe, img, 1)
    assert torch.equal(res.tokens, codes) and res.note


def test_outpaint_all_around_places_original(pipe):
    img = rand_image()
    codes = pipe.encode(prepare_image(img, 4, 4)[None])[0]
    res = tasks.outpaint(pipe, img, 1, left=2, right=1, top=1, bottom=3, seed=0, steps=4)
    assert res.tokens.shape == (8, 7)
    assert torch.equal(res.tokens[1:5, 2:6], codes)
    assert res.known.sum() == 16 and (res.trace.step_of[~res.known] >= 0).all()
    assert res.image.shape == (32, 28, 3)


def test_panorama_is_four_times_wider(pipe):
    res = tasks.panorama(pipe, rand_image(), 1, times=4, seed=0, steps=2)
    assert res.image.shape == (16, 64, 3)


@pytest.mark.parametrize("strategy", tasks.RESIZE_STRATEGIES)
def test_resize_strategies(pipe, strategy):
    img = rand_image()
    codes = pipe.encode(prepare_image(img, 4, 4)[None])[0]
    res = tasks.resize(pipe, img, 1, scale=2, strategy=strategy, regenerate=0.5, seed=0, steps=3)
    assert res.tokens.shape == (8, 8) and res.image.shape == (32, 32, 3)
    if strategy == "lattice":
        assert torch.equal(res.tokens[::2, ::2], codes)
        assert res.known.sum() == 16
    else:
        assert res.known.sum() == 32  # half of the 64 cells kept


def test_resize_takes_what_it_is_not_told_from_the_model(pipe, monkeypatch):
    """Three defaults disagreed (UI reencode x1.25, CLI lattice x2, library lattice x1.5): the one default is the
    model's (its JSON's "resize" section over arpg.options.DEFAULT_RESIZE), for every setting left out."""
    from arpg.options import DEFAULT_RESIZE, ResizeDefaults

    img = rand_image()
    res = tasks.resize(pipe, img, 1, seed=0, steps=2)
    d = DEFAULT_RESIZE  # the tiny random model's JSON says nothing
    assert res.tokens.shape == (round(4 * d.scale),) * 2 and int((~res.known).sum()) == round(d.regenerate * 64)
    monkeypatch.setattr(pipe, "resize_defaults", ResizeDefaults("lattice", 1.5))
    res = tasks.resize(pipe, img, 1, seed=0, steps=2)
    assert res.tokens.shape == (6, 6) and int(res.known.sum()) == 16  # lattice: the 4x4 codes on the 6x6 grid
    res = tasks.resize(pipe, img, 1, scale=2.0, seed=0, steps=2)  # the strategy still the model's
    codes = pipe.encode(prepare_image(img, 4, 4)[None])[0]
    assert res.tokens.shape == (8, 8) and torch.equal(res.tokens[::2, ::2], codes)


def test_lattice_context_positions():
    t = torch.arange(4).view(2, 2)
    grid, known = tasks.lattice_context(t, 3, 3)
    assert grid.tolist() == [[0, 1, -1], [2, 3, -1], [-1, -1, -1]]
    assert known.sum() == 4


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda p: tasks.outpaint(p, rand_image(), 1, left=-1), "left"),
        (lambda p: tasks.resize(p, rand_image(), 1, scale=9), "scale"),
        (lambda p: tasks.resize(p, rand_image(), 1, strategy="magic"), "strategy"),
        (lambda p: tasks.inpaint(p, "not an image", np.ones((4, 4)), 1), "image"),
        (lambda p: tasks.inpaint(p, rand_image(), np.ones((16, 16)), 99), "class"),
    ],
)
def test_bad_inputs(pipe, call, match):
    with pytest.raises(ValueError, match=match):
        call(pipe)


def test_steps_are_capped_at_free_cells_with_a_note(pipe):
    m = np.zeros((16, 16), bool)
    m[:4, :4] = True  # one cell
    res = tasks.inpaint(pipe, rand_image(), m, 1, seed=0, steps=32)
    assert res.trace.forward_passes == 1 and "1 step" in res.note


def test_resize_scale_one_lattice_returns_input(pipe):
    img = rand_image()
    codes = pipe.encode(prepare_image(img, 4, 4)[None])[0]
    res = tasks.resize(pipe, img, 1, scale=1.0, strategy="lattice", seed=0)
    assert torch.equal(res.tokens, codes) and res.note
