"""The shipped model in assets/models: loads, generates, and the judge recognises it."""

import numpy as np
import pytest

from arpg import tasks
from arpg.data import digits as data
from arpg.judge import judge_images
from arpg.options import SamplingOptions
from arpg.pipeline import SHIPPED_DIR, Pipeline


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.shipped(device="cpu")


def test_generated_images_have_the_promised_shape(pipe):
    out = pipe.generate([0, 9], seed=0, steps=32)
    assert out.images.shape == (2, 64, 64, 3) and out.images.dtype == np.uint8
    assert out.trace.forward_passes == 32 and (out.tokens >= 0).all()


def test_files_small_and_configured():
    files = list(SHIPPED_DIR.glob("*.safetensors"))
    assert {f.name for f in files} == {"arpg.safetensors", "vq.safetensors", "judge.safetensors"}
    assert sum(f.stat().st_size for f in SHIPPED_DIR.iterdir() if f.is_file()) < 40 * 2**20
    for f in files:
        assert f.with_suffix(".json").exists()


def test_all_shipped_weights_together_fit_64_mb():
    """Every model folder under assets/models together: at most 64 MB, each file counted once (a folder
    may link to another's tokenizer and judge)."""
    files = {f.resolve() for f in SHIPPED_DIR.rglob("*") if f.is_file()}
    total = sum(f.stat().st_size for f in files)
    assert total <= 64 * 10**6, f"shipped weights take {total / 1e6:.1f} MB; store bf16 or shrink a model"


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_generates_recognisable_digits(pipe):
    labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    out = pipe.generate(labels, seed=0, steps=32)
    assert out.images.shape == (10, 64, 64, 3) and out.images.dtype == np.uint8
    assert out.trace.forward_passes == 32
    pred, _ = judge_images(pipe.judge, out.images)
    assert (pred == np.asarray(labels)).mean() >= 0.6  # loose bound; the full figure is in `python -m arpg eval`


@pytest.mark.parametrize("style", ["wide", "centred"])
def test_judge_on_real_images(pipe, style):
    imgs, labels = data.sample(range(100), seed=data.HELDOUT_SEED + 7, style=style)
    pred, _ = judge_images(pipe.judge, imgs)
    assert (pred == labels).mean() >= 0.95


@pytest.mark.parametrize("style", ["wide", "centred"])
def test_tokenizer_round_trip(pipe, style):
    imgs, _ = data.sample(range(20), seed=data.HELDOUT_SEED, style=style)
    rec = pipe.decode(pipe.encode(imgs))
    mse = ((rec.astype(float) - imgs.astype(float)) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 22


@pytest.mark.slow  # over a second: the fast tier stays under a minute
def test_inpaint_same_class_few_trials(pipe):
    imgs, labels = data.sample(range(6), seed=data.HELDOUT_SEED + 21, style=data.GENERATOR_STYLE)
    m = np.zeros((64, 64), bool)
    m[:, 32:] = True
    outs = [tasks.inpaint(pipe, imgs[i], m, int(labels[i]), seed=i, steps=16).image for i in range(6)]
    pred, _ = judge_images(pipe.judge, np.stack(outs))
    assert (pred == labels).mean() >= 0.5  # loose; 100 trials in scripts/bench_tasks.py


def test_shipped_defaults_come_from_its_json(pipe):
    """Constant guidance 3.0 over 32 steps, read from assets/models/arpg.json's "sampling" section."""
    assert pipe.defaults == SamplingOptions(steps=32, cfg_scale=3.0, cfg_schedule="constant")
    out = pipe.generate([3], seed=0, steps=4)
    assert out.trace.cfg == [3.0] * 4


def test_model_defaults_apply_unless_given():
    p = Pipeline.random()
    p.defaults = p.defaults.replace(cfg_schedule="constant", cfg_scale=3.0, steps=4)
    assert list(p.generate([1, 2], seed=3).trace.cfg) == [3.0] * 4
    assert list(p.generate([1, 2], seed=3, cfg_schedule=None).trace.cfg) == [3.0] * 4
    linear = list(p.generate([1, 2], seed=3, cfg_schedule="linear").trace.cfg)
    assert linear[-1] == 3.0 and linear[0] < 3.0
    given = SamplingOptions(steps=2, cfg_scale=2.0)  # an options value replaces the defaults entirely
    cfg = p.generate([1], given, seed=3).trace.cfg
    assert len(cfg) == 2 and cfg[0] < cfg[1] == 2.0  # linear: the random model's own default schedule
