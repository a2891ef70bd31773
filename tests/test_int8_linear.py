"""engine/distill/int8_linear.py: an int8 Linear of the frozen base keeps its int8 weight for the backward,
not a dequantized full-precision copy, and gives the input the gradient torchao's own linear gives."""

from __future__ import annotations

import pytest
import torch

from engine.distill.base_int8 import quantize_blocks


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(256, 512), torch.nn.Linear(512, 256)])

    def forward(self, x):
        for block in self.blocks:
            x = torch.relu(block(x))
        return x


def _saved_while(fn):
    """The tensors autograd saves for the backward while fn runs."""
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, saved


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_backward_keeps_the_int8_weight_and_gives_torchaos_gradient(dtype):
    torch.manual_seed(0)
    net = _Net().to(dtype)
    assert quantize_blocks(net) == 2
    x = torch.randn(4, 256, dtype=dtype, requires_grad=True)
    out, saved = _saved_while(lambda: net(x))
    shapes = {tuple(b.weight.shape) for b in net.blocks}
    dense_copies = [t for t in saved if type(t) is torch.Tensor and t.is_floating_point() and tuple(t.shape) in shapes]
    assert dense_copies == [], [tuple(t.shape) for t in dense_copies]
    out.square().sum().backward()

    # torchao's own linear (which saves the dequantized weight) as the reference
    x_ref = x.detach().clone().requires_grad_(True)
    h = x_ref
    for block in net.blocks:
        h = torch.relu(torch.nn.functional.linear(h, block.weight.dequantize().to(dtype), block.bias))
    h.square().sum().backward()
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    assert torch.allclose(out.float(), h.float(), rtol=tol, atol=tol)
    assert torch.allclose(x.grad.float(), x_ref.grad.float(), rtol=tol, atol=tol * x_ref.grad.abs().max().item())
    assert x.grad.dtype == dtype
