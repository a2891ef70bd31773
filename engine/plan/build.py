"""The base's networks at their real configs with no weights: each is built on the meta device (no memory,
no initialisation), the LoRA adapters are put on the transformer as the trainer puts them
(engine.distill.adapters), and every parameter and buffer is then replaced by a fake CPU tensor of the same
shape and dtype, so that ops run through FakeTensorMode: shapes and storages, no data, no compute."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from torch.utils.checkpoint import checkpoint
from transformers import UMT5Config, UMT5EncoderModel

from ..distill.adapters import Adapters
from .spec import UMT5_XXL, PlanSpec


def to_fake(module: torch.nn.Module) -> torch.nn.Module:
    """Replace the meta parameters and buffers of `module` by fake ones (call inside FakeTensorMode).
    Direct assignment: Module.to() would swap fake tensors, which FakeTensorMode's weak references forbid."""
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is not None:
                sub._parameters[name] = torch.nn.Parameter(
                    torch.empty(p.shape, dtype=p.dtype), requires_grad=p.requires_grad
                )
        for name, b in list(sub._buffers.items()):
            if b is not None:
                sub._buffers[name] = torch.empty(b.shape, dtype=b.dtype)
    return module


def _on_meta(build, dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("meta"):
            return build()
    finally:
        torch.set_default_dtype(previous)


def transformer_with_adapters(spec: PlanSpec, dtype: torch.dtype):
    """(WanTransformer3DModel on meta with the student and fake adapters, Adapters)."""
    config = spec.configs()[0]
    transformer = _on_meta(lambda: WanTransformer3DModel(**config), dtype)
    adapters = Adapters(transformer, spec.rank)
    adapters.keep_float32()
    if spec.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
        transformer._gradient_checkpointing_func = reentrant_checkpoint
    return transformer, adapters


def reentrant_checkpoint(block, *args):
    """Gradient checkpointing for the plan: the reentrant form, whose recomputed block is freed as soon as
    its own backward ends. The non-reentrant form that diffusers uses holds the same tensors on a GPU, but
    on fake tensors its recomputed blocks stayed counted until the whole backward ended (1.3B at
    81x480x832: 101 GiB planned for the fake-score update). The first block's input is made to require
    grad, as the reentrant form needs one such input for the LoRA weights inside to get gradients."""
    if torch.is_grad_enabled() and not any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
        args = (args[0].detach().requires_grad_(), *args[1:])
    return checkpoint(block, *args, use_reentrant=True)


def vae(spec: PlanSpec, dtype: torch.dtype):
    """Wan's VAE at the base's config, or None where the base's autoencoder is not Wan's."""
    config = spec.configs()[1]
    try:
        return _on_meta(lambda: AutoencoderKLWan(**(config or {})), dtype)
    except TypeError:  # another autoencoder class (the built-in shapes world's)
        return None


def text_encoder(spec: PlanSpec, dtype: torch.dtype):
    """UMT5-XXL's encoder (every Wan base's), or the folder's own text encoder config."""
    folder = Path(spec.base).expanduser() / "text_encoder" / "config.json"
    values = UMT5_XXL
    if folder.is_file():
        values = {k: v for k, v in json.loads(folder.read_text()).items() if not k.startswith("_")}
    config = UMT5Config(**values)
    return _on_meta(lambda: UMT5EncoderModel(config), dtype)
