"""Processes for ``sample-many``: this process's rank, world size and device under torchrun."""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .devices import resolve_device

log = logging.getLogger(__name__)

BARRIER_TIMEOUT = datetime.timedelta(hours=1)


@dataclass
class DistEnv:
    """This process's place in the job (from torchrun's environment variables)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def initialized(self) -> bool:
        """True when this process has joined a process group of several ranks."""
        return self.world > 1 and dist.is_available() and dist.is_initialized()

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for alone)."""
        if self.initialized:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def close(self) -> None:
        """Leave the process group."""
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
    want = resolve_device(device)
    if want.type == "cuda":
        index = want.index if want.index is not None else local
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local} needs cuda:{index} but this node has "
                f"{torch.cuda.device_count()} CUDA device(s); lower --nproc_per_node"
            )
        want = torch.device("cuda", index)
        torch.cuda.set_device(want)
    env = DistEnv(rank, world, local, want)
    if world > 1:
        backend = "nccl" if want.type == "cuda" else "gloo"
        kw = {"device_id": want} if want.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=BARRIER_TIMEOUT, **kw)
        log.info("rank %d of %d on %s (%s)", rank, world, want, backend)
    return env
