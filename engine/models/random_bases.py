"""Bases with random weights at the real configs (Wan2.1-T2V-1.3B and its I2V widening, Wan2.2-TI2V-5B,
Wan2.2-A14B's two experts): for speed and memory figures where the real weights cannot be downloaded
(`--base wan2.1-1.3b-random` in `engine bench`, scripts/gpu_check.sh), never for samples anyone looks at."""

from __future__ import annotations

import torch

from ..shapes.text import build_text_encoder, build_tokenizer
from .base import BaseModel
from .conditioning import image_to_video_pipeline
from .configs import WAN22_VAE, WAN_1_3B, WAN_5B, WAN_14B
from .names import BASE_RECIPES, RANDOM_MODELS, RANDOM_TI2V, WAN_DEFAULTS


def random_wan_1_3b(device: str, dtype: torch.dtype, seed: int = 0, task: str = "t2v") -> BaseModel:
    """Wan2.1-T2V-1.3B's transformer and VAE with random weights, for speed and memory figures only (task
    i2v: its patch embedding widened to take the first frame's mask and latents, 36 input channels).
    The text encoder is a small random UMT5 with Wan's 4096-wide, 512-token output (UMT5-XXL runs once
    per prompt and is released after the embeddings are cached, so it does not enter the timings)."""
    # diffusers' pipelines: only when a model is built or loaded
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(seed)
    with torch.device(device):
        transformer = WanTransformer3DModel(**WAN_1_3B).to(dtype)
        vae = AutoencoderKLWan().to(dtype)  # the default config is Wan2.1's VAE
    tokenizer, text_encoder = _random_text_encoder(device, dtype, seed)
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    if task == "i2v":
        pipe = image_to_video_pipeline(pipe)
    pipe.set_progress_bar_config(disable=True)
    source = next(name for name, kind in RANDOM_MODELS.items() if kind == task and name not in RANDOM_TI2V)
    return BaseModel(pipe=pipe, source=source, meta={"random_weights": True})


def random_wan22_a14b(device: str, dtype: torch.dtype, num_layers: int = 40, seed: int = 0) -> BaseModel:
    """Wan2.2-T2V-A14B's two experts with random weights at the real width (plan/spec's 14B config, which is
    A14B's per expert) and `num_layers` of its 40 blocks each, switched at its boundary 0.875, with Wan2.1's
    VAE and a small random text encoder: for speed and memory figures of the two-expert path only
    (scripts/gpu_check.sh --a14b; a block's figures times 40 / num_layers give the whole expert's)."""
    # diffusers' pipelines: only when a model is built or loaded
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    config = dict(WAN_14B, num_layers=num_layers)
    torch.manual_seed(seed)
    with torch.device(device):
        experts = [WanTransformer3DModel(**config).to(dtype) for _ in range(2)]
        vae = AutoencoderKLWan().to(dtype)
    tokenizer, text_encoder = _random_text_encoder(device, dtype, seed)
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=experts[0],
        transformer_2=experts[1],
        boundary_ratio=0.875,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=12.0),
    )
    pipe.set_progress_bar_config(disable=True)
    meta = {"random_weights": True, **BASE_RECIPES["Wan-AI/Wan2.2-T2V-A14B-Diffusers"]}
    return BaseModel(pipe=pipe, source=f"wan2.2-a14b-random-{num_layers}-blocks", meta=meta)


# Random weights need no real latent statistics, but the VAE wants 48 of them.
WAN22_VAE_RANDOM = dict(WAN22_VAE, latents_mean=[0.0] * 48, latents_std=[1.0] * 48)


def random_wan22_ti2v_5b(device: str, dtype: torch.dtype, seed: int = 0) -> BaseModel:
    """Wan2.2-TI2V-5B's transformer and VAE with random weights, for speed and memory figures only: a
    WanImageToVideoPipeline with expand_timesteps (frame replacement), its scheduler's shift 5, the same
    small random text encoder as random_wan_1_3b."""
    # diffusers' pipelines: only when a model is built or loaded
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(seed)
    with torch.device(device):
        transformer = WanTransformer3DModel(**WAN_5B).to(dtype)
        vae = AutoencoderKLWan(**WAN22_VAE_RANDOM).to(dtype)
    tokenizer, text_encoder = _random_text_encoder(device, dtype, seed)
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        expand_timesteps=True,
    )
    pipe.set_progress_bar_config(disable=True)
    return BaseModel(pipe=pipe, source=RANDOM_TI2V[0], meta={"random_weights": True})


def _random_text_encoder(device: str, dtype: torch.dtype, seed: int):
    """A small random UMT5 with Wan's 4096-wide, 512-token output: UMT5-XXL runs once per prompt and is
    released after the embeddings are cached, so it does not enter the timings."""
    tokenizer = build_tokenizer(["a", "video"], model_max_length=WAN_DEFAULTS["text_len"])
    return tokenizer, build_text_encoder(len(tokenizer), d_model=4096, seed=seed, num_layers=1, d_ff=256).to(
        device, dtype
    )
