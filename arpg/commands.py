"""What each command of the command line does; the flags are defined in :mod:`arpg.cli`.

Every handler takes the parsed flags and returns an exit code; bad input raises
``ValueError`` (printed by :func:`arpg.cli.main` as one ``error:`` line).  The model flags become a
:class:`~arpg.pipeline.Pipeline` and the sampling flags one :class:`~arpg.options.SamplingOptions`
(``pipe.defaults`` with the flags given) through :mod:`arpg.model_flags`.

The zero-shot tasks (``arpg outpaint | panorama | resize | inpaint IMAGE ...``) read an image (and, for
inpaint, a mask: white, or opaque where it has alpha, is regenerated), run the task of :mod:`arpg.tasks`
and write the result as a PNG, one line saying what was made.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from . import masks, tasks, zoo
from .checkpoints import convert
from .config import ARPG_PRESETS
from .devices import default_dtype, resolve_device
from .distributed import init_distributed
from .images import ImageSource
from .judge import image_class
from .measure import peers, report
from .measure.bench import plain_copy, random_model, run_bench
from .measure.evaluate import evaluate, order_table
from .measure.probes import DTYPES, machine_info, machine_string, matmul_peak_gflops
from .measure.profile import format_profile, profile_generate
from .model import ARPG
from .model_flags import load_pipeline, model_pipeline, sampling_options
from .options import SAMPLER_ORDERS, SamplingOptions, model_defaults
from .pipeline import Pipeline
from .sample_many import parse_classes, sample_many
from .state_dicts import FAMILY_BY_NAME
from .tasks import DEFAULT_DECODING, SIDES, TaskResult, Used
from .train.preview import pack_preview
from .train.recipes import RECIPES
from .train.run import run_folder, run_recipe
from .train.sharpen import STAGE as DECODER_FOLDER
from .validation import MAX_SEED, check_choice, check_int, check_number, check_seed
from .viz.animate import COMPARE_FPS, comparison_animation, decoding_animation, models_animation
from .viz.compare import RACE_MODELS
from .viz.frames import image_grid
from .viz.plots import orders_figure, tradeoff_figure

#: Steps of ``animate`` when ``--steps`` is not given: one frame per step, so fewer than sampling's.
ANIMATE_STEPS = 16


# -- shared pieces ----------------------------------------------------------------------------
def parse_ints(name: str, text: str, lo: int = 1) -> list[int]:
    """``"8,16,32"`` -> ``[8, 16, 32]``, each a whole number >= ``lo``."""
    parts = [t.strip() for t in str(text).split(",") if t.strip()]
    if not parts:
        raise ValueError(f"{name} needs a comma-separated list of integers, got {text!r}")
    return [check_int(name, t, lo) for t in parts]


def _seed(a: argparse.Namespace) -> int:
    return check_int("seed", a.seed, 0, MAX_SEED)


def _report_written(paths: list[Path]) -> None:
    for path in paths:
        print(f"wrote {path}")


# -- sample, animate, convert, train, eval ----------------------------------------------------
def cmd_sample(a: argparse.Namespace) -> int:
    """``sample``: a grid of images of one class."""
    pipe = load_pipeline(a, a.model)
    n = check_int("-n", a.n, 1, 256)
    upscale = check_int("--upscale", a.upscale, 1, 16)
    cols = check_int("--cols", a.cols, 0, 256) or min(n, 8)
    out = pipe.generate([pipe.label_of(a.class_)] * n, sampling_options(a, pipe.defaults), seed=_seed(a))
    img = image_grid(list(out.images), ncols=cols, pad=2 if n > 1 else 0)
    img = img.resize((img.width * upscale, img.height * upscale), 0)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(a.out)
    print(
        f"wrote {a.out} ({n} image(s), class {out.labels[0]} '{pipe.class_names[out.labels[0]]}', "
        f"{out.trace.forward_passes} steps, seed {out.seed})"
    )
    return 0


def cmd_animate(a: argparse.Namespace) -> int:
    """``animate``: a GIF/MP4 of one decode, or of three strategies racing on one clock (``--compare``)."""
    fps = None if a.fps is None else check_number("--fps", a.fps, 0, 60, lo_open=True)
    slow = None if a.slow is None else check_number("--slow", a.slow, 0.01, 1000)
    if slow is not None and not (a.compare or a.models):
        raise ValueError("--slow only applies to --compare and --models")
    if a.models:
        return _animate_models(a, fps, slow)
    pipe = load_pipeline(a, a.model)
    options = sampling_options(a, pipe.defaults.replace(steps=ANIMATE_STEPS))
    label = pipe.label_of(a.class_)
    if a.compare:
        cmp = comparison_animation(pipe, label, a.out, options, fps=fps or COMPARE_FPS, slow=slow, seed=_seed(a))
        print(f"wrote {a.out}: {cmp.timings()}; forward passes {cmp.passes()}; {cmp.pace()}")
        return 0
    path = decoding_animation(pipe, label, a.out, options, fps=fps, seed=_seed(a))
    print(f"wrote {path}")
    return 0


def race_models(a: argparse.Namespace) -> tuple[list[Pipeline], dict[str, int]]:
    """The pipelines ``--models A,B:STEPS`` names (2-4, :data:`~arpg.viz.compare.RACE_MODELS`) and the steps
    given for some of them, by pipeline name."""
    wanted = parse_models(a.models)
    low, high = RACE_MODELS
    if not low <= len(wanted) <= high:
        raise ValueError(f"--models takes {low} to {high} models, got {len(wanted)}")
    dtype = DTYPES[a.dtype] if a.dtype else None
    pipes = [model_pipeline(name, device=a.device, dtype=dtype) for name, _ in wanted]
    return pipes, {p.name: n for p, (_, n) in zip(pipes, wanted, strict=True) if n is not None}


def _animate_models(a: argparse.Namespace, fps: float | None, slow: float | None) -> int:
    """``animate --models A,B:STEPS``: 2-4 models racing on one clock, each at its own sampling defaults."""
    if a.model or a.weights:
        raise ValueError("--models names every model itself: drop --model and --weights")
    pipes, steps = race_models(a)
    cmp = models_animation(pipes, a.class_, a.out, steps=steps, fps=fps or COMPARE_FPS, slow=slow, seed=_seed(a))
    print(f"wrote {a.out}: {cmp.timings()}; forward passes {cmp.passes()}; {cmp.pace()}")
    return 0


def cmd_convert(a: argparse.Namespace) -> int:
    """``convert``: a released ``.pt`` checkpoint (ARPG, LlamaGen or VQ) to ``.safetensors`` plus its JSON config."""
    family = convert(a.input, a.output)
    print(f"wrote {a.output} ({FAMILY_BY_NAME[family].what}) and {Path(a.output).with_suffix('.json')}")
    return 0


def _say_where_training_writes(a: argparse.Namespace) -> None:
    """Before training: where the weights and loss curves go (the recipe's folders are committed ones;
    the decoder stage reads the tokenizer there and writes its decoder only into the run folder)."""
    recipe = RECIPES.get(a.recipe)
    if recipe is None:
        return  # run_recipe refuses the name in one line
    out, plots = a.out or recipe.out, a.plots or recipe.plots
    if getattr(a, "stage", None) == "vq-decoder":
        print(
            f"train --recipe {a.recipe} --stage vq-decoder: reads the tokenizer in {out}/, writes the new decoder "
            f"into {run_folder(a.recipe, a.run_dir) / DECODER_FOLDER}/ and its loss curve into {plots}/ "
            f"({out}/ is left as it is)",
            file=sys.stderr,
        )
        return
    note = "" if a.out and a.plots else " (committed folders of the recipe: --out DIR and --plots DIR write elsewhere)"
    print(f"train --recipe {a.recipe}: weights into {out}/, loss curves into {plots}/{note}", file=sys.stderr)


def cmd_train(a: argparse.Namespace) -> int:
    """``train``: every stage of a recipe (finished stages are skipped); ``--preview``: pack the
    ARPG weights reached so far."""
    if a.preview:
        where = pack_preview(a.recipe, a.preview, a.run_dir, a.out)
        print(f"packed {where['phase']} at step {where['step']} of {where['steps']} into {a.preview}")
        return 0
    minutes = None if a.max_minutes is None else check_number("--max-minutes", a.max_minutes, 0.0, None, lo_open=True)
    _say_where_training_writes(a)
    info = run_recipe(
        a.recipe,
        out=a.out,
        run_dir=a.run_dir,
        plots=a.plots,
        threads=a.threads,
        device=a.device,
        workers=a.workers,
        max_minutes=minutes,
        stage=a.stage,
    )
    print(json.dumps(info, indent=2))
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    """``eval``: the quality table of a model with a judge (``--model``: a model trained here, by name or folder)."""
    steps = parse_ints("--steps", a.steps)
    per_class = check_int("--per-class", a.per_class, 1)
    fd_per_class = None if a.fd_per_class is None else check_int("--fd-per-class", a.fd_per_class, 1)
    pipe = load_pipeline(a, a.model)
    pipe.defaults = pipe.defaults.replace(step_attention=a.step_attention)
    out = a.json or None  # committed tables (docs/benchmarks/quality*.json) change only when named
    res = evaluate(
        pipe, per_class=per_class, steps_list=steps, fd_per_class=fd_per_class, out=out, raster=not a.no_raster
    )
    print(report.format_quality_table(res))
    print(f"wrote {out}" if out else "no JSON written (give --json PATH to keep the numbers)")
    return 0


# -- outpaint, panorama, resize, inpaint -----------------------------------------------------
def _outpaint(pipe: Pipeline, a: argparse.Namespace, **kw: Any) -> TaskResult:
    cells = {side: check_int(f"--{side}", getattr(a, side), 0, 64) for side in SIDES}
    if not any(cells.values()):
        raise ValueError("outpaint needs at least one of --left, --right, --top, --bottom (token cells)")
    return tasks.outpaint(pipe, a.image, pipe.label_of(a.class_), decoding=a.decoding, **cells, **kw)


def _panorama(pipe: Pipeline, a: argparse.Namespace, **kw: Any) -> TaskResult:
    return tasks.panorama(pipe, a.image, pipe.label_of(a.class_), times=a.times, side=a.side, decoding=a.decoding, **kw)


def _resize(pipe: Pipeline, a: argparse.Namespace, **kw: Any) -> TaskResult:
    return tasks.resize(
        pipe,
        a.image,
        pipe.label_of(a.class_),
        scale=a.scale,
        strategy=a.strategy,
        regenerate=a.regenerate,
        decoding=a.decoding,
        **kw,
    )


def inpaint_region(pipe: Pipeline, image: ImageSource, label: int, region: str | None) -> tuple[str, str | None]:
    """How ``arpg inpaint`` grows the mask, and a note saying why (None: nothing to say).

    ``region`` when given; else what the Inpaint tab does (:func:`arpg.judge.image_class`,
    :func:`arpg.masks.is_edit`): a class other than the one the model's judge reads in the image is
    an edit, its mask grown to :data:`arpg.masks.EDIT_REGION`; the image's own class keeps it as painted."""
    shown = image_class(pipe, image)
    name = None if shown is None else pipe.class_names[shown]
    if region is not None:
        if region == "painted" and masks.is_edit(shown, label):
            return region, f"the judge reads '{name}' in the image; a mask kept as painted may leave it so"
        return region, None
    grown = f"--region {masks.EDIT_REGION}"
    if masks.is_edit(shown, label):
        return masks.EDIT_REGION, f"an edit of '{name}' (what the model's judge reads): the mask grew to {grown}"
    if shown is None:
        return "painted", f"no judge reads this model's images: the mask is kept as painted ({grown} edits)"
    return "painted", None


def _inpaint(pipe: Pipeline, a: argparse.Namespace, **kw: Any) -> TaskResult:
    if not Path(a.mask).is_file():
        raise ValueError(f"{a.mask}: no such mask file")
    label = pipe.label_of(a.class_)
    region, why = inpaint_region(pipe, a.image, label, a.region)
    res = tasks.inpaint(pipe, a.image, a.mask, label, region=region, blend=not a.no_blend, **kw)
    return replace(res, note="; ".join(n for n in (why, res.note) if n) or None)


def decoding_words(used: Used) -> str:
    """A canvas task's decoding as its result records it: ``windowed decoding (6 windows of 16x16 tokens)``,
    ``whole decoding``; the windows are named only when there were several."""
    if used.windows is None or used.windows < 2:
        return f"{used.decoding} decoding"
    return f"{used.decoding} decoding ({used.windows} windows of {used.window[1]}x{used.window[0]} tokens)"


RUNNERS: dict[str, Callable[..., TaskResult]] = {
    "outpaint": _outpaint,
    "panorama": _panorama,
    "resize": _resize,
    "inpaint": _inpaint,
}


def cmd_task(a: argparse.Namespace) -> int:
    """``outpaint`` / ``panorama`` / ``resize`` / ``inpaint``: one task on one image, written as a PNG."""
    upscale = check_int("--upscale", a.upscale, 1, 16)
    if not Path(a.image).is_file():
        raise ValueError(f"{a.image}: no such image file")
    pipe = load_pipeline(a, a.model)
    res = RUNNERS[a.command](pipe, a, options=sampling_options(a, pipe.defaults), seed=check_seed(a.seed))
    img = Image.fromarray(res.image)
    img = img.resize((img.width * upscale, img.height * upscale), Image.NEAREST)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(a.out)
    label = pipe.label_of(a.class_)
    made = f"{res.image.shape[1]}x{res.image.shape[0]} px, class {label} '{pipe.class_names[label]}'"
    if a.command != "panorama":  # a panorama's result holds its last round only: its size says it all
        made += f", {int((~res.known).sum())} new tokens in {res.trace.forward_passes} steps"
    if a.command in DEFAULT_DECODING:
        made += f", {decoding_words(res.used)}"
    print(f"wrote {a.out} ({made}, seed {res.seed})" + (f"; note: {res.note}" if res.note else ""))
    return 0


# -- bench ------------------------------------------------------------------------------------
def _check_bench_model(a: argparse.Namespace) -> None:
    """The model flags of ``bench`` that contradict each other (``--preset``: random weights of a preset)."""
    if a.preset is not None:
        check_choice("--preset", a.preset, ARPG_PRESETS)
        if a.model or a.weights:
            raise ValueError("--preset (random weights) and --model/--weights are alternatives: give one")
        if a.quality or a.orders:
            raise ValueError("--quality and --orders need a trained model's judge; a preset has random weights")
    elif a.model in ARPG_PRESETS and zoo.find(a.model) is None:
        raise ValueError(f"--model {a.model} is an architecture, not a trained model: give --preset {a.model}")
    if a.autocast and a.dtype not in (None, "float32"):
        raise ValueError("--autocast runs over float32 weights; drop --dtype or use --dtype float32")
    resolve_device(a.device)  # an unknown device or missing CUDA fails before any work


def _bench_subject(a: argparse.Namespace) -> tuple[Pipeline | ARPG, str, SamplingOptions]:
    """What ``bench`` times: the pipeline of ``--model``/``--weights`` or a preset with random weights, and its
    options."""
    if a.preset is None:
        pipe = load_pipeline(a, a.model)
        return pipe, pipe.name, pipe.defaults.replace(cfg_scale=a.cfg)
    device = resolve_device(a.device)
    dtype = DTYPES[a.dtype] if a.dtype else default_dtype(device)
    model = random_model(a.preset, dtype=dtype, device=device, seed=a.seed).fuse().prepack()
    return model, f"{a.preset}, random weights", model_defaults(model.cfg).replace(cfg_scale=a.cfg)


def _print_progress(frac: float, text: str) -> None:
    print(f"[{100 * frac:5.1f}%] {text}", file=sys.stderr, flush=True)


def _write_and_report(res: dict, a: argparse.Namespace, figure: Callable[[dict], Any]) -> int:
    _report_written(report.write_outputs(res, a.json, a.plot, figure))
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    """``bench``: run, print the table, write JSON / PNG (``--orders``: the decoding-order table)."""
    steps, batch = parse_ints("--steps", a.steps), parse_ints("--batch", a.batch)
    repeats, warmup = check_int("--repeats", a.repeats, 1), check_int("--warmup", a.warmup, 0)
    per_class = check_int("--quality-per-class", a.quality_per_class, 1)
    seed = _seed(a)
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    if a.threads is not None:
        torch.set_num_threads(check_int("--threads", a.threads, 1))
    _check_bench_model(a)
    if a.models:
        return _bench_models(a, batch, repeats, warmup, seed)
    if a.orders:
        return _bench_orders(a, steps, per_class)
    if a.baseline and "baseline" not in methods:
        methods.append("baseline")
    t0 = time.perf_counter()
    subject, name, options = _bench_subject(a)
    build_s = time.perf_counter() - t0
    if a.profile:
        return _bench_profile(a, subject, name, options.replace(steps=steps[0]), max(batch), seed)
    res = run_bench(
        subject,
        steps=steps,
        batch=batch,
        methods=methods,
        repeats=repeats,
        warmup=warmup,
        quality=a.quality,
        quality_per_class=per_class,
        decode_images=not a.no_decode,
        progress=_print_progress if a.verbose else None,
        options=options,
        seed=seed,
        autocast=a.autocast,
        compile=a.compile,
        model_name=name,
        command=report.bench_command(a),
    )
    res["build_s"] = build_s
    print(report.format_table(res))
    return _write_and_report(res, a, tradeoff_figure)


def _bench_profile(
    a: argparse.Namespace, subject: Pipeline | ARPG, name: str, options: SamplingOptions, batch: int, seed: int
) -> int:
    """``bench --profile``: the time of one generate call by part (default path; with --baseline the plain model)."""
    model = subject if isinstance(subject, ARPG) else subject.model
    labels = torch.randint(model.cfg.num_classes, (batch,), generator=torch.Generator().manual_seed(seed)).tolist()
    models = {"default path": model} | ({"baseline": plain_copy(model)} if a.baseline else {})
    res: dict[str, Any] = {
        "model": name,
        "batch": batch,
        "steps": options.steps,
        "command": report.bench_command(a),
        "machine": machine_string(machine_info(model.device)),
        "profiles": {},
        "matmul_peak_gflops": matmul_peak_gflops(model.device),
    }
    for label, m in models.items():
        prof = profile_generate(m, labels, options, seed=seed)
        prof["peak_dtype"] = str(m.dtype).removeprefix("torch.")
        prof["peak_gflops"] = res["matmul_peak_gflops"].get(prof["peak_dtype"])
        res["profiles"][f"{label} ({str(m.dtype).removeprefix('torch.')})"] = prof
        print(format_profile(f"{name}, {label}, batch {batch}", prof))
        if a.verbose:
            print(prof["ops"])
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


def parse_models(text: str) -> list[tuple[str, int | None]]:
    """``--models A,B:64,...``: (model, steps or None for its own) pairs; a model is a registry name or folder
    (a colon not followed by a whole number belongs to the name)."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        name, _, steps = item.rpartition(":")
        if not steps.isdecimal():
            name, steps = item, ""
        if not name:
            raise ValueError(f"--models takes NAME[:STEPS],... ; got {item!r}")
        out.append((name, check_int(f"--models {name} steps", int(steps), 1) if steps else None))
    return out


def _bench_models(a: argparse.Namespace, batch: list[int], repeats: int, warmup: int, seed: int) -> int:
    """``bench --models``: 2-4 models raced one after another, each at its own steps (:mod:`arpg.measure.peers`)."""
    if a.weights or a.model or a.preset or a.orders:
        raise ValueError("--models names every model itself: drop --model, --weights, --preset and --orders")
    if len(batch) != 1:
        raise ValueError("--models takes one --batch")
    pipes, steps = race_models(a)
    res = peers.race(pipes, steps, batch[0], seed=seed, repeats=repeats, warmup=warmup, progress=print)
    res["command"] = report.bench_command(a)
    print(peers.format_race(res))
    _report_written(report.write_outputs(res, a.json, None, lambda r: None))
    return 0


def _bench_orders(a: argparse.Namespace, steps: list[int], per_class: int) -> int:
    """``bench --orders``: the decoding-order table (quality and speed per order)."""
    orders = [o.strip() for o in a.orders.split(",") if o.strip()]
    bad = [o for o in orders if o not in SAMPLER_ORDERS]
    if bad or not orders:
        raise ValueError(f"--orders takes {', '.join(SAMPLER_ORDERS)}; unknown: {', '.join(bad) or 'none given'}")
    pipe = load_pipeline(a, a.model)
    if pipe.judge is None:
        raise ValueError(f"--orders measures quality with a judge; {pipe.name} has none (give a model trained here)")
    res = order_table(
        pipe, orders, steps, per_class=per_class, progress=a.verbose, options=pipe.defaults.replace(cfg_scale=a.cfg)
    )
    res["command"] = report.bench_command(a)
    print(report.format_order_table(res))
    return _write_and_report(res, a, orders_figure)


# -- sample-many ------------------------------------------------------------------------------
def _sample_many_pipeline(a: argparse.Namespace, device: torch.device) -> Pipeline:
    """The pipeline on this rank's device (``--random-model ARPG,VQ``: random weights, for tests)."""
    if a.random_model:
        parts = [p.strip() for p in a.random_model.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"--random-model takes ARPG,VQ config names, got {a.random_model!r}")
        pipe = Pipeline.random(parts[0], parts[1], seed=0)
        pipe.model.to(device=device, dtype=DTYPES[a.dtype] if a.dtype else None)
        pipe.vq.to(device)
        return pipe
    a.device = str(device)
    return load_pipeline(a, a.model)


def cmd_sample_many(a: argparse.Namespace) -> int:
    """``sample-many``: see :func:`arpg.sample_many.sample_many`."""
    env = init_distributed(a.device)
    try:
        pipe = _sample_many_pipeline(a, env.device)
        res = sample_many(
            pipe,
            a.out,
            parse_classes(a.classes, pipe),
            sampling_options(a, pipe.defaults),
            per_class=a.per_class,
            batch_size=a.batch_size,
            seed=a.seed,
            env=env,
            limit=a.limit,
            npz=a.npz,
            progress=not a.no_progress,
        )
    finally:
        env.close()
    if env.rank == 0:
        if res.npz is not None:
            print(f"wrote {res.npz} ({res.total} images, {env.world} process(es))")
        else:
            print(
                f"{res.on_disk} of {res.total} images in {Path(a.out) / 'images'}; rerun the same command "
                "to finish and write the .npz"
            )
    return 0
