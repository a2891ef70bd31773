"""A tiny random Cosmos-Predict2.5 pipeline of the real classes (Cosmos2_5_PredictBasePipeline:
CosmosTransformer3DModel, AutoencoderKLWan, a Qwen2.5-VL text encoder and UniPC with Cosmos' flow
sigmas), for tests of the Cosmos path. Saved without a safety checker, as diffusers' conversion
script saves the real one; loading it in the pipeline needs a checker (tests stub it at its boundary)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

SIZE = {"num_frames": 5, "height": 16, "width": 16, "fps": 8, "text_len": 16}
WORDS = ["a", "red", "circle", "moving", "left", "cat", "dog", "video", "the"]
# Qwen's chat template reduced to what Cosmos2_5_PredictBasePipeline._get_prompt_embeds sends: a system
# and a user turn of text.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} "
    "{% for c in m['content'] %}{{ c['text'] }} {% endfor %}<|im_end|> {% endfor %}"
)


def tiny_tokenizer():
    from engine.shapes.text import build_tokenizer

    tokenizer = build_tokenizer([*WORDS, "<|im_start|>", "<|im_end|>", "system", "user"], model_max_length=16)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_text_encoder(vocab_size: int, hidden: int = 16, layers: int = 2):
    """Qwen2_5_VLForConditionalGeneration with a 2-layer, 16-wide text model and a 1-block vision tower."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=vocab_size,
            hidden_size=hidden,
            intermediate_size=32,
            num_hidden_layers=layers,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
            rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
            bos_token_id=None,
            eos_token_id=None,
        ),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=hidden),
    )
    torch.manual_seed(0)
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def tiny_parts() -> dict:
    from diffusers import AutoencoderKLWan, CosmosTransformer3DModel, UniPCMultistepScheduler

    from engine.models.cosmos import COSMOS_2B_TRANSFORMER  # the release's config, narrowed below

    tokenizer = tiny_tokenizer()
    text_encoder = tiny_text_encoder(len(tokenizer))
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.1, -0.2, 0.0, 0.3],
        latents_std=[1.5, 0.8, 1.0, 2.0],
    )
    transformer = CosmosTransformer3DModel(
        **dict(  # the release's config (its flags, patch and RoPE scales) at tiny widths
            COSMOS_2B_TRANSFORMER,
            in_channels=4 + 1,  # latents and the condition mask, as Cosmos-2.5-Predict-Base-2B (16 + 1)
            out_channels=4,
            num_attention_heads=2,
            attention_head_dim=16,  # RoPE splits a head in 6ths: 16 is the smallest that works
            num_layers=2,
            mlp_ratio=2.0,
            text_embed_dim=16,
            adaln_lora_dim=4,
            max_size=(8, 16, 16),
            crossattn_proj_in_channels=2 * 16,  # every layer's hidden state, concatenated (2 layers x 16)
            encoder_hidden_states_channels=16,
        )
    )
    scheduler = UniPCMultistepScheduler(
        use_karras_sigmas=True, use_flow_sigmas=True, prediction_type="flow_prediction", sigma_max=200.0, sigma_min=0.01
    )
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler)


def save_tiny_cosmos(folder: Path) -> Path:
    from diffusers import Cosmos2_5_PredictBasePipeline

    pipe = Cosmos2_5_PredictBasePipeline(**tiny_parts(), safety_checker=lambda *a, **k: None)
    pipe.safety_checker = None  # as NVIDIA's folders: model_index.json names no checker
    pipe.register_modules(safety_checker=None)
    pipe.save_pretrained(folder)
    # the tiny model's own video and prompt size (the real one's are COSMOS_RECIPE's)
    (folder / "dfd_studio.json").write_text(json.dumps(SIZE))
    return folder


class StubGuardrail:
    """cosmos_guardrail's CosmosSafetyChecker at its boundary (the package is not installed here): the
    two checks the pipeline calls, passing everything."""

    def to(self, *args, **kwargs):
        return self

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, video):
        return video


def random_frame(seed: int):
    """A random RGB first frame of the tiny pipeline's size."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, size=(SIZE["height"], SIZE["width"], 3), dtype=np.uint8)
