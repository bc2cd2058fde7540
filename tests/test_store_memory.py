"""The model store under switches (:mod:`arpg.store`): memory stays within one model of the first
load however often users switch released models, and a load never blocks the users of models
already in memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from arpg.pipeline import Pipeline
from arpg.store import ModelStore

ROOT = Path(__file__).resolve().parents[1]

# Stand-ins shaped like two released models of different sizes (pickled .pt files, as released)
# and a tokenizer; users switch between them while requests run on the model of the moment.
CHILD = textwrap.dedent("""
    import json, sys, torch
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    from arpg.checkpoints import save_checkpoint
    from arpg.config import ARPGConfig, VQConfig
    from arpg.model import ARPG
    from arpg.pipeline import Pipeline
    from arpg.store import ModelStore
    from arpg.tokenizer import VQModel

    def rss():
        text = Path("/proc/self/status").read_text()
        return next(int(l.split()[1]) * 1024 for l in text.splitlines() if l.startswith("VmRSS:"))

    folder, switches = Path(sys.argv[1]), int(sys.argv[2])
    torch.manual_seed(0)
    names = []
    for stem, dim in (("small", 384), ("large", 512)):
        model = ARPG(ARPGConfig(dim=dim, n_head=dim // 64, n_self_layers=4, n_cross_layers=4)).init_weights(0.02)
        torch.save(model.state_dict(), folder / f"{stem}.pt")
        names.append(str(folder / f"{stem}.pt"))
        del model
    vq = folder / "vq.safetensors"
    save_checkpoint(VQModel(VQConfig(ch=32, z_channels=64)), vq)
    store = ModelStore(Pipeline.random(), extra=names, tokenizer=str(vq))
    pool = ThreadPoolExecutor(6)

    def request(name):
        store.get(name).generate([1], steps=2, grid=(4, 4))

    readings = []
    for i in range(switches):
        list(pool.map(request, [names[i % 2]] * 4))  # a switch, and requests on that model in worker threads
        readings.append(rss())
    sizes = {Path(n).name: Path(n).stat().st_size for n in names}
    print(json.dumps({"rss": readings, "sizes": sizes, "vq": vq.stat().st_size}))
""")


@pytest.mark.slow  # a subprocess that writes and loads checkpoints of about 100 MB, many times
def test_switching_models_keeps_memory_within_one_model_of_the_first_load(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's defaults, as a plain process
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), "12"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    first, last, peak = out["rss"][0], out["rss"][-1], max(out["rss"])
    # One model in memory: its weights in the fast dtype plus their prepacked copy (about the size
    # of the float32 file) and its tokenizer.
    one_model = max(out["sizes"].values()) + out["vq"]
    assert last - first <= one_model, (out["rss"], one_model)
    assert peak - first <= 1.5 * one_model, (out["rss"], one_model)


@pytest.mark.slow  # over 0.6 s: the fast tier stays under a minute
def test_a_load_does_not_block_users_of_models_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """While one session loads a released model (held on an event), another session's model that
    is already in memory is handed out at once, and a third asking for the loading model waits."""
    import arpg.store as store_module

    first = Pipeline.random()
    other = Pipeline.random(seed=1)
    other.name = "other"
    loading, release = threading.Event(), threading.Event()

    def slow_load(spec: str, *args: object, **kwargs: object) -> Pipeline:
        loading.set()
        assert release.wait(60), "the test never released the load"
        pipe = Pipeline.random(seed=2)
        pipe.name = spec
        return pipe

    monkeypatch.setattr(store_module, "load_pipeline", slow_load)
    store = ModelStore(first, extra=["big.pt"], shipped=lambda: other)
    store.get(store_module.SHIPPED_NAME)  # resident from now on
    got: dict[str, Pipeline] = {}
    loader = threading.Thread(target=lambda: got.update(big=store.get("big.pt")))
    loader.start()
    assert loading.wait(60)
    served = threading.Event()

    def cached() -> None:
        got["cached"] = store.get(store_module.SHIPPED_NAME)
        served.set()

    threading.Thread(target=cached).start()
    served_during_load = served.wait(30)  # a failsafe only: it is served at once, or never before the release
    release.set()
    loader.join(60)
    assert served_during_load, "a model in memory waited for another model's load"
    assert got["cached"] is other and got["big"].name == "big.pt"
    assert store.get("big.pt") is got["big"] and store.resident() == [first.name, store_module.SHIPPED_NAME, "big.pt"]
