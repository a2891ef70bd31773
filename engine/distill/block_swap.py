"""Block swap: the frozen weights of the transformer's last N blocks live in host memory and come to the
device for each of their forwards, one block at a time, so that the device holds the rest of the base plus
one swapped block (DistillConfig.block_swap; the plan shows the memory saved and the transfer time).

Why not diffusers' group offloading (diffusers.hooks.apply_group_offloading with offload_type="block_level",
the pinned diffusers 0.42): it is made for inference. It moves every parameter of a block, the LoRA
adapters' too, and with a CUDA stream it restores them from the pinned copy taken when it was applied, so
the adapters' updates would be undone at every offload; and it offloads a block as soon as its forward
returns, while the backward of a block reads the weights its forward saved (with gradient checkpointing,
those of the recomputed forward, which also returns before its backward runs).

Here only the frozen weights move (the adapters and their optimizer state stay on the device), and a
swapped block stays on the device until the next swapped block's forward starts. With gradient
checkpointing each block's backward follows its recomputed forward before the previous block's recompute
begins, so the weights a backward reads are on the device. Without it the trained forward keeps every
block's weights for the backward: block swap needs gradient checkpointing (DistillConfig checks it). An
offloaded weight points at an empty tensor, so that any use of it fails at once instead of reading stale
data. Copies come from pinned host memory on the compute stream: no overlap with compute is assumed."""

from __future__ import annotations

import contextlib

import torch


class BlockSwap:
    """Keep the frozen weights of `transformer.blocks[-blocks:]` on the host and bring each block to `device`
    when its forward starts (forward pre-hooks). `events`, when `record`: ("onload" | "offload", block index)
    in order; `loaded_bytes`: bytes brought to the device so far."""

    def __init__(self, transformer: torch.nn.Module, blocks: int, device, record: bool = False):
        blocks_list = getattr(transformer, "blocks", None) or getattr(transformer, "transformer_blocks", None)
        if not isinstance(blocks_list, torch.nn.ModuleList):  # Wan names them blocks, Cosmos transformer_blocks
            raise ValueError(f"block_swap: {type(transformer).__name__} has no list of transformer blocks to swap")
        all_blocks = list(blocks_list)
        if not 1 <= blocks <= len(all_blocks):
            raise ValueError(f"block_swap {blocks}: this base has {len(all_blocks)} transformer blocks; give 1 to that")
        self.device = torch.device(device)
        self.first = len(all_blocks) - blocks
        self.events: list[tuple[str, int]] | None = [] if record else None
        self.loaded_bytes = 0
        self.loading = contextlib.nullcontext  # the plan counts the onloaded copies as weights
        self.resident: int | None = None
        self.masters: dict[int, list[tuple[torch.nn.Parameter, torch.Tensor]]] = {}
        self.handles = []
        pin = self.device.type == "cuda"
        for i in range(self.first, len(all_blocks)):
            kept = []
            for name, p in all_blocks[i].named_parameters():
                if "lora_" in name:  # the adapters train: they stay on the device with their optimizer state
                    continue
                master = p.detach().to("cpu", copy=True)
                kept.append((p, master.pin_memory() if pin else master))
                p.data = master.new_empty(0, device=self.device)
            self.masters[i] = kept
            self.handles.append(all_blocks[i].register_forward_pre_hook(self._hook(i)))

    def _hook(self, index: int):
        def pre_forward(module, args):
            self.onload(index)

        return pre_forward

    def onload(self, index: int) -> None:
        """Block `index`'s frozen weights to the device, the swapped block there before it back to the host."""
        if self.resident == index:
            return
        if self.resident is not None:
            self.offload(self.resident)
        with self.loading():
            for p, master in self.masters[index]:
                p.data = master.to(self.device, non_blocking=True, copy=True)
                self.loaded_bytes += master.numel() * master.element_size()
        self.resident = index
        if self.events is not None:
            self.events.append(("onload", index))

    def offload(self, index: int) -> None:
        """Drop block `index`'s device copies (the host keeps the weights, which never change)."""
        for p, master in self.masters[index]:
            p.data = master.new_empty(0, device=self.device)
        if self.resident == index:
            self.resident = None
        if self.events is not None:
            self.events.append(("offload", index))

    def swapped_bytes(self) -> int:
        """Bytes of frozen weights kept on the host (one block of them is on the device at a time)."""
        return sum(m.numel() * m.element_size() for kept in self.masters.values() for _, m in kept)

    def remove(self) -> None:
        """Every swapped weight back on the device and the hooks gone."""
        for h in self.handles:
            h.remove()
        for kept in self.masters.values():
            for p, master in kept:
                p.data = master.to(self.device, copy=True)
        self.resident = None
