"""Training on several processes (GPUs, or CPU cores) with DistributedDataParallel.

Introduced in the README's "When one machine is not enough" section. The same training
script runs alone or under a launcher, which starts one process per GPU and tells each
its rank through environment variables:

    torchrun --nproc_per_node 4 train.py           # or: accelerate launch train.py

Each process builds the model and data as usual, then::

    dist = setup_distributed(runtime)                 # joins the group; a no-op when alone
    model = wrap(model, runtime, dist)                # DistributedDataParallel
    loader = make_loader(..., num_replicas=dist.world_size, rank=dist.rank)
    fit(model, loader, ...)                           # the same loop

Every process computes gradients on its own shard of each batch; DDP averages them, so
N processes with batch B take the same steps as one process with batch N x B. Only the
main process (rank 0) writes checkpoints and prints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["Distributed", "all_mean", "barrier", "cleanup", "is_main", "setup_distributed", "unwrap", "wrap"]


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(runtime) -> Distributed:
    """Join the process group that torchrun / accelerate launch set up (gloo on CPU, NCCL on GPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if runtime.device == "cuda":
        torch.cuda.set_device(local_rank)
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if runtime.device == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank)


def wrap(model, runtime, dist: Distributed):
    """The model in DistributedDataParallel when there are several processes, unchanged otherwise."""
    model = model.to(runtime.device)
    if dist.world_size == 1:
        return model
    device_ids = [dist.local_rank] if runtime.device == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model):
    """The model inside a DistributedDataParallel wrapper (for saving, evaluating, generating)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def is_main() -> bool:
    return not tdist.is_initialized() or tdist.get_rank() == 0


def barrier() -> None:
    if tdist.is_initialized():
        tdist.barrier()


def all_mean(total: float, count: int) -> float:
    """Mean of a quantity summed over all processes (e.g. the training loss of an epoch)."""
    if tdist.is_initialized():
        device = "cuda" if tdist.get_backend() == "nccl" else "cpu"
        t = torch.tensor([total, count], dtype=torch.float64, device=device)
        tdist.all_reduce(t)
        total, count = t.tolist()
    return total / max(count, 1)


def cleanup() -> None:
    if tdist.is_initialized():
        tdist.destroy_process_group()
