"""The command line: ``python -m arpg <command>``; one parser built here for every command."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


# -- shared argument groups -------------------------------------------------------------------
def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--weights", help="ARPG checkpoint (.safetensors or .pt); default: the shipped digits model")
    g.add_argument("--tokenizer", help="VQ tokenizer checkpoint (required with --weights)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    g.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                   help="weights dtype for the transformer (default: as stored)")


def add_sampling_args(p: argparse.ArgumentParser, steps: int = 32) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument("--steps", type=int, default=steps, help="decoding steps (forward passes)")
    g.add_argument("--schedule", default="arccos", help="tokens per step: arccos, cosine, linear or k=<int>")
    g.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's)")
    g.add_argument("--cfg-schedule", default=None, choices=["linear", "constant"],
                   help="guidance schedule (default: the model's)")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--order", default="random", help="random, raster, spiral-in, spiral-out, z-curve, alternate")
    g.add_argument("--seed", type=int, default=0)


def sampling_kwargs(a: argparse.Namespace) -> dict:
    return dict(steps=a.steps, schedule=a.schedule, cfg_scale=a.cfg, cfg_schedule=a.cfg_schedule,
                temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, order=a.order, seed=a.seed)


def load_pipeline(a: argparse.Namespace):
    import torch

    from .pipeline import SHIPPED_DIR, Pipeline

    dtype = getattr(torch, a.dtype) if getattr(a, "dtype", None) else None
    if a.weights or a.tokenizer:
        if not (a.weights and a.tokenizer):
            raise ValueError("--weights and --tokenizer go together: give both files")
        return Pipeline.from_files(a.weights, a.tokenizer, device=a.device, dtype=dtype)
    if not (SHIPPED_DIR / "arpg.safetensors").exists():
        raise ValueError(f"the shipped model is missing from {SHIPPED_DIR}; run `python -m arpg train` "
                         "or pass --weights/--tokenizer")
    return Pipeline.shipped(device=a.device, dtype=dtype)


def _label(pipe, value: str) -> int:
    return pipe.label_of(value)


# -- commands ------------------------------------------------------------------------------------
def cmd_sample(a: argparse.Namespace) -> int:
    from demo.render import image_grid

    pipe = load_pipeline(a)
    if not 1 <= a.n <= 256:
        raise ValueError(f"-n must be between 1 and 256, got {a.n}")
    out = pipe.generate([_label(pipe, a.class_)] * a.n, **sampling_kwargs(a))
    if not 1 <= a.upscale <= 16:
        raise ValueError(f"--upscale must be between 1 and 16, got {a.upscale}")
    img = image_grid(list(out.images), ncols=a.cols or min(a.n, 8), pad=2 if a.n > 1 else 0)
    img = img.resize((img.width * a.upscale, img.height * a.upscale), 0)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(a.out)
    print(f"wrote {a.out} ({a.n} image(s), class {out.labels[0]} '{pipe.class_names[out.labels[0]]}', "
          f"{out.trace.forward_passes} steps, seed {out.seed})")
    return 0


def cmd_animate(a: argparse.Namespace) -> int:
    from .animate import decoding_animation

    pipe = load_pipeline(a)
    path = decoding_animation(pipe, _label(pipe, a.class_), a.out, compare=a.compare, fps=a.fps,
                              **sampling_kwargs(a))
    print(f"wrote {path}")
    return 0


def cmd_convert(a: argparse.Namespace) -> int:
    from .checkpoints import convert

    family = convert(a.input, a.output)
    print(f"wrote {a.output} ({'ARPG model' if family == 'arpg' else 'VQ tokenizer'}) and "
          f"{Path(a.output).with_suffix('.json')}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from .train import run_recipe

    info = run_recipe(a.recipe, out=a.out, run_dir=a.run_dir, plots=a.plots, threads=a.threads, device=a.device,
                      workers=a.workers)
    print(json.dumps(info, indent=2))
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    from .evaluate import evaluate, format_table

    pipe = load_pipeline(a)
    steps = [int(s) for s in a.steps.split(",") if s]
    res = evaluate(pipe, per_class=a.per_class, steps_list=steps, fd_per_class=a.fd_per_class, out=a.json,
                   raster=not a.no_raster)
    print(format_table(res))
    if a.json:
        print(f"wrote {a.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m arpg", description="ARPG Sandbox: randomized parallel decoding")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    s = sub.add_parser("sample", help="generate images of one class")
    s.add_argument("--class", dest="class_", default="3", help="class id or name")
    s.add_argument("-n", type=int, default=1, help="number of images (tiled in a grid)")
    s.add_argument("--cols", type=int, default=0, help="grid columns (default: up to 8)")
    s.add_argument("--upscale", type=int, default=1, help="nearest-neighbour upscale factor of the output")
    s.add_argument("--out", default="out.png")
    add_sampling_args(s)
    add_model_args(s)
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("animate", help="animate the decoding order (GIF or MP4)")
    s.add_argument("--class", dest="class_", default="3", help="class id or name")
    s.add_argument("--out", default="order.gif", help=".gif or .mp4")
    s.add_argument("--compare", action="store_true",
                   help="raster 1/step, random 1/step and ARPG side by side")
    s.add_argument("--fps", type=float, default=6.0)
    add_sampling_args(s, steps=16)
    add_model_args(s)
    s.set_defaults(func=cmd_animate)

    s = sub.add_parser("convert", help="convert a released .pt checkpoint to .safetensors (+ .json config)")
    s.add_argument("input")
    s.add_argument("output")
    s.set_defaults(func=cmd_convert)

    s = sub.add_parser("train", help="train the shipped tokenizer, model and judge")
    s.add_argument("--recipe", default="digits")
    s.add_argument("--out", default="assets/models")
    s.add_argument("--run-dir", default=None, help="resumable checkpoints (default runs/<recipe>)")
    s.add_argument("--plots", default="docs/training")
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--device", default="cpu", help="where the ARPG phases run, e.g. cuda (default cpu)")
    s.add_argument("--workers", type=int, default=None, help="processes rendering training images")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("eval", help="quality table of the shipped model (PSNR, judge, accuracy, Frechet)")
    s.add_argument("--per-class", type=int, default=100, help="samples per class at 32 steps")
    s.add_argument("--fd-per-class", type=int, default=None,
                   help="samples per class for the other settings (default: --per-class)")
    s.add_argument("--steps", default="4,8,16,32,64,256")
    s.add_argument("--no-raster", action="store_true")
    s.add_argument("--json", default="docs/benchmarks/quality.json")
    add_model_args(s)
    s.set_defaults(func=cmd_eval)

    for register in _extra_commands():
        register(sub)
    return p


def _extra_commands():
    """Commands defined in their own modules (each exposes ``register(subparsers)``)."""
    regs = []
    for mod in ("arpg.bench", "arpg.distributed"):
        try:
            module = __import__(mod, fromlist=["register"])
        except ImportError:
            continue
        if hasattr(module, "register"):
            regs.append(module.register)
    return regs


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(message)s")
    try:
        return a.func(a) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
