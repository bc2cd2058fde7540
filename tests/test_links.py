"""The command line and the page link in every task's summary: the command, run through the CLI's own
parser, gives the options, class, seed and settings the app used (fast tier: tiny random models)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from arpg.cli import build_parser
from arpg.cli import main as cli_main
from arpg.data import scenes
from arpg.model_flags import sampling_options
from arpg.options import SAMPLER_ORDERS, SCHEDULES, SamplingOptions
from arpg.pipeline import Pipeline
from arpg.schedules import CFG_SCHEDULES
from demo.links import IMAGE, MASK, ROOT, Recipe, cli_line, link_query, model_args, reproduce_markdown, with_image
from demo.tabs.generate import run_generate
from demo.tabs.outpaint import run_outpaint, run_panorama
from demo.tabs.resolution import run_resize
from demo.tabs.visualize import run_animate, run_compare, run_side_by_side
from tests.test_app_scenes import write_scenes_folder


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    """A tiny random model that calls itself the shipped scenes model (with its class names)."""
    p = Pipeline.random("ARPG-tiny", "VQ-tiny")
    p.name, p.data, p.class_names = "shipped scenes model", "scenes", list(scenes.CLASS_NAMES)
    return p


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    img = np.zeros((16, 16, 3), np.uint8)
    img[4:12, 6:10] = (250, 200, 40)
    return img


def command_of(summary: str) -> list[str]:
    """The words of the command line a summary shows (between backticks), after ``python -m arpg``."""
    found = re.search(r"`(python -m arpg [^`]+)`", summary)
    assert found, f"no command line in {summary!r}"
    words = shlex.split(found.group(1))
    assert words[:3] == ["python", "-m", "arpg"]
    return words[3:]


def parsed(summary: str, pipe: Pipeline) -> tuple[Any, SamplingOptions]:
    """The CLI's parse of a summary's command, and the options the CLI would decode with."""
    a = build_parser().parse_args(command_of(summary))
    base = pipe.defaults.replace(steps=16) if a.command == "animate" else pipe.defaults
    return a, sampling_options(a, base)


def last(outputs: Any) -> tuple:
    return list(outputs)[-1]


def test_generate_summary_command_gives_the_same_options(pipe: Pipeline) -> None:
    opts = pipe.defaults.replace(steps=5, cfg_scale=2.5, temperature=0.85, top_k=7, order="spiral-in")
    images, seed, info, _ = last(run_generate(pipe, "city at night", 2, 11, False, opts))
    a, options = parsed(info, pipe)
    assert a.command == "sample" and options == opts
    assert (a.model, pipe.label_of(a.class_), a.seed, a.n) == (
        "scenes",
        scenes.CLASS_NAMES.index("city at night"),
        11,
        2,
    )
    assert seed == 11 and len(images) == 2


def test_a_random_seed_is_the_one_the_command_names(pipe: Pipeline) -> None:
    _, seed, info, _ = last(run_generate(pipe, "sea", 1, None, True, pipe.defaults.replace(steps=2)))
    assert parsed(info, pipe)[0].seed == seed


def test_outpaint_and_panorama_commands_name_their_sides_and_decoding(pipe: Pipeline, image: np.ndarray) -> None:
    opts = pipe.defaults.replace(steps=3, schedule="cosine", cfg_schedule="constant")
    _, _, info = last(run_outpaint(pipe, image, "lake", ["left", "top"], 2, 4, False, "whole", opts))
    a, options = parsed(info, pipe)
    assert (a.command, a.image, a.left, a.top, a.right, a.bottom, a.decoding) == (
        "outpaint",
        IMAGE,
        2,
        2,
        0,
        0,
        "whole",
    )
    assert options == opts and a.seed == 4 and a.class_ == "lake"
    _, _, info = last(run_panorama(pipe, image, "forest", "left", 2, 9, False, None, opts))
    a, options = parsed(info, pipe)
    assert (a.command, a.times, a.side, a.decoding, a.seed, options) == ("panorama", 2, "left", None, 9, opts)


def test_resize_command_names_scale_strategy_and_fraction(pipe: Pipeline, image: np.ndarray) -> None:
    opts = pipe.defaults.replace(steps=4, top_p=0.9)
    _, _, info = last(run_resize(pipe, image, "snowfield", 1.5, "reencode", 0.35, 2, False, "windowed", opts))
    a, options = parsed(info, pipe)
    assert (a.command, a.scale, a.strategy, a.regenerate, a.decoding) == ("resize", 1.5, "reencode", 0.35, "windowed")
    assert options == opts


@pytest.mark.slow  # draws three GIFs (and an MP4)
def test_visualize_commands_animate_and_compare(pipe: Pipeline) -> None:
    *_, info = run_animate(pipe, "desert dunes", "raster", 4, 3, False, 5.0, 2.0, 0.5)
    a, options = parsed(info, pipe)
    assert (a.command, a.compare, a.fps, a.seed) == ("animate", False, 5.0, 3)
    assert options == pipe.defaults.replace(steps=4, order="raster", cfg_scale=2.0, temperature=0.5)
    *_, info = run_compare(pipe, "sea", 2, 1, False, 8, 3.0, 1.0)
    a, options = parsed(info, pipe)
    assert a.compare and a.fps == 8 and options.steps == 2
    *_, info = run_side_by_side(pipe, "sea", "random", "raster", 2, 1, False, 6, 3.0, 1.0)
    assert "`python -m arpg" not in info and "No single command" in info  # the CLI has no side-by-side


def recipe(pipe: Pipeline, task: str, options: SamplingOptions, **settings: Any) -> Recipe:
    return Recipe.of(pipe, 3, 17, task, options, settings)


def test_inpaint_command_names_the_mask_and_blend_and_none_for_a_grown_mask(pipe: Pipeline) -> None:
    a, _ = parsed(f"`{cli_line(recipe(pipe, 'inpaint', pipe.defaults, dilate=0, blend=False))}`", pipe)
    assert (a.command, a.image, a.mask, a.no_blend, a.region) == ("inpaint", IMAGE, MASK, True, None)
    assert cli_line(recipe(pipe, "inpaint", pipe.defaults, dilate=2, blend=True)) is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.integers(1, 256),
    schedule=st.sampled_from(list(SCHEDULES) + ["k=3"]),
    cfg=st.sampled_from([1.0, 1.25, 3.0, 4.75, 10.0]),
    cfg_schedule=st.sampled_from(list(CFG_SCHEDULES)),
    temperature=st.floats(0.05, 3.0),
    top_k=st.integers(0, 4096),
    top_p=st.floats(0.05, 1.0),
    order=st.sampled_from(list(SAMPLER_ORDERS)),
)
def test_any_options_survive_the_command_line(pipe: Pipeline, **fields: Any) -> None:
    opts = SamplingOptions(
        steps=fields["steps"],
        schedule=fields["schedule"],
        cfg_scale=fields["cfg"],
        cfg_schedule=fields["cfg_schedule"],
        temperature=fields["temperature"],
        top_k=fields["top_k"],
        top_p=fields["top_p"],
        order=fields["order"],
    )
    line = cli_line(recipe(pipe, "generate", opts, n_images=3))
    assert parsed(f"`{line}`", pipe)[1] == opts


def test_models_are_named_as_the_command_line_names_them(pipe: Pipeline) -> None:
    assert model_args(pipe) == (("--model", "scenes"), "scenes")
    other = Pipeline.random("ARPG-tiny", "VQ-tiny")
    other.name = "ARPG-L"
    assert model_args(other) == (("--weights", "ARPG-L"), "ARPG-L")
    other.name, other.data = "scenes model (preview, step 5 of 10)", "scenes"
    assert model_args(other)[0] == ("--model", "DIR")


def test_an_ambiguous_class_name_is_given_by_number(pipe: Pipeline) -> None:
    other = Pipeline.random("ARPG-tiny", "VQ-tiny")
    other.class_names = ["crane", "crane", *[f"c{i}" for i in range(8)]]
    assert Recipe.of(other, 1, 0, "generate", other.defaults, {}).class_arg == "1"
    assert Recipe.of(other, 0, 0, "generate", other.defaults, {}).class_arg == "crane"


def test_the_link_carries_tab_model_class_seed_and_settings(pipe: Pipeline) -> None:
    opts = pipe.defaults.replace(steps=6, cfg_scale=2.0)
    query = link_query(recipe(pipe, "outpaint", opts, directions=["left", "right"], amount=3, decoding=None))
    params = {k: v[0] for k, v in parse_qs(urlsplit(query).query).items()}
    assert params == {
        "tab": "outpaint",
        "model": "scenes",
        "class": scenes.CLASS_NAMES[3],
        "seed": "17",
        "steps": "6",
        "cfg_scale": "2",
        "directions": "left,right",
        "amount": "3",
    }


def test_an_example_image_replaces_the_placeholder(pipe: Pipeline) -> None:
    text = "summary" + reproduce_markdown(
        recipe(pipe, "resize", pipe.defaults, scale=2, strategy="lattice", regenerate=0.5)
    )
    assert f"({IMAGE}: your image)" in text
    shown = with_image(text, ROOT / "assets" / "examples" / "scene_sea_1.png")
    assert IMAGE not in shown and "resize assets/examples/scene_sea_1.png --scale 2" in shown


@pytest.fixture(scope="module")
def scenes_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model saved as the shipped scenes model is (its name says so)."""
    return write_scenes_folder(tmp_path_factory.mktemp("scenes"), preview=False)


def run_command(summary: str, folder: Path, out: Path, image: Path | None = None) -> np.ndarray:
    """Run a summary's command with the CLI (``--model scenes`` pointing at ``folder``); the image it wrote."""
    words = [str(folder) if w == "scenes" else str(image) if w == IMAGE else w for w in command_of(summary)]
    assert cli_main([*words, "--out", str(out)]) == 0
    return np.asarray(Image.open(out).convert("RGB"))


@pytest.mark.slow  # two decodes in the app, two with the command line, on a 16x16 grid
def test_the_command_of_a_summary_makes_the_same_image(scenes_folder: Path, tmp_path: Path, image: np.ndarray) -> None:
    pipe = Pipeline.shipped(scenes_folder, device="cpu")
    opts = pipe.defaults.replace(steps=3, temperature=0.7)
    images, _, info, _ = last(run_generate(pipe, "sea", 1, 21, False, opts))
    assert np.array_equal(run_command(info, scenes_folder, tmp_path / "sample.png"), images[0])
    Image.fromarray(image).resize((64, 64)).save(tmp_path / "in.png")
    given = np.asarray(Image.open(tmp_path / "in.png"))
    result, _, info = last(run_outpaint(pipe, given, "lake", ["right"], 2, 5, False, None, opts))
    after = result[-1] if isinstance(result, tuple) else result
    assert np.array_equal(run_command(info, scenes_folder, tmp_path / "wide.png", tmp_path / "in.png"), after)
