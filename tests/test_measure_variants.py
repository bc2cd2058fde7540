"""arpg.measure.variants: fused, prepacked and bf16 copies of a model decode as it does, timed in turn."""

from __future__ import annotations

import torch

from arpg.measure import variants as vr
from arpg.measure.bench import random_model


def test_variants_share_the_weights_and_time_in_turn() -> None:
    models = vr.variants(random_model("ARPG-tiny"))
    assert list(models) == ["baseline", "fused", "fused-packed", "fused-bf16", "default"]
    greedy = [vr.decode(models[v], 2, 2, top_k=1) for v in ("baseline", "fused")]
    assert torch.equal(*greedy)
    secs = vr.time_variants({k: models[k] for k in ("baseline", "fused")}, 1, 2, 1, clock="cpu")
    assert set(secs) == {"baseline", "fused"} and all(s >= 0 for s in secs.values())
    assert "Name" in vr.profile_table(models["fused"], 1, 2, rows=5)
    assert set(vr.MODELS) == {"shipped", "L"}
