"""Process-group setup for `torchrun` (env://): gloo on CPU, nccl on GPU; a single process needs nothing."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from resnet3d.errors import Resnet3dError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank, world size and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone logs, shows progress and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' → the local GPU when CUDA is available, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise Resnet3dError("run.device: cuda was asked for but torch sees no CUDA device")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


_GROUPS = itertools.count()  # process groups this process has joined: the same sequence on every rank


def setup(device_name: str) -> DistContext:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR...).

    Each group this process joins gets its own key prefix in torchrun's store, which outlives a group: a second
    group under the same keys (a second `train()` in one torchrun, the study's next cell) would read the first
    one's stale addresses and hang.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        store, rank, world_size = next(dist.rendezvous("env://"))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                                store=dist.PrefixStore(f"resnet3d/group{next(_GROUPS)}/", store))
    return DistContext(rank, world_size, local_rank, device)


def teardown(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], ctx: DistContext) -> list[float]:
    """Element-wise sum of a short list of numbers over all processes (float64, one collective)."""
    if not ctx.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_buffers(module: torch.nn.Module, ctx: DistContext) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics), the ones rank 0 saves.

    DDP hands rank 0's buffers to all ranks at the start of each training forward, and then each rank updates
    them with its own batch, so after the last step they differ by that step; validating with them would mix
    numbers from models that are never saved.
    """
    if ctx.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
