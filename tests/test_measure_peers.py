"""``bench --models``: models of different families raced at their own steps (arpg.measure.peers)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from arpg import cli, commands
from arpg.config import LlamaGenConfig
from arpg.llamagen import LlamaGen
from arpg.llamagen_sampling import llamagen_defaults
from arpg.measure import peers
from arpg.pipeline import Pipeline


def tiny_llamagen(vq_of: Pipeline) -> Pipeline:
    """A random LlamaGen-tiny on the tokenizer of ``vq_of`` (its codebook; a 6x6 grid), at upstream's defaults."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(LlamaGenConfig.from_name("LlamaGen-tiny"), vocab_size=vq_of.vq.cfg.codebook_size)
    model = LlamaGen(cfg).eval()
    names = [f"class {i}" for i in range(model.cfg.num_classes)]
    return Pipeline(model, vq_of.vq, names, name="LlamaGen-tiny", defaults=llamagen_defaults(model.cfg))


def test_a_race_runs_each_family_at_its_own_steps() -> None:
    arpg = Pipeline.random("ARPG-tiny", "VQ-tiny")
    raster = tiny_llamagen(arpg)
    res = peers.race([arpg, raster], {"random ARPG-tiny": 4}, batch=2, repeats=1, warmup=0)
    by_model = {r["model"]: r for r in res["rows"]}
    assert by_model["random ARPG-tiny"]["steps"] == by_model["random ARPG-tiny"]["forward_passes"] == 4
    assert by_model["LlamaGen-tiny"]["steps"] == by_model["LlamaGen-tiny"]["forward_passes"] == 36  # one per token
    assert [r["family"] for r in res["rows"]] == ["ARPG", "LlamaGen"]
    assert all(r["images_per_s"] > 0 and r["peak_mb"] > 0 and r["published"] is None for r in res["rows"])
    table = peers.format_race(res)
    assert "LlamaGen-tiny" in table and "published" in table


def test_the_published_figure_names_its_paper_version() -> None:
    row = peers.published_row("ARPG-L", 32)
    assert row is not None and row["images_per_s"] == pytest.approx(130.1) and row["source"].startswith("ARPG v5")
    assert peers.published_row("ARPG-L", 33) is None and peers.published_row("shipped digits model", 32) is None


def test_a_race_takes_two_to_four_different_models() -> None:
    a = Pipeline.random("ARPG-tiny", "VQ-tiny")
    with pytest.raises(ValueError, match="2 to 4 models, got 1"):
        peers.race([a])
    with pytest.raises(ValueError, match="each model once"):
        peers.race([a, a])


def test_models_flag_parses_names_and_steps() -> None:
    assert commands.parse_models("digits, scenes:16") == [("digits", None), ("scenes", 16)]
    assert commands.parse_models("/a/b:c,x:8") == [("/a/b:c", None), ("x", 8)]
    for bad in ("digits,:8", "digits,,scenes"):
        with pytest.raises(ValueError, match="NAME\\[:STEPS\\]"):
            commands.parse_models(bad)


@pytest.mark.slow  # loads both shipped models and decodes
def test_bench_models_races_the_shipped_models(tmp_path: Path, capsys) -> None:
    out = tmp_path / "race.json"
    argv = ["bench", "--models", "digits:4,scenes:2", "--batch", "1", "--repeats", "1", "--warmup", "0"]
    assert cli.main([*argv, "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert [(r["model"], r["steps"]) for r in res["rows"]] == [("shipped digits model", 4), ("shipped scenes model", 2)]
    assert res["command"] == "python -m arpg bench --models digits:4,scenes:2 --batch 1 --repeats 1 --warmup 0 " + (
        f"--json {out}"
    )
    assert "shipped scenes model" in capsys.readouterr().out
    assert cli.main(["bench", "--models", "digits,scenes", "--model", "digits"]) == 2
