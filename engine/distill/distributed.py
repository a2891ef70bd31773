"""This process's place in a multi-process distillation run (`accelerate launch -m engine distill ...`):
joining the group, averaging the adapters' gradients, and checking that every rank trained one model."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class ProcessGroup:
    """This process's place in a multi-process run (a single process is rank 0 of 1)."""

    rank: int = 0
    world: int = 1

    local_rank: int = 0

    @classmethod
    def detect(cls) -> "ProcessGroup":
        """Join the process group that `accelerate launch` (torchrun underneath) prepared, if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            # accelerate's PartialState leaves CPU-only runs undistributed, so join the group ourselves:
            # NCCL between GPUs, gloo between CPU processes.
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        return cls(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=local_rank)

    @property
    def device(self) -> str:
        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    def average_grads(self, params: list[torch.nn.Parameter]) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= self.world

    def fingerprints(self, params: list[torch.nn.Parameter]) -> list[float]:
        """Every rank's checksum of these parameters (all equal when the ranks trained one model)."""
        value = torch.tensor([sum(float(p.detach().double().sum()) for p in params)], dtype=torch.float64)
        if self.world == 1:
            return [float(value)]
        import torch.distributed as dist

        gathered = [torch.zeros_like(value) for _ in range(self.world)]
        dist.all_gather(gathered, value)
        return [float(g) for g in gathered]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
