"""Training a LlamaGen model (:mod:`arpg.llamagen`) here: teacher-forced next-token prediction in raster order.

What LlamaGen trains (FoundationVision/LlamaGen, ``autoregressive/train/train_c2i.py`` and ``models/gpt.py``),
on the recipe's token caches (:func:`arpg.train.stages.encode_dataset`) and through the loop the ARPG phases
use (:func:`arpg.train.loop.fit_steps`: AdamW with weight decay on matrices, betas 0.9/0.95, gradients
clipped at 1, warm-up then cosine, bf16 autocast):

* each sequence is the class token then the image's tokens in raster order; the output at position i
  predicts cell i (:meth:`arpg.llamagen.LlamaGen.forward`), one cross-entropy over every cell;
* class dropout for classifier-free guidance: a label becomes the null class (id ``num_classes``, the
  class table's extra row) at the recipe's ``label_dropout`` rate (upstream's ``class_dropout_prob``, 0.1);
* upstream's initialisation: linears and embeddings N(0, 0.02), the output head zero (the first loss is
  log(vocabulary)).

Upstream's residual, feed-forward and token dropout are left out: the model here has no dropout layers
(its forward pass is exact to the released one) and trains for a few epochs of its tokens.
:func:`arpg.train.stages.train_model` runs the phases; this module holds what differs from ARPG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import LlamaGenConfig
from ..llamagen import LlamaGen
from .loop import NO_LIMIT, Budget, Stage, TokenSet, _draw, autocast, fit_steps
from .recipes import Recipe

#: Upstream's ``initializer_range``: the standard deviation of every linear's and embedding's initial weights.
INIT_STD = 0.02


def raster_config(r: Recipe, factor: int) -> LlamaGenConfig:
    """The recipe's LlamaGen preset on the token grid of its first canvas (``factor`` pixels per token),
    which must be square: a LlamaGen model's config holds one square ``grid_size``."""
    rows, cols = r.canvases[0].grid(factor)
    if rows != cols:
        raise ValueError(f"a LlamaGen model trains on a square token grid, not the {rows}x{cols} of the first canvas")
    return replace(LlamaGenConfig.from_name(r.arpg), grid_size=rows)


@torch.no_grad()
def init_llamagen(model: LlamaGen, std: float = INIT_STD) -> LlamaGen:
    """Upstream's initial weights: every linear and embedding N(0, ``std``), the output head zero, the
    norms one (their default).  Returns ``model``."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.normal_(0.0, std)
    model.output.weight.zero_()
    return model


def fit_raster(
    model: LlamaGen,
    st: Stage,
    sets: Sequence[TokenSet],
    steps: int,
    lr: float,
    batch: int,
    label_dropout: float,
    seed: int,
    bf16: bool,
    desc: str = "raster",
    budget: Budget = NO_LIMIT,
) -> bool:
    """Teacher-forced raster-order training (:func:`arpg.train.loop.fit_steps`, arguments as
    :func:`arpg.train.loop.fit_arpg`'s): class token then the tokens in raster order, the label dropped
    to the null class at the ``label_dropout`` rate.  A step draws the images and labels ARPG's phase
    with the same seed draws (its random orders unused).  Returns whether it reached ``steps``."""
    device = model.device

    def loss_of(ts: TokenSet, b: int, g: torch.Generator) -> torch.Tensor:
        tokens, labels, _ = _draw(ts, b, label_dropout, model.cfg.num_classes, g)
        tokens, labels = tokens.to(device), labels.to(device)
        with autocast(bf16, device):
            logits = model(tokens, labels, grid=ts.grid)  # (B, N, vocab): logits[:, i] predicts cell i
        return F.cross_entropy(logits.flatten(0, 1).float(), tokens.flatten())

    return fit_steps(model, st, sets, steps, lr, batch, seed, loss_of, desc, budget)
