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
from ..models.experts import Experts
from .spec import COSMOS, EXPERTS, QWEN25_VL_7B, UMT5_XXL, PlanSpec


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
    """(the base's network on meta with the student and fake adapters, Adapters): a WanTransformer3DModel, a
    two-expert base's Experts (both experts, as the engine holds them) or Cosmos' CosmosFlowTransformer."""
    config = spec.configs()[0]
    if spec.base in COSMOS:
        from ..models.cosmos import CosmosFlowTransformer  # diffusers' Cosmos classes: only for a Cosmos plan

        transformer = _on_meta(lambda: CosmosFlowTransformer(**config).project_prompts_once(), dtype)
        networks = [transformer]
    elif spec.base in EXPERTS:
        networks = [_on_meta(lambda: WanTransformer3DModel(**config), dtype) for _ in range(2)]
        transformer = _PlannedExperts(*networks, boundary_ratio=EXPERTS[spec.base])
    else:
        transformer = _on_meta(lambda: WanTransformer3DModel(**config), dtype)
        networks = [transformer]
    adapters = Adapters(transformer, spec.rank)
    adapters.keep_float32()
    if spec.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
        for network in networks:
            network._gradient_checkpointing_func = reentrant_checkpoint
    return transformer, adapters


class _PlannedExperts(Experts):
    """The engine's Experts, both experts on the device as the engine holds them, whose forward runs the
    low-noise expert: every planned stage is at time 0.5, under both releases' boundary, and choosing the
    expert from the time reads data, which fake tensors do not hold. The two experts share one config, so
    either's forward costs the same."""

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict: bool = True, **kwargs):
        return self.transformer_2(hidden_states, timestep, encoder_hidden_states, return_dict=return_dict, **kwargs)


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
    """UMT5-XXL's encoder (every Wan base's), Qwen2.5-VL-7B (Cosmos'), or the folder's own text encoder config."""
    if spec.base in COSMOS:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration  # only for a Cosmos plan

        return _on_meta(lambda: Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**QWEN25_VL_7B)), dtype)
    folder = Path(spec.base).expanduser() / "text_encoder" / "config.json"
    values = UMT5_XXL
    if folder.is_file():
        values = {k: v for k, v in json.loads(folder.read_text()).items() if not k.startswith("_")}
    config = UMT5Config(**values)
    return _on_meta(lambda: UMT5EncoderModel(config), dtype)
