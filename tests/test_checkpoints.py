"""Checkpoint I/O: released key lists, safe loading, strict checks, inference, conversion, the one writer.

(``arpg.state_dicts`` reads files and infers configs; ``arpg.checkpoints`` loads models and writes.)
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import arpg.checkpoints
from arpg.checkpoints import convert, load_arpg, load_into, load_vq, save_checkpoint
from arpg.config import ARPGConfig, VQConfig
from arpg.model import ARPG
from arpg.state_dicts import CheckpointError, detect_family, infer_arpg_config, infer_vq_config, read_state_dict
from arpg.tokenizer import VQModel

DATA = Path(__file__).parent / "data"


def read_keys(name: str) -> dict[str, tuple[int, ...]]:
    """Parse lines 'name (d0, d1, ...)'."""
    out = {}
    for line in (DATA / name).read_text().splitlines():
        if line.strip():
            key, shape = line.split(" ", 1)
            out[key] = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
    return out


def meta_arpg(name: str) -> ARPG:
    with torch.device("meta"):
        return ARPG(ARPGConfig.from_name(name))


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def tiny_model(seed: int = 0) -> ARPG:
    torch.manual_seed(seed)
    return ARPG(ARPGConfig.from_name("ARPG-tiny")).init_weights(0.2).eval()


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k], b[k]), k


# -- released layouts ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "preset,keys,count",
    [
        ("ARPG-L", "arpg-l_keys.txt", 319_845_376),
        ("ARPG-XL", "arpg-xl_keys.txt", 718_997_760),
        ("ARPG-XXL", "arpg-xxl_keys.txt", 1_302_449_664),
    ],
)
def test_arpg_keys_match_release(preset, keys, count):
    m = meta_arpg(preset)
    ref = read_keys(keys)
    assert list(shapes(m)) == list(ref)  # same names, same order
    assert shapes(m) == ref
    assert sum(p.numel() for p in m.parameters()) == count
    assert infer_arpg_config(m.state_dict()) == ARPGConfig.from_name(preset)
    assert detect_family(m.state_dict()) == "arpg"


def test_vq16_keys_match_release():
    with torch.device("meta"):
        m = VQModel(VQConfig.from_name("VQ-16"))
    ref = read_keys("vq16_keys.txt")
    assert list(shapes(m)) == list(ref)
    assert shapes(m) == ref
    assert sum(p.numel() for p in m.parameters()) == 71_883_403
    assert detect_family(m.state_dict()) == "vq"
    assert infer_vq_config(m.state_dict()) == VQConfig.from_name("VQ-16")


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", [None, "state_dict", "model", "ema"])
def test_pt_round_trip(tmp_path, wrap):
    m = tiny_model()
    sd = m.state_dict()
    path = tmp_path / "tiny.pt"
    torch.save(sd if wrap is None else {wrap: sd, "epoch": 3}, path)
    assert_same(read_state_dict(path), sd)
    loaded = load_arpg(path, "ARPG-tiny")
    assert_same(loaded.state_dict(), sd)
    assert loaded.cfg == m.cfg and not loaded.training


def test_wrapper_priority_and_prefixes(tmp_path):
    a, b = tiny_model(0).state_dict(), tiny_model(1).state_dict()
    path = tmp_path / "both.pth"
    torch.save({"ema": b, "model": {f"module._orig_mod.{k}": v for k, v in a.items()}}, path)
    assert_same(read_state_dict(path), a)  # model beats ema; DDP/compile prefixes stripped


def test_safetensors_round_trip_and_dtype(tmp_path):
    m = tiny_model()
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(m, path, m.cfg)
    assert json.loads(path.with_suffix(".json").read_text())["family"] == "arpg"
    loaded = load_arpg(path)  # config from the sidecar
    assert_same(loaded.state_dict(), m.state_dict())
    half = load_arpg(path, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in half.parameters())


def test_load_onto_meta_gives_real_tensors(tmp_path):
    m = tiny_model()
    path = tmp_path / "tiny.safetensors"
    save_file(m.state_dict(), str(path))  # no sidecar: config inferred (matches ARPG-tiny)
    loaded = load_arpg(path)
    assert loaded.cfg == ARPGConfig.from_name("ARPG-tiny")
    assert all(not t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    tokens = torch.randint(0, 32, (1, 16))
    order = torch.randperm(16)[None]
    with torch.no_grad():
        assert torch.equal(loaded(tokens, torch.tensor([1]), order), m(tokens, torch.tensor([1]), order))


def test_convert_pt_to_safetensors(tmp_path):
    m = tiny_model()
    src, dst = tmp_path / "in.pt", tmp_path / "out" / "tiny.safetensors"
    torch.save({"state_dict": m.state_dict()}, src)
    assert convert(src, dst) == "arpg"
    cfg = json.loads(dst.with_suffix(".json").read_text())
    assert ARPGConfig.from_dict(cfg) == m.cfg
    assert_same(load_arpg(dst).state_dict(), m.state_dict())


def test_vq_tiny_convert_and_load(tmp_path):
    torch.manual_seed(0)
    cfg = VQConfig.from_name("VQ-tiny")
    vq = VQModel(cfg)
    vq.quantize.codebook_used.fill_(3.0)
    src, dst = tmp_path / "vq.pt", tmp_path / "vq.safetensors"
    torch.save({"model": vq.state_dict()}, src)
    assert infer_vq_config(read_state_dict(src)) == cfg
    assert convert(src, dst) == "vq"
    loaded = load_vq(dst)
    assert loaded.cfg == cfg
    assert_same(loaded.state_dict(), vq.state_dict())  # includes quantize.codebook_used
    with pytest.raises(CheckpointError, match="looks like a VQ tokenizer checkpoint, expected an ARPG model"):
        load_arpg(dst)
    save_checkpoint(tiny_model(), tmp_path / "a.safetensors")
    with pytest.raises(CheckpointError, match="looks like an ARPG model checkpoint, expected a VQ tokenizer"):
        load_vq(tmp_path / "a.safetensors")


# -- inference ------------------------------------------------------------------------------
def test_infer_arpg_config_tiny_and_override():
    m = tiny_model()
    assert infer_arpg_config(m.state_dict()) == m.cfg
    assert infer_arpg_config(m.state_dict(), n_head=4).n_head == 4
    with torch.device("meta"):
        odd = ARPG(
            ARPGConfig(
                dim=192, n_head=3, n_self_layers=1, n_cross_layers=2, vocab_size=50, num_classes=7, multiple_of=64
            )
        )
    cfg = infer_arpg_config(odd.state_dict())  # no preset: head_dim 64
    assert (cfg.dim, cfg.n_head, cfg.n_self_layers, cfg.n_cross_layers) == (192, 3, 1, 2)
    assert (cfg.vocab_size, cfg.num_classes, cfg.ffn_dim) == (50, 7, odd.cfg.ffn_dim)


def test_detect_family_unknown():
    with pytest.raises(CheckpointError, match="expected ARPG keys"):
        detect_family({"foo.weight": torch.zeros(1)})


# -- strict checks -------------------------------------------------------------------------
def test_renamed_key_is_named(tmp_path):
    sd = tiny_model().state_dict()
    sd["head.weights"] = sd.pop("head.weight")
    with pytest.raises(CheckpointError, match=r"missing keys: head\.weight.*unexpected keys: head\.weights"):
        load_into(meta_arpg("ARPG-tiny"), sd)
    path = tmp_path / "renamed.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"head\.weight"):
        load_arpg(path, "ARPG-tiny")


def test_misshaped_key_is_named():
    sd = tiny_model().state_dict()
    sd["layers.norm.weight"] = torch.ones(65)
    expected = r"wrong shapes: layers\.norm\.weight \(checkpoint \(65,\) vs model \(64,\)\)"
    with pytest.raises(CheckpointError, match=expected):
        load_into(meta_arpg("ARPG-tiny"), sd)


def test_mismatch_list_is_truncated():
    sd = {f"junk.{i}": torch.zeros(1) for i in range(9)}
    with pytest.raises(CheckpointError, match="and 4 more") as err:
        load_into(meta_arpg("ARPG-tiny"), sd)
    assert "\n" not in str(err.value)


def test_non_strict_still_rejects_meta_leftovers():
    sd = tiny_model().state_dict()
    del sd["norm.weight"]
    with pytest.raises(CheckpointError, match="meta device"):
        load_into(meta_arpg("ARPG-tiny"), sd, strict=False)


# -- unsafe and broken files ---------------------------------------------------------------
class Evil:
    """Would create a marker file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvilOpen(Evil):
    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("evil_cls", [Evil, EvilOpen])
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_pickle_refused(tmp_path, evil_cls, writer):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": tiny_model().state_dict(), "x": evil_cls(marker)}
    if writer == "torch":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    with pytest.raises(CheckpointError, match="refusing to unpickle arbitrary objects"):
        read_state_dict(path)
    with pytest.raises(CheckpointError, match="refusing"):
        load_arpg(path)
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_file(tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    save_file(tiny_model().state_dict(), str(good)) if suffix == ".safetensors" else torch.save(
        tiny_model().state_dict(), good
    )
    data = good.read_bytes()
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_state_dict(bad)


def test_legacy_pickle_truncated(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save(tiny_model().state_dict(), path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_state_dict(path)


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".safetensors"])
def test_empty_file(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.touch()
    with pytest.raises(CheckpointError, match="empty"):
        read_state_dict(path)


@pytest.mark.parametrize("data", [b"this is not a checkpoint\n" * 10, b"garbage" * 10, bytes(range(256)) * 4])
def test_garbage_file(tmp_path, data):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="corrupt") as err:
        read_state_dict(path)
    assert "refusing" not in str(err.value)


def test_wrong_extension_and_missing(tmp_path):
    txt = tmp_path / "weights.txt"
    txt.write_text("hello")
    expected = r"unsupported file type '\.txt', expected one of \.safetensors"
    with pytest.raises(CheckpointError, match=expected):
        read_state_dict(txt)
    with pytest.raises(CheckpointError, match="no such file"):
        read_state_dict(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_arpg(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="is a directory"):
        read_state_dict(tmp_path)


def test_no_tensors(tmp_path):
    path = tmp_path / "empty_dict.pt"
    torch.save({"epoch": 3, "args": {"lr": 1.0}}, path)
    with pytest.raises(CheckpointError, match="holds no tensors"):
        read_state_dict(path)


def test_bad_sidecar_family(tmp_path):
    m = tiny_model()
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(m, path)
    path.with_suffix(".json").write_text(json.dumps(VQConfig().to_dict()))
    with pytest.raises(CheckpointError, match="config family 'vq'"):
        load_arpg(path)


# -- the one writer ------------------------------------------------------------------------
def test_save_checkpoint_takes_a_state_dict_and_a_dict_config(tmp_path):
    sd = {"w": torch.arange(6.0).reshape(2, 3).t(), "b": torch.ones(3)}  # w is not contiguous
    sd["view"] = sd["b"][:2]  # shares b's storage
    path = save_checkpoint(sd, tmp_path / "sub" / "x.safetensors", {"family": "judge", "num_classes": 10})
    back = load_file(str(path))
    assert all(torch.equal(back[k], sd[k]) for k in sd)
    assert json.loads(path.with_suffix(".json").read_text()) == {"family": "judge", "num_classes": 10}
    save_checkpoint(sd, tmp_path / "bare.safetensors")  # no config, no .cfg: no JSON
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.safetensors", "sub"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json", "x.safetensors"]  # no temporary files
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in path.parent.iterdir())  # readable by every user


def test_save_checkpoint_refuses_bad_input_before_writing(tmp_path):
    with pytest.raises(CheckpointError, match="must end in .safetensors"):
        save_checkpoint({"w": torch.ones(1)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="meta device"):
        save_checkpoint({"w": torch.ones(1, device="meta")}, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="config is a list"):
        save_checkpoint({"w": torch.ones(1)}, tmp_path / "x.safetensors", [1, 2])
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    """A write that dies half-way leaves the old weights and config in place and no temporary file."""
    m = tiny_model()
    path = save_checkpoint(m, tmp_path / "tiny.safetensors")
    before = path.read_bytes(), path.with_suffix(".json").read_text()

    def dies(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(arpg.checkpoints, "save_file", dies)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tiny_model(1), path, {"family": "arpg", "changed": True})
    assert (path.read_bytes(), path.with_suffix(".json").read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.json", "tiny.safetensors"]
