"""Sampling at scale: many images across processes and GPUs (``python -m arpg sample-many``).

Runs alone or under ``torchrun --nproc_per_node=K -m arpg sample-many ...``.  Image ``i``
(global index, class-major: ``classes[i // per_class]``) is decoded with its own generator
seeded ``seed + i`` and its own random order, exactly as ``pipe.generate([label], seed=seed + i)``
would decode it, so the images do not depend on how many processes share the work.

The N images are cut into fixed blocks of ``batch_size`` consecutive indices; one block is
one batch of forward passes.  The blocks still missing on disk are dealt round-robin to the
ranks, so a batch always holds the same images whatever K is and whatever was done before;
changing ``batch_size`` changes only which images share a forward pass (bit-identical
where the kernels are batch-invariant, as on the CPU; see ``docs/sample_many.md``).

Each image is written as ``<out>/images/<index>.png`` (tmp file + rename); a rerun skips
images already on disk.  When every image exists, rank 0 streams them, in index order,
into one ``.npz`` (``arr_0`` uint8 N x H x W x 3, ``arr_1`` labels) in the format of the
ADM evaluator.  ``<out>/sample-many.json`` records the settings; resuming with other
settings is refused.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .model import ARPG
from .orders import ORDER_NAMES
from .sampling import check_int, check_options, generate

log = logging.getLogger(__name__)

MANIFEST = "sample-many.json"
MAX_SEED = 2**31 - 1
BARRIER_TIMEOUT = datetime.timedelta(hours=1)


def generate_each(model: ARPG, labels: Sequence[int], generators: Sequence[torch.Generator],
                  **options) -> torch.Tensor:
    """Decode B images in one batch, image b with its own order and ``generators[b]``: the
    tokens :func:`arpg.sampling.generate` gives for ``[labels[b]]`` with ``generators[b]``
    alone.  Returns (B, rows, cols) long on the CPU."""
    if options.get("order") == "confidence":  # chosen from the whole batch: not reproducible per image
        raise ValueError(f"sample-many takes --order {', '.join(ORDER_NAMES)}, got 'confidence'")
    return generate(model, list(labels), generator=list(generators), **options).tokens


def parse_classes(spec: str | None, pipe) -> list[int]:
    """``None``/"all" -> every class; else comma-separated ids, ``a-b`` id ranges or class names."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return list(range(pipe.num_classes))
    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)-(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise ValueError(f"class range {part!r} is empty")
            out.extend(pipe.label_of(i) for i in range(lo, hi + 1))
        else:
            out.append(pipe.label_of(part))
    if not out:
        raise ValueError(f"--classes {spec!r} names no class")
    if len(set(out)) != len(out):
        raise ValueError(f"--classes {spec!r} names a class twice")
    return out


def blocks(n: int, batch_size: int) -> list[range]:
    """Global indices 0..n-1 cut into consecutive blocks of ``batch_size`` (the last may be short)."""
    return [range(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def image_path(images_dir: Path, index: int, n: int) -> Path:
    return images_dir / f"{index:0{max(6, len(str(n - 1)))}d}.png"


def _fingerprint(module: torch.nn.Module) -> str:
    """A cheap digest of a module's weights (a strided sample of every tensor)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        flat = t.detach().flatten()
        sample = flat[:: max(1, flat.numel() // 512)].float().cpu().numpy()
        h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
        h.update(sample.tobytes())
    return h.hexdigest()[:16]


def _save_png_atomic(img: np.ndarray, path: Path) -> None:
    from PIL import Image

    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    Image.fromarray(img).save(tmp, format="PNG")
    os.replace(tmp, path)


def _load_png(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e}; delete it and rerun") from None
    if arr.shape != shape:
        raise ValueError(f"{path} is {arr.shape[1]}x{arr.shape[0]}, expected {shape[1]}x{shape[0]}; "
                         "delete it and rerun")
    return arr


def write_npz(paths: Sequence[Path], labels: Sequence[int], shape: tuple[int, int, int], out: Path) -> Path:
    """Stream the PNGs, in order, into ``out`` (``arr_0`` uint8 N x H x W x 3, ``arr_1`` int64 labels).

    Written like ``np.savez`` (stored zip, .npy members, zip64) without holding N images in
    memory; the file appears under its name only when complete.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (len(paths), *shape)}
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open("arr_0.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(f, header)
                for p in paths:
                    f.write(np.ascontiguousarray(_load_png(p, shape)).tobytes())
            with zf.open("arr_1.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(labels, dtype=np.int64))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


# -- processes ----------------------------------------------------------------------------------
@dataclass
class DistEnv:
    """This process's place in the job (from torchrun's environment variables)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def initialized(self) -> bool:
        import torch.distributed as dist

        return self.world > 1 and dist.is_available() and dist.is_initialized()

    def barrier(self) -> None:
        import torch.distributed as dist

        if self.initialized:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if self.initialized:
            dist.destroy_process_group()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def init_distributed(device: str | None = None) -> DistEnv:
    """Read RANK/WORLD_SIZE/LOCAL_RANK; join the process group when WORLD_SIZE > 1.

    Device: cuda:LOCAL_RANK when CUDA is available (or ``device`` is "cuda"), else the CPU;
    backend: nccl on CUDA, gloo on the CPU.
    """
    world, rank, local = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    want = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if want.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda but CUDA is not available")
        index = want.index if want.index is not None else local
        if index >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local} needs cuda:{index} but this node has "
                             f"{torch.cuda.device_count()} CUDA device(s); lower --nproc_per_node")
        want = torch.device("cuda", index)
        torch.cuda.set_device(want)
    env = DistEnv(rank, world, local, want)
    if world > 1:
        import torch.distributed as dist

        backend = "nccl" if want.type == "cuda" else "gloo"
        kw = {"device_id": want} if want.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=BARRIER_TIMEOUT, **kw)
        log.info("rank %d of %d on %s (%s)", rank, world, want, backend)
    return env


# -- the job ------------------------------------------------------------------------------------
@dataclass
class SampleManyResult:
    total: int  # images in the job
    generated: int  # images this process decoded in this run
    on_disk: int  # images on disk at the end (rank 0's count after the final barrier)
    npz: Path | None  # written by rank 0 when every image exists


def sample_many(pipe, out: str | Path, classes: Sequence[int], per_class: int = 50, batch_size: int = 16,
                seed: int = 0, steps: int = 32, schedule: str = "arccos", cfg_scale: float | None = None,
                cfg_schedule: str | None = None, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                order: str = "random", env: DistEnv | None = None, limit: int | None = None,
                npz: str | Path | None = None, progress: bool = True,
                on_batch: Callable[[int], None] | None = None) -> SampleManyResult:
    """Decode this rank's share of ``len(classes) * per_class`` images into ``out``; see the module doc.

    limit: stop after the batch that brings this process's new images to ``limit`` (the
    ``.npz`` is then written only if nothing is missing). on_batch(n_new) runs after each batch.
    """
    from tqdm import tqdm

    env = env or DistEnv(device=pipe.device)
    per_class = check_int("--per-class", per_class, 1, 10**7)
    batch_size = check_int("--batch-size", batch_size, 1, 10**5)
    if limit is not None:
        limit = check_int("--limit", limit, 1, 10**9)
    labels = [c for c in classes for _ in range(per_class)]
    n = len(labels)
    if n == 0:
        raise ValueError("no images to sample: give at least one class")
    seed = check_int("--seed", seed, 0, MAX_SEED)
    if seed + n - 1 > MAX_SEED:
        raise ValueError(f"seeds run from --seed to --seed + {n - 1}, past {MAX_SEED}; lower --seed")
    cfg_scale = pipe.default_cfg if cfg_scale is None else float(cfg_scale)
    cfg_schedule = cfg_schedule or pipe.default_cfg_schedule  # resolved here: the manifest records it
    kw = dict(steps=steps, schedule=schedule, cfg_scale=cfg_scale, cfg_schedule=cfg_schedule,
              temperature=temperature, top_k=top_k, top_p=top_p, order=order)
    if order == "confidence":
        raise ValueError(f"sample-many takes --order {', '.join(ORDER_NAMES)}, got 'confidence'")
    check_options(pipe.model, pipe.grid, **kw)
    shape = (pipe.image_size, pipe.image_size, 3)

    out = Path(out)
    images_dir = out / "images"
    manifest = {"format": 1, "model": pipe.name, "weights": _fingerprint(pipe.model),
                "tokenizer": _fingerprint(pipe.vq), "device_type": pipe.device.type,
                "classes": list(classes), "per_class": per_class, "seed": seed, "sampling": kw,
                "image_shape": list(shape), "num_images": n}
    mpath = out / MANIFEST
    has_images = images_dir.is_dir() and any(images_dir.glob("*.png"))
    if mpath.exists() and has_images:  # a manifest without images protects nothing: replaced below
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError):
            raise ValueError(f"{mpath} is unreadable; use a new --out folder") from None
        if old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise ValueError(f"{out} holds images made with other settings ({', '.join(diff)}); "
                             "use a new --out folder or the same settings")
    if env.rank == 0:
        images_dir.mkdir(parents=True, exist_ok=True)
        for stale in images_dir.glob("*.png.tmp*"):  # left by a killed run
            stale.unlink(missing_ok=True)
        if not has_images or not mpath.exists():
            if has_images:
                raise ValueError(f"{images_dir} holds PNGs but {out} has no {MANIFEST}; use a new --out folder")
            tmp = mpath.with_name(f"{MANIFEST}.tmp{os.getpid()}")
            tmp.write_text(json.dumps(manifest, indent=1) + "\n")
            os.replace(tmp, mpath)

    # Every rank scans the disk before anyone writes: all see the same missing blocks.
    paths = [image_path(images_dir, i, n) for i in range(n)]
    missing = [b for b in blocks(n, batch_size) if not all(paths[i].exists() for i in b)]
    env.barrier()
    mine = missing[env.rank::env.world]
    todo = sum(len(b) for b in mine)
    log.info("rank %d: %d of %d images to decode in %d batch(es)", env.rank, todo, n, len(mine))

    generated = 0
    desc = "sample-many" + (f" (rank 0 of {env.world})" if env.world > 1 else "")
    bar = tqdm(total=todo, unit="img", desc=desc, dynamic_ncols=True,
               disable=not progress or env.rank != 0)
    try:
        for block in mine:
            if limit is not None and generated >= limit:
                log.info("rank %d: stopping at --limit %d", env.rank, limit)
                break
            gens = [pipe.generator(seed + i) for i in block]
            tokens = generate_each(pipe.model, [labels[i] for i in block], gens, grid=pipe.grid, **kw)
            images = pipe.decode(tokens)
            written = 0
            for i, img in zip(block, images):
                if not paths[i].exists():  # resume: keep what is there, recompute the batch as it was
                    _save_png_atomic(img, paths[i])
                    written += 1
            generated += written
            bar.update(len(block))
            if on_batch is not None:
                on_batch(written)
    finally:
        bar.close()

    env.barrier()
    npz_path = None
    on_disk = sum(p.exists() for p in paths) if env.rank == 0 else -1
    if env.rank == 0:
        if on_disk == n:
            target = Path(npz) if npz else out / f"samples_{n}x{shape[0]}x{shape[1]}x3.npz"
            npz_path = write_npz(paths, labels, shape, target)
            log.info("wrote %s", npz_path)
        else:
            log.info("%d of %d images on disk; rerun to finish", on_disk, n)
    return SampleManyResult(n, generated, on_disk, npz_path)


# -- command line -------------------------------------------------------------------------------
def _load(a: argparse.Namespace, device: torch.device):
    """The pipeline of the command line, on this rank's device (``--random-model`` is for tests)."""
    from .cli import load_pipeline
    from .pipeline import Pipeline

    if a.random_model:
        parts = [p.strip() for p in a.random_model.split(",")]
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"--random-model takes ARPG,VQ config names, got {a.random_model!r}")
        pipe = Pipeline.random(parts[0], parts[1], seed=0)
        pipe.model.to(device=device, dtype=getattr(torch, a.dtype) if a.dtype else None)
        pipe.vq.to(device)
        return pipe
    a.device = str(device)
    return load_pipeline(a)


def cmd_sample_many(a: argparse.Namespace) -> int:
    """``python -m arpg sample-many``: see :func:`sample_many`."""
    env = init_distributed(a.device)
    try:
        pipe = _load(a, env.device)
        classes = parse_classes(a.classes, pipe)
        res = sample_many(pipe, a.out, classes, per_class=a.per_class, batch_size=a.batch_size, seed=a.seed,
                          steps=a.steps, schedule=a.schedule, cfg_scale=a.cfg, cfg_schedule=a.cfg_schedule,
                          temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, order=a.order, env=env,
                          limit=a.limit, npz=a.npz, progress=not a.no_progress)
    finally:
        env.close()
    if env.rank == 0:
        if res.npz is not None:
            print(f"wrote {res.npz} ({res.total} images, {env.world} process(es))")
        else:
            print(f"{res.on_disk} of {res.total} images in {Path(a.out) / 'images'}; rerun the same command "
                  "to finish and write the .npz")
    return 0


def register(subparsers) -> None:
    """Add ``sample-many`` to the command line (called by :mod:`arpg.cli`)."""
    from .cli import add_model_args, add_sampling_args

    s = subparsers.add_parser(
        "sample-many", help="many images for FID: PNGs + one .npz; runs under torchrun on many GPUs",
        description="Sample len(classes) x per-class images, image i with seed --seed + i; under "
                    "torchrun --nproc_per_node=K each rank takes a share. Resumable; the .npz "
                    "(arr_0: N x H x W x 3 uint8) is in the ADM evaluator's format.")
    s.add_argument("--classes", default=None, help="comma-separated class ids, a-b ranges or names (default: all)")
    s.add_argument("--per-class", type=int, default=50, help="images per class (default 50, the ImageNet protocol)")
    s.add_argument("--batch-size", type=int, default=16, help="images per forward pass, per process")
    s.add_argument("--out", default="samples", help="output folder (PNGs in <out>/images)")
    s.add_argument("--npz", default=None, help="path of the .npz (default <out>/samples_NxHxWx3.npz)")
    s.add_argument("--limit", type=int, default=None,
                   help="stop after about this many new images per process (time-boxed jobs; rerun to continue)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.add_argument("--random-model", default=None, help=argparse.SUPPRESS)  # tests: e.g. ARPG-tiny,VQ-tiny
    add_sampling_args(s)
    add_model_args(s)
    s.set_defaults(func=cmd_sample_many)
