"""This process's place in a distillation run, through accelerate's Accelerator: one process, or several
under `torchrun` / `accelerate launch -m engine distill ...` (DDP: every process holds the whole frozen base).

The student and the fake score are two LoRA adapters on one frozen transformer, trained in alternating
updates (peft flips requires_grad so that only the active adapter trains). DDP hooks the parameters that
require grad when it wraps a module and, with find_unused_parameters=False, expects each of them to get a
gradient in every backward that follows a forward through it. So each adapter gets its own DDP wrapper,
built while that adapter is the active one, around a thin view of the shared transformer: an update
reduces exactly its own adapter's gradients, in buckets overlapped with the backward, with no graph search
per forward. One wrapper over both adapters would need find_unused_parameters=True (a graph traversal per
forward, and the idle adapter's buckets all-reduced as zeros every step); no_sync plus a hand-made reduce
would lose the overlap. Forwards that carry no gradient (the teacher, the other adapter, sampling) call the
transformer itself.

Randomness is shared: every process draws the whole global batch's data and noise from the same streams
and keeps its own slice (`shard`), so N processes of batch b make the update one process of batch N*b
makes, up to the order of floating-point sums, and all processes hold identical adapters and optimizer
states (rank 0's checkpoint is the run's).

Sharding the frozen base (FSDP2, engine/distill/sharding.py) is asked for by the run's shard_base setting or
by an accelerate FSDP config (`accelerate launch --config_file configs/fsdp.yaml`). accelerate's own FSDP
preparation is not used: it wraps one model with one optimizer, while here two adapters share one sharded
base; and accelerate selects FSDP only on accelerators, while the engine's sharding also runs on CPUs
(the tests, over gloo). The engine shards the blocks itself, keeps the adapters whole, and wraps each
adapter's view in a DDP that reduces only the LoRA gradients. A sharded base runs every forward as a
collective, so all processes run the previews' sampling too (`together`); only rank 0 writes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc

import torch

from . import sharding


class _View(torch.nn.Module):
    """The shared transformer as one adapter's network: a module of its own, so DDP can wrap it per adapter
    (and accelerate's autocast patches this view's forward, not the transformer's)."""

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, **inputs):
        return self.transformer(**inputs)


class _Trained:
    """What sampling.velocity calls for an update's forward: the prepared view, and the base's
    patch_embedding (velocity reads the base's dtype from it; DDP does not pass attributes through)."""

    def __init__(self, prepared, transformer):
        self.prepared = prepared
        self.patch_embedding = getattr(transformer, "patch_embedding", None)

    def __call__(self, **inputs):
        return self.prepared(**inputs)


def _accelerator(mixed_precision: str, log_with: str | None, project_dir: str | None):
    # accelerate: only for a run through the Accelerator
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if (
        state
        and state.get("_mixed_precision", mixed_precision) != mixed_precision
        and "num_processes" in state
        and state["num_processes"] == 1
    ):
        # One process that runs several trainings (tests, the bench) may change precision between them.
        AcceleratorState._reset_state()
    # broadcast_buffers off: the transformer's buffers (rotary tables) are constants, not worth a
    # broadcast per forward.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=False, broadcast_buffers=False)
    return Accelerator(
        mixed_precision=mixed_precision,
        cpu=not torch.cuda.is_available(),
        kwargs_handlers=[ddp],
        log_with=log_with,
        project_dir=project_dir,
    )


class ProcessGroup:
    """This process's rank and device (accelerate's PartialState: a single process is rank 0 of 1), and,
    once the base is loaded, the Accelerator that trains on it."""

    def __init__(self, log_with: str | None = None, project_dir: str | None = None, shard_base: bool = False):
        from accelerate import PartialState  # accelerate: only under a multi-process launcher

        self.state = PartialState(cpu=not torch.cuda.is_available())
        self.rank = self.state.process_index
        self.world = self.state.num_processes
        self._log_with, self._project_dir, self._shard_base = log_with, project_dir, shard_base
        self.accelerator = None
        self.sharded = False  # whether the base is split over the processes (set by prepare)
        self._trained: dict[str, _Trained] = {}

    @property
    def device(self) -> str:
        return str(self.state.device)

    def start(self, base_dtype: torch.dtype):
        """The Accelerator for a base of this dtype: bf16 mixed precision (autocast forwards, fp32 adapters)
        for a bf16 base, none for an fp32 one."""
        precision = "bf16" if base_dtype == torch.bfloat16 else "no"
        self.accelerator = _accelerator(precision, self._log_with, self._project_dir)
        return self.accelerator

    # --- the networks and optimizers ------------------------------------------------------------------
    def prepare(self, adapters, optimizers: dict) -> dict:
        """Wrap each adapter's view of the transformer (DDP when there are several processes) while that
        adapter is the active one, and its optimizer; returns the prepared optimizers by adapter name."""
        plan = sharding.plan_of(self._shard_base) if self.world > 1 else None
        if plan is not None:
            sharding.shard_base(adapters.transformer, self.world, **plan)
            self.sharded = True
        prepared = {}
        previous = adapters.active
        for name, optimizer in optimizers.items():
            adapters.use(name)
            if self.sharded:  # the sharded base's own DDP (accelerate would FSDP-wrap the view again)
                view, prepared[name] = (
                    sharding.adapters_only_ddp(_View(adapters.transformer), self.state.device),
                    optimizer,
                )
            else:
                view, prepared[name] = self.accelerator.prepare(_View(adapters.transformer), optimizer)
            self._trained[name] = _Trained(view, adapters.transformer)
        adapters.use(previous)
        return prepared

    @property
    def together(self) -> bool:
        """Whether this process takes part in the previews' forwards: rank 0 alone, unless the base is
        sharded (then every forward needs every process)."""
        return self.rank == 0 or self.sharded

    def trained(self, name: str) -> _Trained:
        """The network to run for a forward whose gradient updates adapter `name`."""
        return self._trained[name]

    def accumulating(self, name: str, last: bool):
        """Around the forward and backward of one micro-batch: all but the last of an update's micro-batches
        keep their gradients local (accelerate's no_sync); the last one's backward reduces the sum."""
        if last or self.world == 1:
            return contextlib.nullcontext()
        return self.accelerator.no_sync(self._trained[name].prepared)

    def autocast(self):
        """bf16 autocast when the base is bf16 (accelerate's mixed precision), nothing otherwise."""
        return self.accelerator.autocast() if self.accelerator.native_amp else contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    def clip_grad_norm_(self, params, max_norm: float):
        return self.accelerator.clip_grad_norm_(params, max_norm)

    # --- the global batch -------------------------------------------------------------------------------
    def shard(self, x):
        """This process's rows of a global-batch tensor or list (equal slices, in rank order)."""
        if self.world == 1:
            return x
        n = len(x) // self.world
        return x[self.rank * n : (self.rank + 1) * n]

    def shard_batch(self, batch):
        """This process's rows of a global batch (a dataclass whose fields are all per-clip)."""
        if self.world == 1:
            return batch
        return dataclasses.replace(
            batch, **{f.name: self.shard(getattr(batch, f.name)) for f in dataclasses.fields(batch)}
        )

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Every process's rows of a per-sample tensor, in rank order (the global batch's)."""
        return x if self.world == 1 else self.accelerator.gather(x.contiguous())

    def mean(self, value: torch.Tensor) -> float:
        """The mean over processes of a scalar (every process gets the same number)."""
        if self.world == 1:
            return float(value)
        return float(self.accelerator.reduce(value.detach().float().reshape(1).to(self.device), "mean"))

    # --- agreement ----------------------------------------------------------------------------------------
    def fingerprints(self, params: list[torch.nn.Parameter]) -> list[float]:
        """Every rank's checksum of these parameters (all equal when the ranks trained one model)."""
        value = torch.tensor([sum(float(p.detach().double().sum()) for p in params)], dtype=torch.float64)
        if self.world == 1:
            return [float(value)]
        return [float(v) for v in self.accelerator.gather(value.to(self.device)).cpu()]

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def end(self) -> None:
        """Close the trackers and, under several processes, leave the group once all have arrived."""
        self.barrier()
        # The DDP wrappers go first, while the group is still registered. Otherwise a wrapper's reducer
        # holds the group's last reference and frees it with the GIL held; the group's destructor then waits
        # for gloo's worker thread, which waits for the GIL to free a finished collective's tensors: the
        # process never exits (measured: 3 hangs in 36 two-process CPU runs).
        self._trained.clear()
        if self.accelerator is not None:
            self.accelerator.free_memory()  # accelerate's own references to the prepared views
            gc.collect()  # a wrapper held in a reference cycle is freed now, not after the group is gone
            self.accelerator.end_training()
