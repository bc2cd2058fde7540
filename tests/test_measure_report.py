"""Result tables, the reproducing command line and the output files."""

from __future__ import annotations

import json
import shlex

import pytest
from PIL import Image

from arpg import cli
from arpg.measure.report import bench_command, format_order_table, format_quality_table, params_text, write_outputs


def test_bench_command_reproduces_the_flags():
    a = cli.build_parser().parse_args(
        [
            "bench",
            "--model",
            "ARPG-tiny",
            "--steps",
            "2,4",
            "--batch",
            "1,2",
            "--cfg",
            "1.5",
            "--seed",
            "3",
            "--no-decode",
            "--json",
            "out dir/r.json",
        ]
    )
    text = bench_command(a)
    assert text.startswith("python -m arpg bench --model ARPG-tiny --batch 1,2 --steps 2,4 --repeats 3 --warmup 1")
    assert "--cfg 1.5" in text and "--seed 3" in text and "--no-decode" in text and "'out dir/r.json'" in text
    assert vars(cli.build_parser().parse_args(shlex.split(text)[3:])) == vars(a)  # the same run again


@pytest.mark.parametrize("flags", [["--baseline"], ["--profile", "--baseline"], ["--quality", "--baseline"]])
def test_bench_command_keeps_the_baseline_and_profile_flags(flags: list[str]) -> None:
    a = cli.build_parser().parse_args(["bench", "--model", "digits", "--methods", "arpg", *flags])
    again = cli.build_parser().parse_args(shlex.split(bench_command(a))[3:])
    assert vars(again) == vars(a) and all(f in bench_command(a) for f in flags)


def test_bench_command_of_the_order_table():
    a = cli.build_parser().parse_args(["bench", "--orders", "random,raster", "--steps", "8"])
    assert bench_command(a) == "python -m arpg bench --orders random,raster --steps 8 --quality-per-class 20"


def test_quality_and_order_tables():
    quality = {
        "model": "m",
        "data_style": "centred",
        "tokenizer_psnr_db": 30.0,
        "judge_accuracy": 0.99,
        "cfg_scale": 3.0,
        "cfg_schedule": "constant",
        "generation": [
            {"method": "arpg", "steps": 8, "samples": 10, "accuracy": 0.9, "frechet": 1.25},
            {"method": "raster", "steps": 256, "samples": 10, "accuracy": 0.8, "frechet": 2.5},
        ],
    }
    text = format_quality_table(quality)
    assert "random       8" in text and "raster     256" in text and "90.0%" in text and "constant" in text
    assert "tokenizer sharpness (of the real images' detail kept): -" in text  # a result from before the measure
    quality.update(tokenizer_sharpness=0.61)
    quality["generation"][0].update(texture_frechet=1.234, sharpness=0.55)
    text = format_quality_table(quality)
    assert "0.610 (centred)" in text and "1.234  0.550" in text and "texture:" in text
    orders = {
        "model": "m",
        "cfg_scale": 3.0,
        "per_class": 2,
        "rows": [
            {
                "order": "spiral-in",
                "steps": 8,
                "accuracy": 0.5,
                "frechet": 3.0,
                "seconds_per_image": 0.01,
                "queries_per_image": 256,
            }
        ],
    }
    assert "spiral-in" in format_order_table(orders)
    assert params_text(343_000_000) == "343M" and params_text(1_250_000) == "1.25M"


def test_write_outputs_only_what_is_asked(tmp_path):
    res = {"rows": []}
    assert write_outputs(res, None, None, lambda r: Image.new("RGB", (2, 2))) == []
    paths = write_outputs(
        res, str(tmp_path / "a" / "r.json"), str(tmp_path / "b" / "r.png"), lambda r: Image.new("RGB", (2, 2))
    )
    assert [p.name for p in paths] == ["r.json", "r.png"]
    assert json.loads(paths[0].read_text()) == res and Image.open(paths[1]).size == (2, 2)
