"""SamplingOptions and where a model's sampling defaults come from (arpg.options)."""

import dataclasses
import json

import pytest

from arpg.checkpoints import save_checkpoint
from arpg.config import ARPGConfig, arpg_preset_name
from arpg.options import PRESET_DEFAULTS, SamplingOptions, model_defaults, with_overrides
from arpg.pipeline import Pipeline


@pytest.mark.parametrize("name,scale", [("ARPG-L", 5.0), ("ARPG-XL", 6.0), ("ARPG-XXL", 7.5)])
def test_released_presets_read_their_guidance_from_package_data(name, scale):
    cfg = ARPGConfig.from_name(name)
    assert json.loads(PRESET_DEFAULTS.read_text())["presets"][name]["cfg_scale"] == scale
    assert model_defaults(cfg) == SamplingOptions(cfg_scale=scale, cfg_schedule="linear")
    bigger = dataclasses.replace(cfg, grid_size=32)  # 512 px images: the same weights
    assert arpg_preset_name(bigger) == name and model_defaults(bigger).cfg_scale == scale


def test_other_architectures_get_the_field_defaults():
    assert arpg_preset_name(ARPGConfig(dim=512, n_head=8)) is None
    assert model_defaults(ARPGConfig(dim=512, n_head=8)) == SamplingOptions()


@pytest.fixture
def tiny_weights(tmp_path):
    p = Pipeline.random("ARPG-tiny", "VQ-tiny")
    save_checkpoint(p.model, tmp_path / "arpg.safetensors")
    save_checkpoint(p.vq, tmp_path / "vq.safetensors")
    return tmp_path / "arpg.safetensors", tmp_path / "vq.safetensors"


def test_json_beside_the_weights_overrides_field_by_field(tiny_weights):
    weights, vq = tiny_weights
    assert Pipeline.from_files(weights, vq, device="cpu").defaults == SamplingOptions()
    model = Pipeline.from_files(weights, vq, device="cpu").model
    save_checkpoint(model, weights, {**model.cfg.to_dict(), "sampling": {"steps": 8, "order": "raster"}})
    pipe = Pipeline.from_files(weights, vq, device="cpu")
    assert pipe.defaults == SamplingOptions(steps=8, order="raster")
    out = pipe.generate([1], seed=0)
    assert out.trace.forward_passes == 8 and out.trace.order.tolist() == list(range(16))


@pytest.mark.parametrize(
    "section,match", [({"steps": 0}, "steps"), ({"guidance": 2}, "guidance"), ([1, 2], "sampling")]
)
def test_bad_sampling_section_names_the_file(tiny_weights, section, match):
    weights, _ = tiny_weights
    side = weights.with_suffix(".json")
    side.write_text(json.dumps({**json.loads(side.read_text()), "sampling": section}))
    with pytest.raises(ValueError, match=match) as err:
        model_defaults(ARPGConfig.from_name("ARPG-tiny"), weights)
    assert "arpg.json" in str(err.value)


def test_overrides_none_keeps_the_field_and_unknown_names_are_type_errors():
    base = SamplingOptions(steps=8, cfg_scale=2.0)
    assert with_overrides(None, {}) == SamplingOptions()
    assert with_overrides(None, {"steps": 4}, base) == base.replace(steps=4)
    assert with_overrides(base, {"cfg_scale": None, "order": "raster"}) == SamplingOptions(
        8, cfg_scale=2.0, order="raster"
    )
    with pytest.raises(TypeError, match="guidance"):
        with_overrides(base, {"guidance": 3.0})
    with pytest.raises(TypeError, match="SamplingOptions"):
        with_overrides({"steps": 4}, {})
    with pytest.raises(ValueError, match="steps"):
        with_overrides(base, {"steps": 0})
