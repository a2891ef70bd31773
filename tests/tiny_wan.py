"""A tiny random Wan2.1 text-to-video pipeline of the real classes, for tests of the real-model path."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_text():
    """The tiny tokenizer (the words the tests' prompts use) and its random 32-wide text encoder."""
    from engine.shapes.text import build_text_encoder, build_tokenizer

    tokenizer = build_tokenizer(["a", "red", "circle", "moving", "left", "cat", "dog"], model_max_length=32)
    return tokenizer, build_text_encoder(len(tokenizer), d_model=32, seed=0)


def tiny_vae(**kw):
    """A random AutoencoderKLWan of base_dim 8 and one block per level, `kw` (z_dim, latents' statistics, Wan2.2's
    residual layout) added."""
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(
        base_dim=8, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True], **kw
    )


def tiny_transformer(in_channels: int = 4, out_channels: int = 4, num_layers: int = 2):
    """A random WanTransformer3DModel of 2 layers (num_layers) of 2 heads of 8, for text of width 32 (tiny_text's)."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=in_channels,
        out_channels=out_channels,
        text_dim=32,
        freq_dim=16,
        ffn_dim=32,
        num_layers=num_layers,
        rope_max_seq_len=32,
    )


def save_tiny_wan(folder: Path) -> Path:
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

    torch.manual_seed(0)
    tokenizer, text_encoder = tiny_text()
    vae = tiny_vae(z_dim=4, latents_mean=[0.1, -0.2, 0.0, 0.3], latents_std=[1.5, 0.8, 1.0, 2.0])
    transformer = tiny_transformer(4)
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        transformer=transformer,
    )
    pipe.save_pretrained(folder)
    return folder


def save_tiny_wan_i2v(folder: Path) -> Path:
    """The same tiny pipeline as WanImageToVideoPipeline (Wan2.1's channel concatenation, no image
    encoder): its transformer takes 4 latent + 4 mask + 4 condition channels, random weights throughout."""
    from diffusers import WanImageToVideoPipeline, WanPipeline

    t2v = WanPipeline.from_pretrained(save_tiny_wan(folder))
    torch.manual_seed(1)
    transformer = tiny_transformer(12)
    pipe = WanImageToVideoPipeline(
        tokenizer=t2v.tokenizer,
        text_encoder=t2v.text_encoder,
        vae=t2v.vae,
        scheduler=t2v.scheduler,
        transformer=transformer,
    )
    for stale in folder.iterdir():  # the T2V folder's files are replaced by the I2V pipeline's
        if stale.is_file():
            stale.unlink()
    pipe.save_pretrained(folder)
    return folder


A14B_BOUNDARY = {"t2v": 0.875, "i2v": 0.9}  # Wan2.2-T2V-A14B's and I2V-A14B's boundary_ratio


def save_tiny_wan22_a14b(folder: Path, task: str = "t2v") -> Path:
    """A tiny random two-expert pipeline of the real classes, as Wan2.2-A14B is laid out: `transformer` (high
    noise) and `transformer_2` (low noise) of one config, switched at the release's boundary_ratio; task
    "i2v": WanImageToVideoPipeline with Wan2.1's channel concatenation (no image encoder, as A14B)."""
    from diffusers import WanImageToVideoPipeline, WanPipeline

    t2v = WanPipeline.from_pretrained(save_tiny_wan(folder))
    experts = []
    for seed in (2, 3):  # two different random experts, so a wrong route changes the output
        torch.manual_seed(seed)
        experts.append(tiny_transformer(12 if task == "i2v" else 4))
    parts = dict(tokenizer=t2v.tokenizer, text_encoder=t2v.text_encoder, vae=t2v.vae, scheduler=t2v.scheduler)
    pipeline = WanImageToVideoPipeline if task == "i2v" else WanPipeline
    pipe = pipeline(**parts, transformer=experts[0], transformer_2=experts[1], boundary_ratio=A14B_BOUNDARY[task])
    for stale in folder.iterdir():  # the one-transformer folder's files are replaced by the two-expert pipeline's
        if stale.is_file():
            stale.unlink()
    pipe.save_pretrained(folder)
    return folder


I2V_SHAPE = {"num_frames": 5, "height": 16, "width": 16}  # the tiny I2V's smallest video: 4k+1 frames, 16-px multiples


def save_small_i2v(folder: Path) -> Path:
    """The tiny I2V pipeline with a dfd_studio.json naming its smallest video, so the studio and the
    samplers make 5 frames of 16 x 16 by default."""
    import json

    save_tiny_wan_i2v(folder)
    (folder / "dfd_studio.json").write_text(json.dumps({**I2V_SHAPE, "fps": 16}))
    return folder


def save_captioned_clips(folder: Path) -> Path:
    """Three random captioned clips (12 frames of 40 x 48 at 8 fps): distillation data of the real-data path."""
    import numpy as np

    from engine.media.video import write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, caption in enumerate(["a red circle moving left", "a cat", "a dog moving left"]):
        write_mp4(folder / f"clip{i}.mp4", rng.integers(0, 255, (12, 40, 48, 3), dtype=np.uint8), fps=8)
        (folder / f"clip{i}.txt").write_text(caption)
    return folder


def train_tiny_i2v_student(base: Path, data: Path, out: Path) -> Path:
    """A 2-step DMD2 image-to-video student of `base` (one student update, so its LoRA is not zero)."""
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller

    cfg = DistillConfig(
        base=str(base),
        data=str(data),
        task="i2v",
        steps=2,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        checkpoint_every=2,
        seed=3,
        **I2V_SHAPE,
    )
    return Distiller(cfg, out).train()


def save_tiny_wan22_ti2v(folder: Path) -> Path:
    """A tiny random Wan2.2-TI2V pipeline of the real classes: WanImageToVideoPipeline with
    expand_timesteps (the given frame replaces the first latent frame), a transformer of in_channels = z,
    and Wan2.2's residual VAE (is_residual, 2 x 2 pixel patches in 12 channels, spatial factor 16),
    scaled down (z_dim 8, base_dim 8)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline

    torch.manual_seed(0)
    tokenizer, text_encoder = tiny_text()
    z = 8
    vae = tiny_vae(
        decoder_base_dim=8,
        z_dim=z,
        latents_mean=[0.1 * (i - 4) for i in range(z)],
        latents_std=[1.0 + 0.1 * i for i in range(z)],
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        scale_factor_temporal=4,
        scale_factor_spatial=16,
    )
    transformer = tiny_transformer(z, out_channels=z)
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        transformer=transformer,
        expand_timesteps=True,
    )
    pipe.save_pretrained(folder)
    return folder


def each_experts_student_moved(pipe, out):
    """The run's two LoRA files load through diffusers' own loader, and each expert's student moved off zero
    (lora_B starts at zero)."""
    from engine.models.experts import LOW_NOISE_LORA_FILE
    from engine.models.students import LORA_FILE

    pipe.load_lora_weights(str(out), weight_name=LORA_FILE, adapter_name="student")
    pipe.load_lora_weights(
        str(out), weight_name=LOW_NOISE_LORA_FILE, adapter_name="student", load_into_transformer_2=True
    )
    for expert in (pipe.transformer, pipe.transformer_2):
        b = [p for n, p in expert.named_parameters() if "lora_B" in n]
        assert b and any(p.abs().max() > 0 for p in b)
