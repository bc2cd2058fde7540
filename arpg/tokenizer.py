"""LlamaGen-compatible VQ tokenizer (FoundationVision/LlamaGen, ``vq_ds16_c2i``).

Convolutional encoder/decoder with GroupNorm and swish, attention blocks only at the
lowest resolution, and an l2-normalised codebook.  Parameter names match the released
checkpoint so ``vq_ds16_c2i.pt`` loads strictly.  Images are (B, 3, H, W) in [-1, 1];
codes are (B, H/f, W/f) long with f = 2 ** (len(ch_mult) - 1).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import VQConfig


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        skip = self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x
        return skip + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1 convolutions."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.norm(x)
        q, k, v = (t.flatten(2).transpose(1, 2) for t in (self.q(h), self.k(h), self.v(h)))  # (B, HW, C)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, C, H, W)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Zero-pad right/bottom by one, then a 3x3 stride-2 convolution."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest x2, then a 3x3 convolution."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level: res blocks, optional attention after each, optional resampling."""

    def __init__(self, cin: int, cout: int, n_res: int, attn: bool, groups: int):
        super().__init__()
        self.res = nn.ModuleList(ResnetBlock(cin if i == 0 else cout, cout, groups) for i in range(n_res))
        self.attn = nn.ModuleList(AttnBlock(cout, groups) for _ in range(n_res if attn else 0))

    def run(self, h: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.res):
            h = block(h)
            if len(self.attn):
                h = self.attn[i](h)
        return h


def _mid(c: int, groups: int) -> nn.ModuleList:
    return nn.ModuleList([ResnetBlock(c, c, groups), AttnBlock(c, groups), ResnetBlock(c, c, groups)])


class Encoder(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        g, ch, mult = cfg.norm_groups, cfg.ch, cfg.ch_mult
        self.conv_in = nn.Conv2d(3, ch, 3, padding=1)
        self.conv_blocks = nn.ModuleList()
        cin = ch
        for i, m in enumerate(mult):
            last = i == len(mult) - 1
            level = Level(cin, ch * m, cfg.num_res_blocks, attn=last, groups=g)
            if not last:
                level.downsample = Downsample(ch * m)
            self.conv_blocks.append(level)
            cin = ch * m
        self.mid = _mid(cin, g)
        self.norm_out = nn.GroupNorm(g, cin, eps=1e-6)
        self.conv_out = nn.Conv2d(cin, cfg.z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = level.run(h)
            if hasattr(level, "downsample"):
                h = level.downsample(h)
        for block in self.mid:
            h = block(h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        g, ch, mult = cfg.norm_groups, cfg.ch, cfg.ch_mult
        cin = ch * mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, cin, 3, padding=1)
        self.mid = _mid(cin, g)
        self.conv_blocks = nn.ModuleList()
        for j, m in enumerate(reversed(mult)):
            level = Level(cin, ch * m, cfg.num_res_blocks + 1, attn=j == 0, groups=g)
            if j != len(mult) - 1:
                level.upsample = Upsample(ch * m)
            self.conv_blocks.append(level)
            cin = ch * m
        self.norm_out = nn.GroupNorm(g, cin, eps=1e-6)
        self.conv_out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in self.conv_blocks:
            h = level.run(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest neighbour in an l2-normalised codebook (cosine similarity)."""

    def __init__(self, n: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(n, dim)
        # LlamaGen keeps a rolling record of used codes; kept for key compatibility.
        self.register_buffer("codebook_used", torch.zeros(65536))

    def codebook(self) -> torch.Tensor:
        return F.normalize(self.embedding.weight, dim=-1)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D, h, w) -> codes (B, h, w)."""
        zf = F.normalize(z.permute(0, 2, 3, 1).float(), dim=-1)  # (B, h, w, D)
        sim = zf @ self.codebook().float().t()  # argmax cosine == argmin l2 on the sphere
        return sim.argmax(-1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, h, w) -> (B, D, h, w) normalised code vectors."""
        return self.codebook()[codes].permute(0, 3, 1, 2).contiguous()


class VQModel(nn.Module):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quantize = VectorQuantizer(cfg.codebook_size, cfg.codebook_dim)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.codebook_dim, 1)
        self.post_quant_conv = nn.Conv2d(cfg.codebook_dim, cfg.z_channels, 1)
        self._channels_last = False  # the decoder's activations (see fast_decoding)

    @property
    def factor(self) -> int:
        return self.cfg.downsample

    @property
    def device(self) -> torch.device:
        return self.quant_conv.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.quant_conv.weight.dtype

    def check_size(self, h: int, w: int) -> None:
        f = self.factor
        if h % f or w % f or h < f or w < f:
            raise ValueError(f"image size {w}x{h} must be a positive multiple of {f} on both sides")

    def latent(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> pre-quantisation latent (B, D, H/f, W/f)."""
        self.check_size(*images.shape[-2:])
        return self.quant_conv(self.encoder(images.to(self.dtype)))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> codes (B, H/f, W/f) long."""
        return self.quantize.nearest(self.latent(images))

    @property
    def decode_dtype(self) -> torch.dtype:
        """The dtype the decoder runs in (the encoder's, unless :meth:`fast_decoding` changed it)."""
        return self.post_quant_conv.weight.dtype

    def fast_decoding(self, dtype: torch.dtype = torch.bfloat16, channels_last: bool = True) -> VQModel:
        """Run the decoder in ``dtype`` with channels-last activations (oneDNN's native layout on a CPU:
        no reorder around each convolution); the encoder, the codebook and the state-dict keys stay.
        Its images stay within the PSNR bound of ``tests/test_tokenizer_fast.py`` of the float32 decode;
        ``scripts/cpu_space_bench.py`` measures the time saved. Returns self."""
        for m in (self.post_quant_conv, self.decoder):
            m.to(dtype=dtype, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self._channels_last = channels_last
        return self

    def decode_latent(self, zq: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self._channels_last else torch.preserve_format
        return self.decoder(self.post_quant_conv(zq.to(dtype=self.decode_dtype, memory_format=fmt)))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, h, w) long -> images (B, 3, h*f, w*f) in [-1, 1] (float32)."""
        return self.decode_latent(self.quantize.lookup(codes)).float()

    def forward(self, images: torch.Tensor, beta: float = 0.25):
        """Training pass: returns (reconstruction, vq_loss, commit_loss, codes)."""
        z = F.normalize(self.latent(images), dim=1)
        codes = self.quantize.nearest(z)
        zq = self.quantize.lookup(codes)
        vq_loss = F.mse_loss(zq, z.detach())
        commit = beta * F.mse_loss(z, zq.detach())
        zq = z + (zq - z).detach()  # straight-through
        return self.decode_latent(zq), vq_loss, commit, codes


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8, as LlamaGen: clamp(127.5 x + 128)."""
    return (127.5 * images.float() + 128.0).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
