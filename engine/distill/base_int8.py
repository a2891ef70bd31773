"""The frozen base's transformer-block Linear weights stored in int8 (torchao's weight-only quantization, one
scale per output row), before the LoRA adapters are added: peft then wraps each quantized Linear in its
TorchaoLoraLinear, so the adapters train in full precision on a base that holds about half the bytes of bf16
(DistillConfig.base_int8; the plan counts the weights that way)."""

from __future__ import annotations

import torch

from ..models.experts import networks_of
from .int8_linear import keep_int8_for_backward

INT8_SCALE_BYTES = 4  # torchao 0.18's Int8WeightOnlyConfig keeps one fp32 scale per output row, whatever the dtype


def check_base_int8(world: int) -> None:
    """Refuse, before any work, a run over several processes, not tried with an int8 base (ValueError, one
    line)."""
    if world > 1:
        raise ValueError(
            f"base_int8: a run over {world} processes was not tried with an int8 base (DDP or FSDP2 over "
            "torchao's Int8Tensor); run on one GPU or turn base_int8 off"
        )


def quantize_blocks(transformer) -> int:
    """Store every Linear weight inside the transformer's blocks as a torchao Int8Tensor, in both experts of a
    two-expert base (the patch embedding, the condition embedders and the output head stay as they are: small,
    and where precision matters most); returns how many Linear layers were quantized."""
    # Imported here: torchao loads its kernels' libraries at import, which only a run with the option needs.
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    count = 0
    for network in networks_of(transformer):
        blocks = getattr(network, "blocks", None)
        if blocks is None:
            raise ValueError(f"base_int8: {type(network).__name__} has no list of transformer blocks to quantize")
        count += sum(isinstance(m, torch.nn.Linear) for m in blocks.modules())
        quantize_(blocks, Int8WeightOnlyConfig(), filter_fn=lambda m, _fqn: isinstance(m, torch.nn.Linear))
        keep_int8_for_backward(blocks)  # else autograd keeps each Linear's dequantized weight until the backward
    return count
