"""The command line: ``arpg <command>`` (or ``python -m arpg <command>``).

Every argparse definition of the project is here; what each command does is in
:mod:`arpg.commands`.  Sampling flags default to "not given": the model's own defaults
(``pipe.defaults``, from its JSON config) fill in the rest.  Bad input ends with one
line, ``error: ...``, and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from . import commands, zoo
from .config import ARPG_PRESETS
from .masks import EDIT_REGION, EDIT_REGIONS
from .measure.bench import DEFAULT_STEPS
from .measure.probes import DTYPES
from .options import DEFAULT_RESIZE, SAMPLER_ORDERS, SCHEDULES
from .orders import ORDER_NAMES
from .sampling import METHODS
from .schedules import CFG_SCHEDULES
from .tasks import RESIZE_STRATEGIES, SIDES
from .train.run import STAGES
from .validation import short_message
from .windows import DECODINGS


class UsageError(Exception):
    """A flag argparse cannot parse (reported as one line by :func:`main`)."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not the usage text (subparsers inherit it)."""

    def error(self, message: str) -> Any:
        """Raise :class:`UsageError` instead of printing the usage and exiting."""
        raise UsageError(message)


# -- shared argument groups -------------------------------------------------------------------
def add_model_args(p: argparse.ArgumentParser) -> None:
    """The model flags every sampling command takes: ``--model`` (a model of the registry, :mod:`arpg.zoo`, or
    a model folder) or ``--weights``/``--tokenizer`` (any checkpoint), and ``--device``, ``--dtype``."""
    g = p.add_argument_group("model (--model or --weights/--tokenizer; default: the shipped digits model)")
    g.add_argument(
        "--model",
        default=None,
        help=f"a model by name: {', '.join(zoo.MODELS)} (released ones from the hub cache), or a folder of "
        "arpg/vq/judge weights, e.g. a preview packed by `arpg train --recipe R --preview DIR`",
    )
    g.add_argument(
        "--weights",
        help="instead of --model, an image model's checkpoint (ARPG, LlamaGen or RandAR, told by its keys): a "
        ".safetensors/.pt path, hf://<org>/<repo>/<file>, or a released name: "
        + ", ".join(e.name for e in zoo.released()),
    )
    g.add_argument("--tokenizer", help="VQ tokenizer for --weights, same forms (default: LlamaGen VQ-16)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default=None,
        help="weights dtype for the transformer (default: bf16 where the GPU or CPU runs it natively, else float32)",
    )


def add_sampling_args(
    p: argparse.ArgumentParser,
    orders: tuple[str, ...] = SAMPLER_ORDERS,
    steps_help: str = "decoding steps (forward passes)",
) -> None:
    """The flags of :class:`arpg.options.SamplingOptions` (default: the model's) and ``--seed``."""
    g = p.add_argument_group("sampling (flags not given keep the model's defaults)")
    g.add_argument("--steps", type=int, default=None, help=steps_help)
    g.add_argument("--schedule", default=None, help=f"tokens per step: {', '.join(SCHEDULES)} or k=<int>")
    g.add_argument("--cfg", type=float, default=None, help="guidance scale")
    g.add_argument("--cfg-schedule", default=None, help=f"guidance schedule: {', '.join(CFG_SCHEDULES)}")
    g.add_argument("--temperature", type=float, default=None, help="softmax temperature (> 0)")
    g.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens (0: all)")
    g.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass in (0, 1]")
    g.add_argument("--order", default=None, help=f"decoding order: {', '.join(orders)}")
    g.add_argument(
        "--step-attention",
        default=None,
        help="how a step's tokens see each other as they enter the cache: joint (the released behaviour) or causal",
    )
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


# -- one parser per command ------------------------------------------------------------------
def _add_sample(sub: Any) -> None:
    s = sub.add_parser("sample", help="generate images of one class")
    s.add_argument("--class", dest="class_", default="3", help="class id or name")
    s.add_argument("-n", type=int, default=1, help="number of images (tiled in a grid)")
    s.add_argument("--cols", type=int, default=0, help="grid columns (default: up to 8)")
    s.add_argument("--upscale", type=int, default=1, help="nearest-neighbour upscale factor of the output")
    s.add_argument("--out", default="out.png")
    add_sampling_args(s)
    add_model_args(s)
    s.set_defaults(func=commands.cmd_sample)


def _add_animate(sub: Any) -> None:
    s = sub.add_parser("animate", help="animate the decoding order (GIF or MP4)")
    s.add_argument("--class", dest="class_", default="3", help="class id or name")
    s.add_argument("--out", default="order.gif", help=".gif or .mp4")
    s.add_argument(
        "--compare",
        action="store_true",
        help="raster 1/step, random 1/step and ARPG side by side, on one clock of measured decode time",
    )
    s.add_argument(
        "--fps",
        type=float,
        default=None,
        help="frames per second (default 6; 8 with --compare, fewer when a long comparison needs it)",
    )
    s.add_argument(
        "--slow",
        type=float,
        default=None,
        help="with --compare: on-screen seconds per second of decoding (default: ARPG lasts >= 1 s)",
    )
    s.add_argument(
        "--models",
        default=None,
        help="instead of one model: race 2-4 models (registry names or folders, NAME:STEPS for other steps) on "
        "one clock, each at its own sampling defaults, e.g. digits,raster",
    )
    add_sampling_args(s, steps_help=f"decoding steps (default {commands.ANIMATE_STEPS}: one frame per step)")
    add_model_args(s)
    s.set_defaults(func=commands.cmd_animate)


def _add_convert(sub: Any) -> None:
    s = sub.add_parser("convert", help="convert a released .pt checkpoint to .safetensors (+ .json config)")
    s.add_argument("input")
    s.add_argument("output")
    s.set_defaults(func=commands.cmd_convert)


def _task_parser(sub: Any, name: str, help_: str) -> argparse.ArgumentParser:
    """The flags every task command shares: the image, class, output, model and sampling."""
    s = sub.add_parser(name, help=help_)
    s.add_argument("image", help="the input image (PNG, JPEG, ...)")
    s.add_argument(
        "--class", dest="class_", metavar="CLASS", required=True, help="class id or name of what the result shows"
    )
    s.add_argument("--out", default=f"{name}.png", help=f"the result, a PNG (default {name}.png)")
    s.add_argument("--upscale", type=int, default=1, help="nearest-neighbour upscale factor of the output")
    add_sampling_args(s)
    add_model_args(s)
    s.set_defaults(func=commands.cmd_task)
    return s


def _add_decoding(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--decoding",
        choices=DECODINGS,
        default=None,
        help="windowed: windows of a size the model was trained on (the default); whole: one decode of the canvas",
    )


def _add_tasks(sub: Any) -> None:
    s = _task_parser(sub, "outpaint", "extend an image by whole token cells on any side")
    for side in SIDES:
        s.add_argument(f"--{side}", type=int, default=0, help=f"token cells added on the {side}")
    _add_decoding(s)
    s = _task_parser(sub, "panorama", "grow an image to several times its width (or height), round by round")
    s.add_argument("--times", type=int, default=4, help="how many times as long as the input (1-8, default 4)")
    s.add_argument("--side", choices=SIDES, default="right", help="the side it grows on")
    _add_decoding(s)
    s = _task_parser(sub, "resize", "a larger token grid of the same image (resolution change)")
    model = "default: the model's (its JSON's \"resize\" section, else %s)"
    s.add_argument("--scale", type=float, default=None, help=f"grid scale, 1-4 ({model % DEFAULT_RESIZE.scale})")
    s.add_argument(
        "--strategy",
        choices=RESIZE_STRATEGIES,
        default=None,
        help=f"how the known tokens are placed ({model % DEFAULT_RESIZE.strategy})",
    )
    s.add_argument(
        "--regenerate",
        type=float,
        default=None,
        help=f"reencode: fraction of cells decoded again ({model % DEFAULT_RESIZE.regenerate})",
    )
    _add_decoding(s)
    s = _task_parser(sub, "inpaint", "regenerate the masked part of an image (another class: an edit)")
    s.add_argument("--mask", required=True, help="mask image: white (or opaque, with alpha) is regenerated")
    s.add_argument(
        "--region",
        choices=EDIT_REGIONS,
        default=None,
        help=f"how the painted mask grows first (default: as painted, or {EDIT_REGION} when the model's judge "
        "reads another class in the image than --class: an edit, as in the app)",
    )
    s.add_argument(
        "--no-blend", action="store_true", help="keep the decoded pixels as they are (no colour-matched paste)"
    )


def _add_train(sub: Any) -> None:
    s = sub.add_parser("train", help="train the shipped tokenizer, model and judge")
    s.add_argument("--recipe", default="digits")
    s.add_argument(
        "--out", default=None, help="where the weights go (default: the recipe's, under assets/models/: said first)"
    )
    s.add_argument("--run-dir", default=None, help="resumable checkpoints (default runs/<recipe>)")
    s.add_argument(
        "--plots", default=None, help="loss plots (default: the recipe's, under docs/training/: said before training)"
    )
    s.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop after about this long with everything saved; run again to continue",
    )
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--device", default="cpu", help="where the ARPG phases run, e.g. cuda (default cpu)")
    s.add_argument("--workers", type=int, default=None, help="processes rendering training images")
    s.add_argument(
        "--stage",
        choices=STAGES,
        default="all",
        help="vq-decoder: only sharpen the decoder of the tokenizer in --out (tokens unchanged), into "
        "<run-dir>/vq_decoder/",
    )
    s.add_argument(
        "--preview",
        default=None,
        metavar="DIR",
        help="train nothing: pack the ARPG weights reached so far into DIR (with the tokenizer and judge) to try them",
    )
    s.set_defaults(func=commands.cmd_train)


def _add_eval(sub: Any) -> None:
    s = sub.add_parser("eval", help="quality table of a model with a judge (PSNR, judge, accuracy, Frechet)")
    s.add_argument("--per-class", type=int, default=100, help="samples per class at 32 steps")
    s.add_argument(
        "--fd-per-class", type=int, default=None, help="samples per class for the other settings (default: --per-class)"
    )
    s.add_argument("--steps", default="4,8,16,32,64,256", help="step counts, comma-separated")
    s.add_argument("--no-raster", action="store_true", help="leave out raster order, one token per step")
    s.add_argument(
        "--step-attention",
        default=None,
        help="how a step's tokens see each other: joint (the model's default) or causal (each only earlier ones)",
    )
    s.add_argument(
        "--json",
        default=None,
        help="write the numbers here (default: none); the committed tables are docs/benchmarks/quality*.json "
        "(one per model trained here): give that path to update one",
    )
    add_model_args(s)
    s.set_defaults(func=commands.cmd_eval)


def _add_bench(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="speed, memory and quality of ARPG vs one-token-per-step decoding",
        description="ARPG parallel decoding vs raster and random one-token-per-step decoding, interleaved "
        "on the same weights and batch: images/s, latency, forward passes, KV cache bytes, "
        "peak memory, achieved FLOP/s vs the measured matmul peak, and (shipped model) quality.",
    )
    p.add_argument(
        "--models",
        default=None,
        help="instead of the step table: race 2-4 models (registry names or folders) one after another, each at "
        "its own steps or NAME:STEPS, same class, seed and --batch; the paper's figure beside each where it has one",
    )
    p.add_argument(
        "--preset",
        default=None,
        help=f"instead of --model, an architecture with random weights: {', '.join(ARPG_PRESETS)}",
    )
    p.add_argument("--batch", default="16", help="images per generate call (default 16); several: 1,16")
    p.add_argument("--steps", default=",".join(map(str, DEFAULT_STEPS)), help="ARPG step counts, comma-separated")
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)} (and baseline)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per setting; medians are reported (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed passes over all settings first (default 1)")
    p.add_argument("--quality", action="store_true", help="judge accuracy and Frechet distance (shipped model)")
    p.add_argument(
        "--orders",
        default=None,
        help=f"compare decoding orders instead (shipped model), some of: {', '.join(SAMPLER_ORDERS)}; "
        "quality with --quality-per-class images per class",
    )
    p.add_argument("--quality-per-class", type=int, default=20, help="images per class and setting for --quality")
    p.add_argument(
        "--baseline",
        action="store_true",
        help="also time the same weights as a plain model (float32, unfused, not prepacked): "
        "every row then has its speed-up over it",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead of the table: where one generate call (largest --batch, first --steps) spends "
        "its time per step, by part and by operator (with --baseline: the plain model too)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the step function (extend/query)")
    p.add_argument("--autocast", action="store_true", help="bf16 autocast over float32 weights")
    p.add_argument("--no-decode", action="store_true", help="time the transformer only (no tokenizer decode)")
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--plot", default=None, help="write the trade-off figure here (PNG)")
    add_model_args(p)
    p.set_defaults(func=commands.cmd_bench)


def _add_sample_many(sub: Any) -> None:
    s = sub.add_parser(
        "sample-many",
        help="many images for FID: PNGs + one .npz; runs under torchrun on many GPUs",
        description="Sample len(classes) x per-class images, image i with seed --seed + i; under "
        "torchrun --nproc_per_node=K each rank takes a share. Resumable; the .npz "
        "(arr_0: N x H x W x 3 uint8) is in the ADM evaluator's format.",
    )
    s.add_argument("--classes", default=None, help="comma-separated class ids, a-b ranges or names (default: all)")
    s.add_argument("--per-class", type=int, default=50, help="images per class (default 50, the ImageNet protocol)")
    s.add_argument("--batch-size", type=int, default=16, help="images per forward pass, per process")
    s.add_argument("--out", default="samples", help="output folder (PNGs in <out>/images)")
    s.add_argument("--npz", default=None, help="path of the .npz (default <out>/samples_NxHxWx3.npz)")
    s.add_argument(
        "--limit",
        type=int,
        default=None,
        help="stop after about this many new images per process (time-boxed jobs; rerun to continue)",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--random-model", default=None, help=argparse.SUPPRESS)  # tests: e.g. ARPG-tiny,VQ-tiny
    add_sampling_args(s, orders=ORDER_NAMES)
    add_model_args(s)
    s.set_defaults(func=commands.cmd_sample_many)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    p = _Parser(prog="arpg", description="ARPG Sandbox: randomized parallel decoding")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    for add in (
        _add_sample,
        _add_animate,
        _add_tasks,
        _add_convert,
        _add_train,
        _add_eval,
        _add_bench,
        _add_sample_many,
    ):
        add(sub)
    return p


def _fail(message: str) -> int:
    print(f"error: {short_message(message)}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (2 and one ``error:`` line for bad input)."""
    try:
        a = build_parser().parse_args(argv)
    except UsageError as e:
        return _fail(str(e))
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(message)s")
    try:
        return a.func(a) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        return _fail(str(e) or type(e).__name__)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
