"""The VQ decoder in bf16 and channels-last (VQModel.fast_decoding) stays within 40 dB PSNR of float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from arpg.checkpoints import load_vq
from arpg.config import VQConfig
from arpg.pipeline import SHIPPED_DIR, Pipeline
from arpg.tokenizer import VQModel, to_uint8
from arpg.zoo import MODELS

SCENES_DIR = MODELS["scenes"].folder


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@torch.inference_mode()
def decode(vq: VQModel, codes: torch.Tensor) -> np.ndarray:
    return to_uint8(vq.decode(codes)).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("folder", [SHIPPED_DIR, SCENES_DIR], ids=["digits", "scenes"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_shipped_tokenizers_decode_in_bf16_within_40_db(folder, channels_last):
    pipe = Pipeline.shipped(folder, dtype=torch.float32)
    codes = pipe.generate(list(range(8)), seed=0, steps=8).tokens  # token grids the model really makes
    ref = decode(pipe.vq, codes)
    fast = load_vq(folder / "vq.safetensors").fast_decoding(torch.bfloat16, channels_last)
    got = decode(fast, codes)
    assert fast.decode_dtype == torch.bfloat16 and fast.dtype == torch.float32  # the encoder is untouched
    assert got.shape == ref.shape and min(psnr(g, r) for g, r in zip(got, ref)) >= 40.0


def test_fast_decoding_keeps_keys_and_the_encoder():
    torch.manual_seed(0)
    vq = VQModel(VQConfig.from_name("VQ-tiny")).eval()
    keys = {k: v.shape for k, v in vq.state_dict().items()}
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    codes = vq.encode(images)
    ref = decode(vq, codes)
    vq.fast_decoding(torch.float32, channels_last=True)  # layout only: the same numbers up to rounding
    assert {k: v.shape for k, v in vq.state_dict().items()} == keys
    assert torch.equal(vq.encode(images), codes)
    assert psnr(decode(vq, codes), ref) >= 60.0
    assert vq.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
