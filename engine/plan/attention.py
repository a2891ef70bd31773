"""Attention as the GPU runs it, for the plan: flash / memory-efficient SDPA keeps no N x N matrix.

On fake CPU tensors torch would route scaled_dot_product_attention through whichever CPU kernel it
picks, and the math path holds softmax(QK^T) for every head: at 32k tokens that is 12 x 32k x 32k
values per block, none of which a GPU run allocates. During a plan the function is replaced by
`efficient_attention`, which allocates what the flash kernel allocates: the output and a float32
log-sum-exp per query row in the forward (both kept for the backward with q, k and v), and dq, dk, dv
plus a float32 dq accumulator in the backward. It also counts the attention's FLOPs (the fake ops
do no matmul for torch's FLOP counter to see): 4 B H Nq Nk D forward, 2.5 times that backward (the
flash backward recomputes QK^T)."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

FLOPS = {"attention": 0}


class _EfficientAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v):
        out = q.new_empty(q.shape[:-1] + v.shape[-1:])
        lse = q.new_empty(q.shape[:-1], dtype=torch.float32)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, lse = ctx.saved_tensors
        accumulator = q.new_empty(q.shape, dtype=torch.float32)  # flash's fp32 dq, freed when the kernel ends
        dq = torch.empty_like(q)
        del accumulator
        dk, dv = torch.empty_like(k), torch.empty_like(v)
        FLOPS["attention"] += 10 * q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.shape[3]
        return dq, dk, dv


def efficient_attention(
    query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False
):
    """scaled_dot_product_attention's signature, flash attention's memory; (B, H, N, D) layout."""
    # A mask (UMT5's position bias) is read by the kernel, not copied: the caller's tensor is all it costs.
    b, h, nq, d = query.shape
    FLOPS["attention"] += 4 * b * h * nq * key.shape[2] * d
    if torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value)):
        return _EfficientAttention.apply(query, key, value)
    return query.new_empty(query.shape[:-1] + value.shape[-1:])


@contextmanager
def planned_attention():
    """Route every scaled_dot_product_attention call (diffusers looks it up at call time) to
    `efficient_attention` for the duration."""
    original = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = efficient_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original
