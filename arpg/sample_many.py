"""Sampling at scale: many images across processes and GPUs (``python -m arpg sample-many``).

Runs alone or under ``torchrun --nproc_per_node=K -m arpg sample-many ...``.  Image ``i``
(global index, class-major: ``classes[i // per_class]``) is decoded with its own generator
seeded ``seed + i`` and its own random order, exactly as ``pipe.generate([label], seed=seed + i)``
would decode it, so the images do not depend on how many processes share the work.

The N images are cut into fixed blocks of ``batch_size`` consecutive indices; one block is
one batch of forward passes.  The blocks still missing on disk are dealt round-robin to the
ranks, so a batch always holds the same images whatever K is and whatever was done before;
changing ``batch_size`` changes only which images share a forward pass: bit-identical images with
float32 weights on the CPU (:func:`batch_invariant`); elsewhere (bf16, GPUs) the batch size is one
of the recorded settings (see ``docs/sample_many.md``).

Each image is written as ``<out>/images/<index>.png`` (tmp file + rename); a rerun skips
images already on disk.  When every image exists, rank 0 streams them, in index order,
into one ``.npz`` (``arr_0`` uint8 N x H x W x 3, ``arr_1`` labels) in the format of the
ADM evaluator.  ``<out>/sample-many.json`` records the settings; resuming with other
settings is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .distributed import DistEnv
from .model import ARPG
from .options import SamplingOptions
from .orders import ORDER_NAMES, order_policy
from .pipeline import Pipeline
from .sampling import generate
from .schedules import token_counts
from .validation import MAX_SEED, check_int

log = logging.getLogger(__name__)

MANIFEST = "sample-many.json"


def _refuse_adaptive(options: SamplingOptions) -> None:
    if order_policy(options.order).adaptive:  # chosen while decoding the batch: not reproducible per image
        raise ValueError(f"sample-many takes --order {', '.join(ORDER_NAMES)}, got {options.order!r}")


def generate_each(
    model: ARPG,
    labels: Sequence[int],
    generators: Sequence[torch.Generator],
    options: SamplingOptions,
    *,
    grid: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Decode B images in one batch, image b with its own order and ``generators[b]``: the
    tokens :func:`arpg.sampling.generate` gives for ``[labels[b]]`` with ``generators[b]``
    alone.  Returns (B, rows, cols) long on the CPU."""
    _refuse_adaptive(options)
    return generate(model, list(labels), options, generator=list(generators), grid=grid).tokens


def parse_classes(spec: str | None, pipe: Pipeline) -> list[int]:
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
    """Where image ``index`` of ``n`` goes: zero-padded to at least six digits."""
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
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    Image.fromarray(img).save(tmp, format="PNG")
    os.replace(tmp, path)


def _load_png(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e}; delete it and rerun") from None
    if arr.shape != shape:
        raise ValueError(
            f"{path} is {arr.shape[1]}x{arr.shape[0]}, expected {shape[1]}x{shape[0]}; delete it and rerun"
        )
    return arr


def write_npz(paths: Sequence[Path], labels: Sequence[int], shape: tuple[int, int, int], out: Path) -> Path:
    """Stream the PNGs, in order, into ``out`` (``arr_0`` uint8 N x H x W x 3, ``arr_1`` int64 labels).

    Written like ``np.savez`` (stored zip, .npy members, zip64) without holding N images in
    memory; the file appears under its name only when complete.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
        "fortran_order": False,
        "shape": (len(paths), *shape),
    }
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


# -- the job ------------------------------------------------------------------------------------
@dataclass
class SampleManyResult:
    """What :func:`sample_many` did."""

    total: int  # images in the job
    generated: int  # images this process decoded in this run
    on_disk: int  # images on disk at the end (rank 0's count after the final barrier)
    npz: Path | None  # written by rank 0 when every image exists


@dataclass
class _Job:
    """The images of one job: image ``i`` has label ``labels[i]`` and seed ``seed + i``."""

    out: Path
    labels: list[int]
    seed: int
    options: SamplingOptions
    shape: tuple[int, int, int]

    @property
    def n(self) -> int:
        """Images in the job."""
        return len(self.labels)

    @property
    def images_dir(self) -> Path:
        """Where the PNGs go."""
        return self.out / "images"

    def paths(self) -> list[Path]:
        """The PNG of every image, in index order."""
        return [image_path(self.images_dir, i, self.n) for i in range(self.n)]


def _job(
    pipe: Pipeline, out: str | Path, classes: Sequence[int], per_class: int, seed: int, options: SamplingOptions
) -> _Job:
    """Check the job's arguments (``ValueError`` naming the flag) before anything is written."""
    labels = [c for c in classes for _ in range(per_class)]
    if not labels:
        raise ValueError("no images to sample: give at least one class")
    seed = check_int("--seed", seed, 0, MAX_SEED)
    if seed + len(labels) - 1 > MAX_SEED:
        raise ValueError(f"seeds run from --seed to --seed + {len(labels) - 1}, past {MAX_SEED}; lower --seed")
    _refuse_adaptive(options)
    rows, cols = pipe.grid
    token_counts(rows * cols, options.steps, options.schedule)  # steps that fit the grid, before any work
    return _Job(Path(out), labels, seed, options, (pipe.image_size, pipe.image_size, 3))


def batch_invariant(pipe: Pipeline) -> bool:
    """Whether an image comes out the same bits whatever batch it is decoded in: float32 weights on the
    CPU. Other dtypes (the CPU's bf16 kernels) and GPU kernels pick other blockings for other batch
    shapes, so there an image also depends on the batch size (``docs/sample_many.md``)."""
    return pipe.device.type == "cpu" and pipe.model.dtype == torch.float32


def _manifest(pipe: Pipeline, job: _Job, classes: Sequence[int], per_class: int, batch_size: int) -> dict:
    """The settings a folder's images were made with (compared when a job resumes); the batch size
    among them where it changes the images (not :func:`batch_invariant`)."""
    return {
        "format": 1,
        "model": pipe.name,
        "weights": _fingerprint(pipe.model),
        "tokenizer": _fingerprint(pipe.vq),
        "device_type": pipe.device.type,
        "classes": list(classes),
        "per_class": per_class,
        "seed": job.seed,
        "sampling": job.options.as_kwargs(),
        "image_shape": list(job.shape),
        "num_images": job.n,
        **({} if batch_invariant(pipe) else {"batch_size": batch_size}),
    }


def _prepare_folder(job: _Job, manifest: dict, rank: int) -> None:
    """Refuse a folder made with other settings; rank 0 clears half-written files and writes the manifest."""
    mpath = job.out / MANIFEST
    has_images = job.images_dir.is_dir() and any(job.images_dir.glob("*.png"))
    if mpath.exists() and has_images:  # a manifest without images protects nothing: replaced below
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError):
            raise ValueError(f"{mpath} is unreadable; use a new --out folder") from None
        if old != manifest:
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise ValueError(
                f"{job.out} holds images made with other settings ({', '.join(diff)}); "
                "use a new --out folder or the same settings"
            )
    if rank != 0:
        return
    job.images_dir.mkdir(parents=True, exist_ok=True)
    for stale in job.images_dir.glob("*.png.tmp*"):  # left by a killed run
        stale.unlink(missing_ok=True)
    if not has_images or not mpath.exists():
        if has_images:
            raise ValueError(f"{job.images_dir} holds PNGs but {job.out} has no {MANIFEST}; use a new --out folder")
        tmp = mpath.with_name(f"{MANIFEST}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(tmp, mpath)


def _decode_share(
    pipe: Pipeline,
    job: _Job,
    mine: list[range],
    env: DistEnv,
    limit: int | None,
    progress: bool,
    on_batch: Callable[[int], None] | None,
) -> int:
    """Decode this rank's blocks, writing the images not on disk yet; returns how many were written."""
    paths, generated = job.paths(), 0
    desc = "sample-many" + (f" (rank 0 of {env.world})" if env.world > 1 else "")
    bar = tqdm(
        total=sum(len(b) for b in mine),
        unit="img",
        desc=desc,
        dynamic_ncols=True,
        disable=not progress or env.rank != 0,
    )
    try:
        for block in mine:
            if limit is not None and generated >= limit:
                log.info("rank %d: stopping at --limit %d", env.rank, limit)
                break
            gens = [pipe.generator(job.seed + i) for i in block]
            tokens = generate_each(pipe.model, [job.labels[i] for i in block], gens, job.options, grid=pipe.grid)
            written = 0
            for i, img in zip(block, pipe.decode(tokens)):
                if not paths[i].exists():  # resume: keep what is there, recompute the batch as it was
                    _save_png_atomic(img, paths[i])
                    written += 1
            generated += written
            bar.update(len(block))
            if on_batch is not None:
                on_batch(written)
    finally:
        bar.close()
    return generated


def _write_npz_when_complete(job: _Job, npz: str | Path | None) -> tuple[int, Path | None]:
    """Rank 0 at the end: images on disk, and the ``.npz`` once none is missing."""
    paths = job.paths()
    on_disk = sum(p.exists() for p in paths)
    if on_disk != job.n:
        log.info("%d of %d images on disk; rerun to finish", on_disk, job.n)
        return on_disk, None
    h, w, _ = job.shape
    target = Path(npz) if npz else job.out / f"samples_{job.n}x{h}x{w}x3.npz"
    path = write_npz(paths, job.labels, job.shape, target)
    log.info("wrote %s", path)
    return on_disk, path


def sample_many(
    pipe: Pipeline,
    out: str | Path,
    classes: Sequence[int],
    options: SamplingOptions | None = None,
    *,
    per_class: int = 50,
    batch_size: int = 16,
    seed: int = 0,
    env: DistEnv | None = None,
    limit: int | None = None,
    npz: str | Path | None = None,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> SampleManyResult:
    """Decode this rank's share of ``len(classes) * per_class`` images into ``out``; see the module doc.

    options: how to decode (default ``pipe.defaults``; the manifest records it). limit: stop
    after the batch that brings this process's new images to ``limit`` (the ``.npz`` is then
    written only if nothing is missing). on_batch(n_new) runs after each batch.
    """
    env = env or DistEnv(device=pipe.device)
    per_class = check_int("--per-class", per_class, 1, 10**7)
    batch_size = check_int("--batch-size", batch_size, 1, 10**5)
    if limit is not None:
        limit = check_int("--limit", limit, 1, 10**9)
    job = _job(pipe, out, classes, per_class, seed, options or pipe.defaults)
    _prepare_folder(job, _manifest(pipe, job, classes, per_class, batch_size), env.rank)

    # Every rank scans the disk before anyone writes: all see the same missing blocks.
    paths = job.paths()
    missing = [b for b in blocks(job.n, batch_size) if not all(paths[i].exists() for i in b)]
    env.barrier()
    mine = missing[env.rank :: env.world]
    log.info(
        "rank %d: %d of %d images to decode in %d batch(es)", env.rank, sum(len(b) for b in mine), job.n, len(mine)
    )
    generated = _decode_share(pipe, job, mine, env, limit, progress, on_batch)
    env.barrier()
    on_disk, npz_path = _write_npz_when_complete(job, npz) if env.rank == 0 else (-1, None)
    return SampleManyResult(job.n, generated, on_disk, npz_path)
