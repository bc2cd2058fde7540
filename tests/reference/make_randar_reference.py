"""Make the reference vectors that ``tests/test_randar.py`` checks :mod:`arpg.randar` and
:mod:`arpg.randar_sampling` against, by running upstream's own code on tiny random weights.

Upstream code used, unchanged: ziqipang/RandAR at commit
d374a721cfac8a42d8e11ee9a0c7ed967621aebf (2025-07-14):

* ``RandAR/model/randar_gpt.py``: ``RandARTransformer`` (the model, ``forward`` for teacher forcing
  and ``generate`` for the parallel decoding);
* ``RandAR/model/llamagen_gpt.py``, ``RandAR/model/generate.py``, ``RandAR/model/utils.py``: what it imports.

No shim was needed: the four files are copied into a temporary folder (with empty ``__init__.py``
files) and imported from there; upstream's folder is never written to, nor copied into this repository.

Randomness: upstream draws the order with the global RNG when none is given; both calls here pass
the order in (``token_order``), and decoding is greedy (top-k 1: upstream's multinomial then has one
token of non-zero probability), so the outputs are deterministic.

Run by hand (the tests only read what it wrote; nothing here downloads)::

    python tests/reference/make_randar_reference.py --upstream DIR

DIR is a checkout of upstream or the bare git directory of a mirror (HEAD's files are then read
with ``git show``); its commit must be the one above (``--any-commit`` to skip the check).
Writes beside this script:

* ``randar_tiny.safetensors``: the weights of upstream's ``RandARTransformer`` (its own keys, fp32;
  the ``RandAR-tiny`` preset: dim 32, 2 layers, 4 heads, 64 codes, 10 classes, 6x6 tokens);
* ``randar_tiny_reference.safetensors``: the inputs (``tokens``, ``labels``, ``order``: a permutation
  per image for teacher forcing; ``decode_order``: one shared by the batch for decoding) and
  upstream's outputs: teacher-forced logits with the class (``logits_cond``) and the null class
  (``logits_uncond``), and greedy tokens of ``generate`` in ``STEPS`` steps without guidance
  (``greedy``), with constant guidance ``cfg_scale`` (``greedy_cfg``) and with upstream's default
  linear guidance 1 -> ``cfg_scale`` (``greedy_cfg_linear``); seed, commit, config, steps and
  guidance scale are in its metadata.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import tempfile
from pathlib import Path

import torch
from upstream import arguments, copy_upstream, write  # beside this script

COMMIT = "d374a721cfac8a42d8e11ee9a0c7ed967621aebf"
FILES = (
    "RandAR/model/randar_gpt.py",
    "RandAR/model/llamagen_gpt.py",
    "RandAR/model/generate.py",
    "RandAR/model/utils.py",
)
CONFIG = dict(dim=32, n_layer=2, n_head=4, vocab_size=64, num_classes=10, multiple_of=16, block_size=36)
SEED = 0
LABELS = [3, 7]
CFG_SCALE = 4.0
STEPS = 12


def build_model(tree: Path) -> torch.nn.Module:
    """Upstream's RandARTransformer with seeded random weights large enough for distinct logits (upstream's
    own init zeroes the head, which would make every logit 0)."""
    sys.path.insert(0, str(tree))
    randar_gpt = importlib.import_module("RandAR.model.randar_gpt")
    model = randar_gpt.RandARTransformer(**CONFIG, cls_token_num=1, model_type="c2i", grad_checkpointing=False)
    model.eval()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() == 1:  # RMSNorm weights
                p.copy_(1 + 0.1 * noise)
            elif "embedding" in name:  # class and token tables, the position instruction
                p.copy_(noise)
            else:  # linears: unit-variance outputs
                p.copy_(noise / math.sqrt(p.shape[1]))
    return model


@torch.no_grad()
def reference(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Upstream's teacher-forced logits and greedy parallel decodes for :data:`LABELS`."""
    n, classes = CONFIG["block_size"], CONFIG["num_classes"]
    g = torch.Generator().manual_seed(SEED + 1)
    labels = torch.tensor(LABELS)
    tokens = torch.randint(0, CONFIG["vocab_size"], (len(LABELS), n), generator=g)
    order = torch.stack([torch.randperm(n, generator=g) for _ in LABELS])
    decode_order = torch.randperm(n, generator=g)
    null = torch.full_like(labels, classes)
    cond = model(tokens, labels, token_order=order, targets=tokens)[0]
    uncond = model(tokens, null, token_order=order, targets=tokens)[0]
    out = {"tokens": tokens, "labels": labels, "order": order, "decode_order": decode_order}
    out |= {"logits_cond": cond, "logits_uncond": uncond}
    greedy = dict(num_inference_steps=STEPS, temperature=1.0, top_k=1, top_p=1.0)
    shared = decode_order.expand(len(LABELS), n).clone()
    for key, scales in (
        ("greedy", (1.0, 1.0)),
        ("greedy_cfg", (CFG_SCALE,) * 2),
        ("greedy_cfg_linear", (1.0, CFG_SCALE)),
    ):
        out[key] = model.generate(labels, shared, cfg_scales=scales, **greedy).long()
        model.remove_caches()
    return {k: v.contiguous() for k, v in out.items()}


def upstream_tree(path: Path, any_commit: bool, scratch: Path) -> Path:
    """:func:`upstream.copy_upstream` of :data:`FILES`, made importable as the ``RandAR`` package."""
    copy_upstream(path, FILES, COMMIT, any_commit, scratch)
    for pkg in ("RandAR", "RandAR/model"):
        (scratch / pkg / "__init__.py").write_text("")
    return scratch


def main(argv: list[str] | None = None) -> None:
    a = arguments(__doc__.split("\n\n")[0], argv)
    with tempfile.TemporaryDirectory(prefix="randar-upstream-") as scratch:
        torch.manual_seed(SEED)
        model = build_model(upstream_tree(a.upstream, a.any_commit, Path(scratch)))
        weights = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        ref = reference(model)
    meta = {
        "upstream_commit": COMMIT,
        "config": json.dumps(CONFIG),
        "seed": str(SEED),
        "cfg_scale": str(CFG_SCALE),
        "steps": str(STEPS),
    }
    write("randar_tiny", weights, ref, meta)


if __name__ == "__main__":
    main()
