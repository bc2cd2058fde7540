"""The RandAR family: exact to upstream's code, strict loading, family detection, the pipeline.

The reference vectors in ``tests/reference/`` were made once from upstream's own model and sampler
by ``tests/reference/make_randar_reference.py`` (its docstring names the commit and files).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from arpg.checkpoints import convert, load_randar, save_checkpoint
from arpg.config import RandARConfig, VQConfig
from arpg.pipeline import Pipeline
from arpg.randar import RandAR
from arpg.randar_sampling import generate_randar, randar_counts, randar_defaults
from arpg.state_dicts import CheckpointError, detect_family, infer_randar_config
from arpg.tokenizer import VQModel

REF = Path(__file__).parent / "reference"
WEIGHTS = REF / "randar_tiny.safetensors"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (tests/conftest.py)


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    return load_file(str(REF / "randar_tiny_reference.safetensors"))


@pytest.fixture(scope="module")
def meta() -> dict[str, str]:
    with safe_open(str(REF / "randar_tiny_reference.safetensors"), "pt") as f:
        return f.metadata()


@pytest.fixture(scope="module")
def model() -> RandAR:
    return load_randar(WEIGHTS)


# -- exactness against upstream ----------------------------------------------------------------
def test_teacher_forced_logits_match_upstream(model: RandAR, ref: dict[str, torch.Tensor], meta) -> None:
    null = torch.full_like(ref["labels"], model.cfg.num_classes)
    with torch.no_grad():
        cond, uncond = model(ref["tokens"], ref["labels"], ref["order"]), model(ref["tokens"], null, ref["order"])
    w = float(meta["cfg_scale"])
    up_guided = ref["logits_uncond"] + (ref["logits_cond"] - ref["logits_uncond"]) * w
    diffs = {
        "cond": (cond - ref["logits_cond"]).abs().max().item(),
        "uncond": (uncond - ref["logits_uncond"]).abs().max().item(),
        "guided": (uncond + (cond - uncond) * w - up_guided).abs().max().item(),
    }
    print("max |logit diff| vs upstream (fp32):", diffs)
    assert max(diffs.values()) < 1e-4, diffs


@pytest.mark.parametrize(
    "key,cfg_schedule,guided",
    [("greedy", "constant", False), ("greedy_cfg", "constant", True), ("greedy_cfg_linear", "linear", True)],
)
def test_greedy_parallel_tokens_match_upstream(model: RandAR, ref, meta, key: str, cfg_schedule: str, guided) -> None:
    steps, w = int(meta["steps"]), float(meta["cfg_scale"]) if guided else 1.0
    opts = randar_defaults(model.cfg).replace(steps=steps, top_k=1, cfg_scale=w, cfg_schedule=cfg_schedule)
    res = generate_randar(model, ref["labels"], opts, order=ref["decode_order"], generator=0)
    agree = (res.tokens.flatten(1) == ref[key]).float().mean().item()
    print(f"{key}: greedy tokens equal to upstream's: {agree:.1%}")
    assert agree == 1.0
    assert res.trace.forward_passes == len(res.trace.counts) == steps and max(res.trace.counts) > 1


def test_schedule_and_defaults_are_upstreams() -> None:
    counts = randar_counts(256, 88)
    assert len(counts) == 88 and sum(counts) == 256 and counts[:3] == [1, 1, 1]
    assert randar_counts(256, 256) == [1] * 256  # upstream's "no parallel decoding"
    opts = randar_defaults(RandARConfig.from_name("RandAR-L"))
    assert (opts.steps, opts.order, opts.schedule, opts.cfg_scale, opts.top_k) == (88, "random", "cosine", 4.0, 0)


def test_released_shapes() -> None:
    """RandAR-L / XL: 0.3B / 0.7B parameters as upstream names them; shapes give the preset back."""
    for name, millions in (("RandAR-L", 343), ("RandAR-XL", 775)):
        with torch.device("meta"):
            sd = RandAR(RandARConfig.from_name(name)).state_dict()
        assert round(sum(v.numel() for v in sd.values()) / 1e6) == millions
        assert sd["pos_instruct_embeddings"].shape == (1, sd["tok_embeddings.weight"].shape[1])
        assert infer_randar_config(sd) == RandARConfig.from_name(name) and detect_family(sd) == "randar"


def test_random_orders_are_per_image_and_seeded(model: RandAR) -> None:
    a, b = (generate_randar(model, [1, 2, 3], top_k=8, generator=7) for _ in range(2))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.trace.order, b.trace.order)
    assert a.trace.order.shape == (3, 36) and not torch.equal(a.trace.order[0], a.trace.order[1])
    with pytest.raises(ValueError, match="no context"):
        generate_randar(model, [1], context=object())


# -- loading and conversion ----------------------------------------------------------------------
def test_released_pickle_loads_and_converts(tmp_path: Path) -> None:
    sd = load_file(str(WEIGHTS))
    pt = tmp_path / "randar_tiny.pt"
    torch.save({"model": sd}, pt)
    loaded = load_randar(pt)
    assert loaded.cfg == RandARConfig.from_name("RandAR-tiny")
    assert all(torch.equal(v, sd[k]) for k, v in loaded.state_dict().items())
    out = tmp_path / "converted.safetensors"
    assert convert(pt, out) == "randar" and load_file(str(out)).keys() == sd.keys()


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_strict_loading_refuses_a_key_in_one_line(tmp_path: Path, change: str) -> None:
    sd = load_file(str(WEIGHTS))
    if change == "missing":
        del sd["layers.1.attention.wo.weight"]
    else:
        sd["layers.1.attention.bias"] = torch.zeros(3)
    path = tmp_path / "bad.pt"
    torch.save({"model": sd}, path)
    with pytest.raises(CheckpointError) as err:
        load_randar(path, "RandAR-tiny")
    msg = str(err.value)
    assert "\n" not in msg and ("missing keys: layers.1.attention.wo.weight" in msg or "layers.1.attention.bias" in msg)


def test_pipeline_from_files_picks_randar(tmp_path: Path, ref, meta) -> None:
    vq64 = save_checkpoint(
        VQModel(replace(VQConfig.from_name("VQ-tiny"), codebook_size=64)), tmp_path / "vq64.safetensors"
    )
    pipe = Pipeline.from_files(WEIGHTS, vq64, device="cpu", dtype=torch.float32)
    assert isinstance(pipe.model, RandAR) and pipe.defaults.order == "random" and pipe.defaults.steps == 12
    kw = dict(cfg_scale=float(meta["cfg_scale"]), cfg_schedule="constant", top_k=1, order=ref["decode_order"])
    out = pipe.generate(ref["labels"].tolist(), seed=0, **kw)  # fused and prepacked
    assert torch.equal(out.tokens.flatten(1), ref["greedy_cfg"]) and out.images.shape[0] == 2
