"""The int8 frozen base's Linear layers as an autograd function that keeps the int8 weight for the backward.

torchao's Int8Tensor computes its linear by dequantizing the weight and multiplying, so autograd saves the
dequantized full-precision weight for the input's gradient: every Linear a forward with gradient passes keeps a
bf16 copy of its weight until the backward, which gives back the int8 saving (a whole network's worth without
gradient checkpointing, a block's worth with it). Here the forward runs torchao's linear and saves the int8
weight itself; the backward dequantizes it again, one layer at a time. The base is frozen, so no gradient is
computed for the weight or the bias."""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F


class _Int8Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(weight)  # the Int8Tensor: 1 byte per parameter, not a dequantized copy
        ctx.x_dtype = x.dtype
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        (weight,) = ctx.saved_tensors
        if weight.block_size[-1] == weight.qdata.shape[-1]:  # one scale per output row, as the forward uses it
            scaled = grad_out * weight.scale.to(grad_out.dtype).flatten()
            grad_x = scaled @ weight.qdata.to(grad_out.dtype)  # the one temporary: this layer's weight, cast
        else:
            grad_x = grad_out @ weight.dequantize().to(grad_out.dtype)
        return grad_x.to(ctx.x_dtype), None, None


def _forward(self, x):
    return _Int8Linear.apply(x, self.weight, self.bias)


def keep_int8_for_backward(module: torch.nn.Module) -> None:
    """Route every Linear of `module` whose weight is an int8 tensor (a torchao Int8Tensor) through _Int8Linear.
    Set on the Linear itself, so the LoRA layer that peft wraps around it later calls it."""
    for m in module.modules():
        if isinstance(m, torch.nn.Linear) and hasattr(m.weight, "dequantize"):
            m.forward = types.MethodType(_forward, m)
