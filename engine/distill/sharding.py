"""The frozen base sharded across processes (FSDP2's `fully_shard`), the two LoRA adapters kept whole.

Each WanTransformerBlock, then the transformer around them, is `fully_shard`ed over all processes: a
process holds 1/N of every frozen weight and all-gathers a block's weights just before that block runs
(freed again after its forward when reshard_after_forward, and gathered again for its backward). That is
what lets a 14B teacher (28 GB in bf16) train on GPUs that cannot hold it whole.

The LoRA parameters of both adapters are left out of the shards (`ignored_params`): every process keeps
them whole, and their gradients are averaged by one DDP wrapper per adapter, as without sharding
(engine/distill/distributed.py). Why not shard them too:
- peft flips requires_grad between the student and the fake score (and off for the teacher) after
  sharding; FSDP2 builds its unsharded parameters and reduce-scatter groups from the requires_grad it
  sees, so a sharded adapter would have to be re-registered at every switch.
- the adapters are small (rank 32 on Wan 14B: ~0.6 GB per adapter in fp32), so replicating them and
  their AdamW state costs little next to the base, and every process holds the whole student: the saved
  LoRA, the checkpoints and the resume are the single-process ones, byte for byte in format, with no
  gathered state dict to build.

Sharding needs several processes: with one there is nothing to split, and the base stays as loaded.
"""

from __future__ import annotations

import os

import torch

BLOCK_CLASSES = ("WanTransformerBlock",)  # the layers that carry nearly all of Wan's weights


def is_lora(name: str) -> bool:
    return "lora_" in name


def shard_base(
    transformer: torch.nn.Module,
    world: int,
    reshard_after_forward: bool = True,
    block_classes: tuple[str, ...] = BLOCK_CLASSES,
) -> int:
    """Shard every block of these classes, then the rest of the transformer, over `world` processes,
    leaving the LoRA parameters whole; returns how many blocks were sharded."""
    from torch.distributed.device_mesh import init_device_mesh  # FSDP: only when the base is sharded
    from torch.distributed.fsdp import fully_shard

    device = next(transformer.parameters()).device.type
    mesh = init_device_mesh(device, (world,))
    adapters = {p for n, p in transformer.named_parameters() if is_lora(n)}
    blocks = [m for m in transformer.modules() if type(m).__name__ in block_classes]
    if not blocks:
        raise ValueError(
            f"no layer of class {', '.join(block_classes)} in {type(transformer).__name__}: "
            "name the base's block class in the FSDP config (fsdp_transformer_layer_cls_to_wrap)"
        )
    for block in blocks:
        fully_shard(block, mesh=mesh, reshard_after_forward=reshard_after_forward, ignored_params=adapters)
    # The root keeps its own (small) weights gathered through the whole step: the embeddings and the
    # output head run at the start and at the end.
    fully_shard(transformer, mesh=mesh, reshard_after_forward=False, ignored_params=adapters)
    return len(blocks)


def adapters_only_ddp(view: torch.nn.Module, device: torch.device):
    """A DDP wrapper that reduces the view's LoRA gradients only: the sharded base's parameters (DTensors,
    frozen) and the buffers (constants) are left out, so DDP neither broadcasts them nor checks them."""
    from torch.nn.parallel import DistributedDataParallel  # only for a multi-process run

    view._ddp_params_and_buffers_to_ignore = [n for n, _ in view.named_parameters() if not is_lora(n)] + [
        n for n, _ in view.named_buffers()
    ]
    device_ids = [device.index or 0] if device.type == "cuda" else None
    return DistributedDataParallel(view, device_ids=device_ids, find_unused_parameters=False)


def plan_of(asked: bool, env: dict | None = None) -> dict | None:
    """Whether (and how) to shard the base: asked for by the run's shard_base setting, or by an accelerate
    FSDP config (`accelerate launch --config_file configs/fsdp.yaml`), whose block classes and
    reshard_after_forward are then used. None: every process holds the whole base.

    The FSDP config is read from the variables `accelerate launch` sets from it (ACCELERATE_USE_FSDP,
    FSDP_*), the ones accelerate's own FSDP plugin reads: so the same config file shards on CPUs too,
    where accelerate itself falls back to plain multi-process."""
    env = os.environ if env is None else env
    if env.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        names = [n.strip() for n in env.get("FSDP_TRANSFORMER_CLS_TO_WRAP", "").split(",") if n.strip()]
        # FSDP2 configs say true/false; FSDP1 configs a sharding strategy, of which SHARD_GRAD_OP keeps
        # the gathered weights from the forward to the backward.
        keep = env.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() in ("false", "shard_grad_op", "2")
        return {"block_classes": tuple(names) or BLOCK_CLASSES, "reshard_after_forward": not keep}
    if asked:
        return {"block_classes": BLOCK_CLASSES, "reshard_after_forward": True}
    return None
