"""sample-many: torchrun (gloo, 2 processes) equals one process byte for byte; resuming is exact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from arpg import cli
from arpg.options import SamplingOptions
from arpg.pipeline import Pipeline
from arpg.sample_many import blocks, generate_each, sample_many

ROOT = Path(__file__).resolve().parent.parent
RANDOM = ["--random-model", "ARPG-tiny,VQ-tiny"]  # hidden flag: a random tiny model, for tests
# 3 classes x 3 = 9 images of 16x16 px; top-p and CFG on so every draw path is used.
JOB = [
    *RANDOM,
    "--classes",
    "1,4-5",
    "--per-class",
    "3",
    "--steps",
    "4",
    "--cfg",
    "3",
    "--top-p",
    "0.9",
    "--seed",
    "7",
    "--no-progress",
]
NPZ = "samples_9x16x16x3.npz"
DIST_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """Run in-process jobs as a single process with one thread, like each torchrun worker."""
    for v in DIST_VARS:
        monkeypatch.delenv(v, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(out: Path, *extra: str, batch: int = 4) -> int:
    return cli.main(["sample-many", *JOB, "--device", "cpu", "--batch-size", str(batch), "--out", str(out), *extra])


def pngs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "images").glob("*.png"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted single-process run."""
    out = tmp_path_factory.mktemp("ref")
    saved = {v: os.environ.pop(v) for v in DIST_VARS if v in os.environ}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run(out) == 0
    finally:
        torch.set_num_threads(threads)
        os.environ.update(saved)
    return out


def test_batched_decode_equals_one_image_per_call():
    pipe = Pipeline.random()
    opts = SamplingOptions(steps=5, cfg_scale=3.0, top_p=0.9, order="random")
    labels = [0, 3, 7, 9, 1]
    ref = [pipe.generate([lab], opts, seed=100 + i).tokens[0] for i, lab in enumerate(labels)]
    for bs in (1, 2, 5):
        parts = [
            generate_each(pipe.model, [labels[i] for i in b], [pipe.generator(100 + i) for i in b], opts)
            for b in blocks(len(labels), bs)
        ]
        assert torch.equal(torch.cat(parts), torch.stack(ref)), bs
    assert len({tuple(t.flatten().tolist()) for t in ref}) == 5  # distinct seeds, distinct images


def test_reference_npz_is_in_the_evaluator_format(reference):
    with np.load(reference / NPZ) as d:
        arr, lab = d["arr_0"], d["arr_1"]
    assert arr.dtype == np.uint8 and arr.shape == (9, 16, 16, 3)
    assert lab.tolist() == [1, 1, 1, 4, 4, 4, 5, 5, 5]
    for i, p in enumerate(sorted((reference / "images").glob("*.png"))):
        assert np.array_equal(np.asarray(Image.open(p)), arr[i])
    assert len({a.tobytes() for a in arr}) == 9
    # The ADM evaluator streams arr_0 from the zip member: .npy format 1.0, C order, uint8.
    with zipfile.ZipFile(reference / NPZ) as zf, zf.open("arr_0.npy") as f:
        assert np.lib.format.read_magic(f) == (1, 0)
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        assert (shape, fortran, dtype) == ((9, 16, 16, 3), False, np.dtype(np.uint8))
        assert f.read() == arr.tobytes()
    assert not list(reference.rglob("*.tmp*"))


@pytest.fixture(scope="module")
def reference_bf16(tmp_path_factory) -> Path:
    """One uninterrupted single-process run at bf16, the default dtype where the CPU has bf16 instructions."""
    out = tmp_path_factory.mktemp("ref_bf16")
    saved = {v: os.environ.pop(v) for v in DIST_VARS if v in os.environ}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run(out, "--dtype", "bfloat16") == 0
    finally:
        torch.set_num_threads(threads)
        os.environ.update(saved)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "dtype, batch, ref",
    [("float32", 3, "reference"), ("bfloat16", 4, "reference_bf16")],
    ids=["float32-another-batch-size", "bfloat16-same-batch-size"],
)
def test_torchrun_two_processes_equal_one_process(dtype, batch, ref, tmp_path, request):
    """What docs/sample_many.md promises: float32 on the CPU, any process count and batch size; the
    default dtype (bf16), any process count at one batch size."""
    reference = request.getfixturevalue(ref)
    out = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if k not in DIST_VARS}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), TQDM_DISABLE="1")
    # --standalone: a local rendezvous on a free port (localhost:0).
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "arpg",
        "-v",
        "sample-many",
        *JOB,
        "--device",
        "cpu",
        "--dtype",
        dtype,
        "--batch-size",
        str(batch),
        "--out",
        str(out),
    ]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "rank 1 of 2 on cpu (gloo)" in p.stderr and f"rank 1: {batch} of 9 images" in p.stderr, p.stderr[-3000:]
    assert (out / NPZ).read_bytes() == (reference / NPZ).read_bytes()
    assert pngs(out) == pngs(reference)


def test_interrupt_and_resume_give_the_same_npz(reference, tmp_path):
    out = tmp_path / "resume"
    assert run(out, "--limit", "2", batch=2) == 0  # stops early: no .npz yet
    assert len(pngs(out)) == 2 and not (out / NPZ).exists()

    def die(_n: int) -> None:
        raise KeyboardInterrupt  # killed after one more batch

    pipe = Pipeline.random()
    opts = pipe.defaults.replace(steps=4, cfg_scale=3.0, top_p=0.9)  # the flags of JOB
    with pytest.raises(KeyboardInterrupt):
        sample_many(pipe, out, [1, 4, 5], opts, per_class=3, batch_size=2, seed=7, progress=False, on_batch=die)
    assert len(pngs(out)) == 4
    (out / "images" / "000001.png").unlink()  # a hole inside a finished batch
    (out / "images" / "000005.png.tmp123").write_bytes(b"partial")  # a write cut short
    before = pngs(out)
    assert run(out, batch=2) == 0
    after = pngs(out)
    assert all(after[k] == v for k, v in before.items())  # kept, not rewritten differently
    assert (out / NPZ).read_bytes() == (reference / NPZ).read_bytes()
    assert not list(out.rglob("*.tmp*"))
    assert run(out, batch=2) == 0 and (out / NPZ).read_bytes() == (reference / NPZ).read_bytes()  # idempotent


def test_a_bf16_folder_resumed_with_another_batch_size_is_refused(tmp_path, capsys):
    """bf16 kernels block a batch by its shape, so another batch size changes some images: the folder's
    settings include the batch size there, as they do not at float32 on the CPU."""
    out = tmp_path / "bf16"
    assert run(out, "--dtype", "bfloat16", "--limit", "2", batch=2) == 0
    capsys.readouterr()
    assert run(out, "--dtype", "bfloat16", batch=3) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "other settings (batch_size)" in err
    assert run(out, "--dtype", "bfloat16", batch=2) == 0 and (out / NPZ).exists()


def test_a_float32_folder_resumes_with_any_batch_size(reference, tmp_path):
    out = tmp_path / "fp32"
    assert run(out, "--dtype", "float32", "--limit", "2", batch=2) == 0
    assert run(out, "--dtype", "float32", batch=3) == 0
    assert (out / NPZ).read_bytes() == (reference / NPZ).read_bytes()


def test_other_settings_in_the_same_folder_are_refused(reference, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    assert run(out, "--temperature", "0.5") == 2
    assert "other settings (sampling)" in capsys.readouterr().err
    (out / "sample-many.json").unlink()
    assert run(out) == 2
    assert "no sample-many.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--classes", "3-12"], "class must be in 0..9"),
        (["--classes", "2,2"], "twice"),
        (["--per-class", "0"], "--per-class must be between"),
        (["--batch-size", "0"], "--batch-size must be between"),
        (["--seed", str(2**31 - 5)], "lower --seed"),
        (["--steps", "99"], "steps must be"),
        (["--temperature", "0"], "temperature"),
        (["--random-model", "ARPG-nope,VQ-tiny"], "unknown ARPG preset"),
        (["--order", "confidence"], "sample-many takes --order random"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, args, msg):
    assert run(tmp_path / "bad", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and msg in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad").exists()  # refused before anything is written
