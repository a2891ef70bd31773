"""Bases with random weights at the real configs (Wan2.1-T2V-1.3B and its I2V widening, Wan2.2-TI2V-5B,
Wan2.2-A14B's two experts): for speed and memory figures where the real weights cannot be downloaded
(`--base wan2.1-1.3b-random` in `engine bench`, scripts/gpu_check.sh), never for samples anyone looks at."""

from __future__ import annotations

import torch

from ..shapes.text import build_text_encoder, build_tokenizer
from .base import BaseModel
from .conditioning import image_to_video_pipeline
from .names import BASE_RECIPES, RANDOM_MODELS, RANDOM_TI2V, WAN_DEFAULTS

# Wan2.1-T2V-1.3B's transformer config (the Diffusers release), for timing with random weights where
# the real ones cannot be downloaded: `--base wan2.1-1.3b-random` in `engine bench`.
WAN_1_3B_TRANSFORMER = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=12,
    attention_head_dim=128,
    in_channels=16,
    out_channels=16,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=8960,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)


def random_wan_1_3b(device: str, dtype: torch.dtype, seed: int = 0, task: str = "t2v") -> BaseModel:
    """Wan2.1-T2V-1.3B's transformer and VAE with random weights, for speed and memory figures only (task
    i2v: its patch embedding widened to take the first frame's mask and latents, 36 input channels).
    The text encoder is a small random UMT5 with Wan's 4096-wide, 512-token output (UMT5-XXL runs once
    per prompt and is released after the embeddings are cached, so it does not enter the timings)."""
    # diffusers' pipelines: only when a model is built or loaded
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    torch.manual_seed(seed)
    with torch.device(device):
        transformer = WanTransformer3DModel(**WAN_1_3B_TRANSFORMER).to(dtype)
        vae = AutoencoderKLWan().to(dtype)  # the default config is Wan2.1's VAE
    tokenizer = build_tokenizer(["a", "video"], model_max_length=WAN_DEFAULTS["text_len"])
    text_encoder = build_text_encoder(len(tokenizer), d_model=4096, seed=seed, num_layers=1, d_ff=256).to(device, dtype)
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

    config = dict(WAN_1_3B_TRANSFORMER, num_attention_heads=40, ffn_dim=13824, num_layers=num_layers)
    torch.manual_seed(seed)
    with torch.device(device):
        experts = [WanTransformer3DModel(**config).to(dtype) for _ in range(2)]
        vae = AutoencoderKLWan().to(dtype)
    tokenizer = build_tokenizer(["a", "video"], model_max_length=WAN_DEFAULTS["text_len"])
    text_encoder = build_text_encoder(len(tokenizer), d_model=4096, seed=seed, num_layers=1, d_ff=256).to(device, dtype)
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


# Wan2.2-TI2V-5B's transformer and VAE, from wan/configs/wan_ti2v_5B.py and wan/modules/vae2_2.py of
# github.com/Wan-Video/Wan2.2 (dim 3072 = 24 heads x 128, ffn 14336, 30 layers, 48 latent channels, patch
# (1, 2, 2); VAE c_dim 160, dec_dim 256, z_dim 48, stride (4, 16, 16), 2 x 2 pixel patches): the same numbers
# as engine/plan/spec.py's WAN_5B and WAN22_VAE, typed here because models sits below plan.
WAN22_5B_TRANSFORMER = dict(
    WAN_1_3B_TRANSFORMER, num_attention_heads=24, in_channels=48, out_channels=48, ffn_dim=14336
)
WAN22_VAE = dict(
    base_dim=160,
    decoder_base_dim=256,
    z_dim=48,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    temperal_downsample=[False, True, True],
    is_residual=True,
    in_channels=12,
    out_channels=12,
    patch_size=2,
    scale_factor_spatial=16,
    scale_factor_temporal=4,
    latents_mean=[0.0] * 48,  # the real statistics do not matter to random weights; 48 of them are needed
    latents_std=[1.0] * 48,
)


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
        transformer = WanTransformer3DModel(**WAN22_5B_TRANSFORMER).to(dtype)
        vae = AutoencoderKLWan(**WAN22_VAE).to(dtype)
    tokenizer = build_tokenizer(["a", "video"], model_max_length=WAN_DEFAULTS["text_len"])
    text_encoder = build_text_encoder(len(tokenizer), d_model=4096, seed=seed, num_layers=1, d_ff=256).to(device, dtype)
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
