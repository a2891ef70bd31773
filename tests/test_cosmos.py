"""Cosmos-Predict2.5 through the engine's paths, on a tiny random Cosmos2_5_PredictBasePipeline: loading
without the guardrail, the velocity adapter against one step of the pipeline's own loop, the teacher's
sampler, a DMD2 and a DFD step of the real trainer from each clip's first frame, and the LoRA read back
by the pipeline's CosmosLoraLoaderMixin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tiny_cosmos import SIZE, save_tiny_cosmos


class StubGuardrail:
    """cosmos_guardrail's CosmosSafetyChecker at its boundary (the package is not installed here): the
    two checks the pipeline calls, passing everything."""

    def to(self, *args, **kwargs):
        return self

    def check_text_safety(self, prompt: str) -> bool:
        return True

    def check_video_safety(self, video):
        return video


@pytest.fixture(scope="module")
def cosmos_dir(tmp_path_factory):
    return save_tiny_cosmos(tmp_path_factory.mktemp("tiny_cosmos"))


@pytest.fixture(scope="module")
def cosmos_model(cosmos_dir):
    from engine.models.base import load_base_model

    return load_base_model(str(cosmos_dir), device="cpu")


def _frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(SIZE["height"], SIZE["width"], 3), dtype=np.uint8)


def test_a_cosmos_folder_loads_without_the_guardrail_and_refuses_the_pipeline_call(cosmos_dir, cosmos_model):
    from engine.models.cosmos import CosmosFlowTransformer
    from engine.models.names import base_task

    assert isinstance(cosmos_model.transformer, CosmosFlowTransformer)
    assert cosmos_model.task == "i2v" and base_task(str(cosmos_dir)) == "i2v"
    assert (cosmos_model.num_frames, cosmos_model.height, cosmos_model.text_len) == (5, 16, 16)
    emb = cosmos_model.encode_prompts(["a red circle", "a dog"])
    layers = cosmos_model.pipe.text_encoder.config.text_config.num_hidden_layers
    hidden = cosmos_model.pipe.text_encoder.config.text_config.hidden_size
    assert emb.shape == (2, 16, layers * hidden)  # every layer's normalized state, as the pipeline's
    with pytest.raises(ValueError, match="safety checker"):  # diffusers' own licence refusal
        cosmos_model.pipe(prompt="a dog", num_frames=5, height=16, width=16)


def test_velocity_is_the_pipelines_own_first_step(cosmos_dir, cosmos_model):
    """One UniPC step of Cosmos2_5_PredictBasePipeline (first order: x + (s1 - s0) v) from the given noise
    and image equals an Euler step on the engine's velocity() where the frame is generated; where it is
    given, the engine's x0 is the frame's latents exactly."""
    from diffusers import Cosmos2_5_PredictBasePipeline

    from engine.core.flow import x0_from_velocity
    from engine.generation.sampling import velocity

    pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(cosmos_dir, safety_checker=StubGuardrail())
    frame = _frame(1)
    shape = cosmos_model.latent_shape(1, SIZE["num_frames"], SIZE["height"], SIZE["width"])
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    seen = {}

    def after_step(pipeline, i, t, kwargs):
        seen.setdefault(i, kwargs["latents"].clone())
        return {}

    # The pipeline reads an `image` with torchvision, which is not installed; a one-frame `video` tensor
    # in [-1, 1] takes the same path through prepare_latents (its last frame, repeated).
    video = torch.from_numpy(frame).permute(2, 0, 1)[None, :, None].float() / 127.5 - 1
    pipe(
        video=video,
        num_latent_conditional_frames=1,
        prompt="a red circle",
        num_frames=SIZE["num_frames"],
        height=SIZE["height"],
        width=SIZE["width"],
        num_inference_steps=3,
        guidance_scale=1.0,
        latents=noise.clone(),
        max_sequence_length=SIZE["text_len"],
        output_type="latent",
        callback_on_step_end=after_step,
    )
    s0, s1 = float(pipe.scheduler.sigmas[0]), float(pipe.scheduler.sigmas[1])
    condition = cosmos_model.condition_latents(frame[None])
    v = velocity(cosmos_model.transformer, noise, s0, cosmos_model.encode_prompts(["a red circle"]), condition)
    generated = slice(1, None)  # latent frames after the first
    expected = noise + (s1 - s0) * v
    torch.testing.assert_close(seen[0][:, :, generated], expected[:, :, generated], atol=1e-5, rtol=1e-4)
    _, cond_latent, *_ = pipe.prepare_latents(
        video=torch.cat([video, video.new_full((1, 3, 4, 16, 16), -1.0)], dim=2),  # the image, then black frames
        batch_size=1,
        num_channels_latents=4,
        height=16,
        width=16,
        num_frames_in=1,
        num_frames_out=5,
        dtype=torch.float32,
        device="cpu",
        latents=noise.clone(),
    )
    x0 = x0_from_velocity(noise, s0, v)
    torch.testing.assert_close(x0[:, :, :1], cond_latent[:, :, :1], atol=1e-5, rtol=1e-4)
