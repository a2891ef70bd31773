"""A tiny random Wan2.1 text-to-video pipeline of the real classes, for tests of the real-model path."""

from __future__ import annotations

from pathlib import Path

import torch


def save_tiny_wan(folder: Path) -> Path:
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

    from engine.shapes.text import build_text_encoder, build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer(["a", "red", "circle", "moving", "left", "cat", "dog"], model_max_length=32)
    text_encoder = build_text_encoder(len(tokenizer), d_model=32, seed=0)
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.1, -0.2, 0.0, 0.3], latents_std=[1.5, 0.8, 1.0, 2.0],
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
        text_dim=32, freq_dim=16, ffn_dim=32, num_layers=2, rope_max_seq_len=32,
    )
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), transformer=transformer)
    pipe.save_pretrained(folder)
    return folder


def save_tiny_wan_i2v(folder: Path) -> Path:
    """The same tiny pipeline as WanImageToVideoPipeline (Wan2.1's channel concatenation, no image
    encoder): its transformer takes 4 latent + 4 mask + 4 condition channels, random weights throughout."""
    from diffusers import WanImageToVideoPipeline, WanPipeline, WanTransformer3DModel

    t2v = WanPipeline.from_pretrained(save_tiny_wan(folder))
    torch.manual_seed(1)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=12, out_channels=4,
        text_dim=32, freq_dim=16, ffn_dim=32, num_layers=2, rope_max_seq_len=32,
    )
    pipe = WanImageToVideoPipeline(tokenizer=t2v.tokenizer, text_encoder=t2v.text_encoder, vae=t2v.vae,
                                   scheduler=t2v.scheduler, transformer=transformer)
    for stale in folder.iterdir():  # the T2V folder's files are replaced by the I2V pipeline's
        if stale.is_file():
            stale.unlink()
    pipe.save_pretrained(folder)
    return folder
