"""Make the reference vectors that ``tests/test_llamagen.py`` checks :mod:`arpg.llamagen` against,
by running upstream's own code on tiny random weights.

Upstream code used, unchanged: FoundationVision/LlamaGen at commit
ce98ec41803a74a90ce68c40ababa9eaeffeb4ec ("[t2i] huggingface demo released", 2024-06-30):

* ``autoregressive/models/gpt.py``: ``ModelArgs`` and ``Transformer`` (the model);
* ``autoregressive/models/generate.py``: ``generate`` (prefill, one token per step, guidance);
* ``utils/drop_path.py``: imported by ``gpt.py``.

No shim was needed to import them on a CPU (torch 2.13); upstream's sampler enters the deprecated
``torch.backends.cuda.sdp_kernel`` context, whose FutureWarning is silenced here.  Upstream's files
are read from a scratch folder, never copied into this repository.

Run by hand (the tests only read what it wrote; nothing here downloads)::

    python tests/reference/make_llamagen_reference.py --upstream DIR

DIR is a checkout of upstream, or the bare git directory of a mirror (the three files of its HEAD
are then read with ``git show``); they are copied into a temporary folder and imported from there.
Its commit must be the one above (``--any-commit`` to skip the check).  Writes beside this script:

* ``llamagen_tiny.safetensors``: the weights of upstream's ``Transformer`` (its own state-dict keys,
  fp32; shapes of the ``LlamaGen-tiny`` preset: dim 32, 2 layers, 4 heads, 64 codes, 10 classes, 6x6);
* ``llamagen_tiny_reference.safetensors``: the inputs (``tokens``, ``labels``) and upstream's outputs:
  teacher-forced logits with the class (``logits_cond``) and the null class (``logits_uncond``), and
  greedy (top-k 1) tokens without guidance (``greedy``) and with guidance ``cfg_scale``
  (``greedy_cfg``); the seed, commit, config and guidance scale are in its metadata.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import torch
from upstream import arguments, copy_upstream, write  # beside this script

COMMIT = "ce98ec41803a74a90ce68c40ababa9eaeffeb4ec"
FILES = ("autoregressive/models/gpt.py", "autoregressive/models/generate.py", "utils/drop_path.py")
CONFIG = dict(dim=32, n_layer=2, n_head=4, vocab_size=64, num_classes=10, multiple_of=16, block_size=36)
SEED = 0
LABELS = [3, 7]
CFG_SCALE = 4.0


def import_upstream(tree: Path) -> tuple[ModuleType, ModuleType]:
    """Upstream's ``gpt`` and ``generate`` modules, imported from ``tree``."""
    for pkg in ("autoregressive", "autoregressive/models", "utils"):
        (tree / pkg / "__init__.py").touch(exist_ok=True)
    sys.path.insert(0, str(tree))
    return importlib.import_module("autoregressive.models.gpt"), importlib.import_module(
        "autoregressive.models.generate"
    )


def build_model(gpt: ModuleType) -> torch.nn.Module:
    """Upstream's Transformer with seeded random weights large enough for distinct logits (upstream's
    own init zeroes the head, which would make every logit 0)."""
    args = gpt.ModelArgs(**CONFIG, cls_token_num=1, model_type="c2i", class_dropout_prob=0.1)
    model = gpt.Transformer(args).eval()
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() == 1:  # RMSNorm weights
                p.copy_(1 + 0.1 * noise)
            elif "embedding" in name:
                p.copy_(noise)
            else:  # linears: unit-variance outputs
                p.copy_(noise / math.sqrt(p.shape[1]))
    return model


@torch.no_grad()
def reference(gpt_generate: ModuleType, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Upstream's teacher-forced logits and greedy tokens for :data:`LABELS`."""
    n, classes = CONFIG["block_size"], CONFIG["num_classes"]
    labels = torch.tensor(LABELS)
    tokens = torch.randint(0, CONFIG["vocab_size"], (len(LABELS), n), generator=torch.Generator().manual_seed(SEED + 1))
    pos = torch.arange(n)  # eval mode: the RoPE rows of the class and cells 0..n-2
    cond, _ = model(idx=tokens[:, :-1], cond_idx=labels, input_pos=pos)
    uncond, _ = model(idx=tokens[:, :-1], cond_idx=torch.full_like(labels, classes), input_pos=pos)
    out = {"tokens": tokens, "labels": labels, "logits_cond": cond, "logits_uncond": uncond}
    greedy = dict(temperature=1.0, top_k=1, top_p=1.0, sample_logits=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.backends.cuda.sdp_kernel
        out["greedy"] = gpt_generate.generate(model, labels, n, cfg_scale=1.0, **greedy).long()
        out["greedy_cfg"] = gpt_generate.generate(model, labels, n, cfg_scale=CFG_SCALE, **greedy).long()
    return {k: v.contiguous() for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    a = arguments(__doc__.split("\n\n")[0], argv)
    with tempfile.TemporaryDirectory(prefix="llamagen-upstream-") as scratch:
        gpt, gen = import_upstream(copy_upstream(a.upstream, FILES, COMMIT, a.any_commit, Path(scratch)))
        torch.manual_seed(SEED)
        model = build_model(gpt)
        weights = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}  # before any KV cache
        ref = reference(gen, model)
    meta = {"upstream_commit": COMMIT, "config": json.dumps(CONFIG), "seed": str(SEED), "cfg_scale": str(CFG_SCALE)}
    write("llamagen_tiny", weights, ref, meta)


if __name__ == "__main__":
    main()
