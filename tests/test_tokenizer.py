"""The VQ tokenizer: shapes at any multiple of the factor, with the released VQ-16 layout."""

import pytest
import torch

from arpg.config import VQConfig
from arpg.tokenizer import VQModel, from_uint8, to_uint8


@pytest.fixture(scope="module")
def vq16():
    torch.manual_seed(0)
    return VQModel(VQConfig.from_name("VQ-16")).eval()


@pytest.mark.parametrize("size", [64, 80])  # 4x4 and 5x5 tokens: any multiple of 16
@torch.no_grad()
def test_vq16_round_trip_shapes(vq16, size):
    x = torch.rand(1, 3, size, size) * 2 - 1
    codes = vq16.encode(x)
    assert codes.shape == (1, size // 16, size // 16) and codes.dtype == torch.long
    assert 0 <= codes.min() and codes.max() < 16384
    out = vq16.decode(codes)
    assert out.shape == (1, 3, size, size) and out.dtype == torch.float32


@torch.no_grad()
def test_non_square_and_bad_sizes():
    vq = VQModel(VQConfig.from_name("VQ-tiny")).eval()
    codes = vq.encode(torch.zeros(2, 3, 8, 20))
    assert codes.shape == (2, 2, 5) and vq.decode(codes).shape == (2, 3, 8, 20)
    with pytest.raises(ValueError, match="multiple of 4"):
        vq.encode(torch.zeros(1, 3, 10, 8))


def test_uint8_conversions():
    x = torch.randint(0, 256, (2, 5, 7, 3), dtype=torch.uint8)
    assert torch.equal(to_uint8(from_uint8(x)), x)
