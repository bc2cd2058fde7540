"""The adversarial part of a sharp tokenizer's training: a patch discriminator, hinge losses and the
adaptive weight that balances the generator's adversarial term against its reconstruction terms.

The discriminator scores every overlapping patch of an image as real or reconstructed (a
PatchGAN, as in pix2pix and the VQGAN of taming-transformers); the hinge losses and the adaptive
weight (the ratio of the two terms' gradient norms at the decoder's last layer) follow the VQGAN
recipe that LlamaGen's tokenizer also uses.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchDiscriminator(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, 1, h, w) logits, one per overlapping patch.

    ``layers`` 4x4 convolutions widen the channels (``ch`` doubling, at most 8x) after a first one;
    all but the last two halve the resolution.  GroupNorm, not BatchNorm: a batch of real and a
    batch of reconstructed images are scored separately, and batch statistics would tell them apart.
    """

    def __init__(self, ch: int = 32, layers: int = 2, groups: int = 8):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(3, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c = ch
        for i in range(1, layers + 1):
            cout = ch * min(2**i, 8)
            stride = 2 if i < layers else 1
            mods += [
                nn.Conv2d(c, cout, 4, stride=stride, padding=1, bias=False),
                nn.GroupNorm(groups, cout),
                nn.LeakyReLU(0.2),
            ]
            c = cout
        mods.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*mods)
        for m in self.modules():  # the DCGAN initialisation the PatchGAN recipe uses
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def hinge_d_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss on its logits for real and reconstructed images."""
    return 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())


def hinge_g_loss(fake: torch.Tensor) -> torch.Tensor:
    """The generator's adversarial loss: minus the discriminator's mean logit on its images."""
    return -fake.mean()


def adaptive_weight(rec_loss: torch.Tensor, adv_loss: torch.Tensor, last: torch.Tensor, cap: float = 1e4) -> float:
    """How much the adversarial term weighs so that its gradient at ``last`` (the decoder's last weight)
    is as large as the reconstruction terms': ``|grad rec| / (|grad adv| + 1e-4)``, at most ``cap``.

    Both losses keep their graphs (the caller backpropagates their weighted sum afterwards)."""
    g_rec = torch.autograd.grad(rec_loss, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv_loss, last, retain_graph=True)[0]
    return float((g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, cap))
