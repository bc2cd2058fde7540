"""The LlamaGen family: exact to upstream's code, strict loading of the released layout, family detection.

The reference vectors in ``tests/reference/`` were made once from upstream's own model and sampler
by ``tests/reference/make_llamagen_reference.py`` (its docstring names the commit and files).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from arpg import cli
from arpg.checkpoints import load_llamagen, load_transformer, save_checkpoint
from arpg.config import ARPGConfig, LlamaGenConfig, VQConfig
from arpg.llamagen import LlamaGen
from arpg.llamagen_sampling import generate_raster, llamagen_defaults
from arpg.model import ARPG
from arpg.pipeline import Pipeline
from arpg.state_dicts import CheckpointError, detect_family, infer_llamagen_config
from arpg.tokenizer import VQModel

REF = Path(__file__).parent / "reference"
WEIGHTS = REF / "llamagen_tiny.safetensors"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread (tests/conftest.py)


@pytest.fixture(scope="module")
def ref() -> dict[str, torch.Tensor]:
    return load_file(str(REF / "llamagen_tiny_reference.safetensors"))


@pytest.fixture(scope="module")
def model() -> LlamaGen:
    return load_llamagen(WEIGHTS)


def _cfg_scale() -> float:
    from safetensors import safe_open

    with safe_open(str(REF / "llamagen_tiny_reference.safetensors"), "pt") as f:
        return float(f.metadata()["cfg_scale"])


def greedy(model: LlamaGen, labels: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """Our greedy raster decode, (B, N) tokens."""
    opts = llamagen_defaults(model.cfg).replace(cfg_scale=cfg_scale, top_k=1)
    return generate_raster(model, labels, opts, generator=0).tokens.flatten(1)


# -- exactness against upstream ----------------------------------------------------------------
def test_teacher_forced_logits_match_upstream(model: LlamaGen, ref: dict[str, torch.Tensor]) -> None:
    null = torch.full_like(ref["labels"], model.cfg.num_classes)
    with torch.no_grad():
        cond, uncond = model(ref["tokens"], ref["labels"]), model(ref["tokens"], null)
    w = _cfg_scale()
    diffs = {
        "cond": (cond - ref["logits_cond"]).abs().max().item(),
        "uncond": (uncond - ref["logits_uncond"]).abs().max().item(),
        "guided": (
            uncond + (cond - uncond) * w - (ref["logits_uncond"] + (ref["logits_cond"] - ref["logits_uncond"]) * w)
        )
        .abs()
        .max()
        .item(),
    }
    print("max |logit diff| vs upstream (fp32):", diffs)
    assert max(diffs.values()) < 1e-4, diffs


@pytest.mark.parametrize("key,cfg_scale", [("greedy", 1.0), ("greedy_cfg", None)])
def test_greedy_tokens_match_upstream(model: LlamaGen, ref: dict[str, torch.Tensor], key: str, cfg_scale) -> None:
    ours = greedy(model, ref["labels"], cfg_scale or _cfg_scale())
    agree = (ours == ref[key]).float().mean().item()
    print(f"{key}: greedy tokens equal to upstream's: {agree:.1%}")
    assert agree == 1.0


def test_released_shapes() -> None:
    """Upstream's GPT-B / GPT-L: 111M / 343M parameters, the SwiGLU sizes of its rule; shapes give the preset back."""
    for name, millions, ffn in (("LlamaGen-B", 111, 2048), ("LlamaGen-L", 343, 2816)):
        with torch.device("meta"):
            sd = LlamaGen(LlamaGenConfig.from_name(name)).state_dict()
        assert round(sum(v.numel() for v in sd.values()) / 1e6) == millions
        assert sd["layers.0.feed_forward.w1.weight"].shape[0] == ffn
        assert sd["cls_embedding.embedding_table.weight"].shape[0] == 1001  # classes + the null class
        assert infer_llamagen_config(sd) == LlamaGenConfig.from_name(name)


# -- loading and conversion ----------------------------------------------------------------------
@pytest.mark.parametrize("wrapper", ["model", "module", "state_dict"])
def test_released_pickle_loads_and_converts(tmp_path: Path, wrapper: str, capsys: pytest.CaptureFixture) -> None:
    sd = load_file(str(WEIGHTS))
    pt = tmp_path / "c2i_tiny.pt"
    torch.save({wrapper: sd, "args": None}, pt)  # as upstream's training saves it
    loaded = load_llamagen(pt)
    assert loaded.cfg == LlamaGenConfig.from_name("LlamaGen-tiny")
    assert all(torch.equal(v, sd[k]) for k, v in loaded.state_dict().items())
    out = tmp_path / "c2i_tiny.safetensors"
    assert cli.main(["convert", str(pt), str(out)]) == 0
    assert "(a LlamaGen model)" in capsys.readouterr().out
    assert json.loads(out.with_suffix(".json").read_text())["family"] == "llamagen"
    assert load_file(str(out)).keys() == sd.keys()


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
        load_llamagen(path, "LlamaGen-tiny")
    msg = str(err.value)
    assert "\n" not in msg and ("missing keys: layers.1.attention.wo.weight" in msg or "layers.1.attention.bias" in msg)


# -- which family ----------------------------------------------------------------------------------
def test_family_detection() -> None:
    with torch.device("meta"):
        arpg_sd = ARPG(ARPGConfig.from_name("ARPG-tiny")).state_dict()
    llamagen_sd = load_file(str(WEIGHTS))
    assert detect_family(arpg_sd) == "arpg"
    assert detect_family(llamagen_sd) == "llamagen"
    assert detect_family({**llamagen_sd, "pos_instruct_embeddings": torch.zeros(1, 32)}) == "randar"
    with pytest.raises(CheckpointError) as err:
        detect_family({"blocks.0.attn.qkv.weight": torch.zeros(1)})
    msg = str(err.value)
    assert "\n" not in msg and all(name in msg for name in ("ARPG", "LlamaGen", "RandAR", "VQ"))


def test_pipeline_from_files_tells_the_family(tmp_path: Path, tiny_files: tuple[Path, Path], ref) -> None:
    arpg_file, vq_file = tiny_files
    assert isinstance(Pipeline.from_files(arpg_file, vq_file, device="cpu").model, ARPG)
    vq64 = save_checkpoint(
        VQModel(replace(VQConfig.from_name("VQ-tiny"), codebook_size=64)), tmp_path / "vq64.safetensors"
    )
    pipe = Pipeline.from_files(WEIGHTS, vq64, device="cpu", dtype=torch.float32)
    assert isinstance(pipe.model, LlamaGen) and pipe.defaults.order == "raster" and pipe.defaults.steps == 36
    out = pipe.generate(ref["labels"].tolist(), seed=0, cfg_scale=_cfg_scale(), top_k=1)  # fused and prepacked
    assert torch.equal(out.tokens.flatten(1), ref["greedy_cfg"]) and out.images.shape[0] == 2
    assert out.trace.forward_passes == 36 and out.trace.order.tolist() == list(range(36))
    randar = tmp_path / "randar.safetensors"
    save_checkpoint({**load_file(str(WEIGHTS)), "pos_instruct_embeddings": torch.zeros(1, 32)}, randar)
    assert type(load_transformer(randar)).__name__ == "RandAR"  # its keys say RandAR, not LlamaGen
    with pytest.raises(
        CheckpointError,
        match="looks like a VQ tokenizer checkpoint, expected an ARPG model, a RandAR model or a LlamaGen model",
    ):
        Pipeline.from_files(vq_file, vq_file, device="cpu")


def test_sampler_refuses_what_llamagen_cannot_do(model: LlamaGen) -> None:
    with pytest.raises(ValueError, match="one token per step in raster order"):
        generate_raster(model, [1], llamagen_defaults(model.cfg), steps=8, schedule="arccos")
    with pytest.raises(ValueError, match="one token per step in raster order"):
        generate_raster(model, [1], llamagen_defaults(model.cfg), order="random")
    opts = llamagen_defaults(model.cfg).replace(top_k=8, temperature=1.5)
    a, b = (generate_raster(model, [1, 2], opts, generator=7).tokens for _ in range(2))
    assert torch.equal(a, b)  # a seed reproduces a sampled decode exactly
