"""Cosmos-Predict2.5 through the engine's paths, on a tiny random Cosmos2_5_PredictBasePipeline: loading
without the guardrail, the velocity adapter against one step of the pipeline's own loop, the teacher's
sampler and the sample command from an image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_engine
from tiny_cosmos import SIZE, StubGuardrail, save_tiny_cosmos
from tiny_cosmos import random_frame as _frame


@pytest.fixture(scope="module")
def cosmos_dir(tmp_path_factory):
    return save_tiny_cosmos(tmp_path_factory.mktemp("tiny_cosmos"))


@pytest.fixture(scope="module")
def cosmos_model(cosmos_dir):
    from engine.models.base import load_base_model

    return load_base_model(str(cosmos_dir), device="cpu")


def test_a_cosmos_folder_loads_without_the_guardrail_and_refuses_the_pipeline_call(cosmos_dir, cosmos_model):
    from engine.models.cosmos import CosmosFlowTransformer
    from engine.models.names import base_task

    assert isinstance(cosmos_model.transformer, CosmosFlowTransformer)
    assert cosmos_model.task == "i2v" and base_task(str(cosmos_dir)) == "i2v"
    assert (cosmos_model.num_frames, cosmos_model.height, cosmos_model.text_len) == (5, 16, 16)
    emb = cosmos_model.encode_prompts(["a red circle", "a dog"])
    # the pipeline's embedding (every layer's normalized state), projected once by the transformer's own layer
    pipe = cosmos_model.pipe
    raw = pipe.encode_prompt(["a red circle", "a dog"], do_classifier_free_guidance=False, max_sequence_length=16)[0]
    assert raw.shape == (2, 16, 2 * 16) and emb.shape == (2, 16, 16)
    torch.testing.assert_close(emb, cosmos_model.transformer.crossattn_proj(raw))
    with pytest.raises(ValueError, match="safety checker"):  # diffusers' own licence refusal
        cosmos_model.pipe(prompt="a dog", num_frames=5, height=16, width=16)


def test_a_read_only_folder_is_only_read_and_nvidias_hub_repo_is_found_at_its_diffusers_branch(cosmos_dir, monkeypatch):
    import huggingface_hub

    from engine.hub.card import CardInfo, model_card
    from engine.models.base import load_base_model
    from engine.models.cosmos import is_cosmos

    def tree():
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in cosmos_dir.rglob("*")}

    before = tree()
    load_base_model(str(cosmos_dir), device="cpu")
    assert tree() == before  # a read-only mount would do: nothing is written, nothing touched

    asked = []

    def download(repo_id, filename, revision=None, **_):  # the Hub's network, at its boundary
        asked.append((repo_id, filename, revision))
        return str(cosmos_dir / "model_index.json")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert is_cosmos(None, "nvidia/Cosmos-Predict2.5-2B")
    assert asked == [("nvidia/Cosmos-Predict2.5-2B", "model_index.json", "diffusers/base/post-trained")]
    hub_base = "nvidia/Cosmos-Predict2.5-2B"
    info = CardInfo(repo_id="me/c", base=hub_base, method="dmd2", steps=4, t_list=[0.999, 0.5, 0.0], task="i2v")
    card = model_card(info)
    assert 'from_pretrained("nvidia/Cosmos-Predict2.5-2B", revision="diffusers/base/post-trained"' in card
    assert 'base_model: "nvidia/Cosmos-Predict2.5-2B"' in card


def test_a_size_beyond_the_transformers_max_size_is_refused_in_one_line(cosmos_model):
    from engine.models.base import ModelError

    with pytest.raises(ModelError, match=r"beyond the transformer's max_size \(8, 16, 16\)"):
        cosmos_model.check_video_shape(5, 16, 272)  # 17 tokens wide, the tiny model's max_size takes 16
    with pytest.raises(ModelError, match="beyond"):
        cosmos_model.check_video_shape(33, 16, 16)
    with pytest.raises(ModelError, match="multiples of 16"):
        cosmos_model.check_video_shape(5, 24, 16)
    cosmos_model.check_video_shape(5, 16, 16)


def test_velocity_is_the_pipelines_own_first_step(cosmos_dir, cosmos_model):
    """One UniPC step of Cosmos2_5_PredictBasePipeline (first order: x + (s1 - s0) v) from the given noise
    and image equals an Euler step on the engine's velocity() where the frame is generated; where it is
    given, the engine's x0 is the frame's latents exactly."""
    from diffusers import Cosmos2_5_PredictBasePipeline

    from engine.core.flow import x0_from_velocity
    from engine.generation.sampling import velocity
    from engine.models.frame_replacement import FrameCondition

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
    assert isinstance(condition, FrameCondition) and condition.mask_channel  # the helper Wan2.2-TI2V's goes through
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


def test_the_engines_unipc_teacher_is_the_pipelines_own_loop(cosmos_dir, cosmos_model):
    """Three UniPC steps with CFG through velocity() equal Cosmos2_5_PredictBasePipeline's own run on the
    generated frames (its guidance 3 is the engine's 4); the given frame is its latents exactly."""
    from diffusers import Cosmos2_5_PredictBasePipeline

    from engine.generation.scheduler_sampling import scheduler_sample

    pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(cosmos_dir, safety_checker=StubGuardrail())
    frame = _frame(4)
    noise = torch.randn(cosmos_model.latent_shape(1, 5, 16, 16), generator=torch.Generator().manual_seed(1))
    video = torch.from_numpy(frame).permute(2, 0, 1)[None, :, None].float() / 127.5 - 1
    expected = pipe(
        video=video,
        num_latent_conditional_frames=1,
        prompt="a red circle",
        negative_prompt="a dog",
        num_frames=5,
        height=16,
        width=16,
        num_inference_steps=3,
        guidance_scale=3.0,
        latents=noise.clone(),
        max_sequence_length=SIZE["text_len"],
        output_type="latent",
    ).frames
    model = cosmos_model
    condition = model.condition_latents(frame[None])
    cond, uncond = model.encode_prompts(["a red circle"]), model.encode_prompts(["a dog"])
    scheduler = model.pipe.scheduler
    latents = scheduler_sample(model.transformer, noise, cond, uncond, scheduler, 3, 4.0, condition=condition)
    torch.testing.assert_close(latents[:, :, 1:], expected[:, :, 1:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(latents[:, :, :1], condition.clean[:, :, :1], atol=1e-5, rtol=1e-4)


def test_the_teacher_samples_on_cosmos_sigmas_and_keeps_the_given_frame(cosmos_model):
    from engine.generation import sampling

    model = cosmos_model
    frames = np.stack([_frame(2), _frame(3)])
    condition = model.condition_latents(frames)
    shape = model.latent_shape(2, SIZE["num_frames"], SIZE["height"], SIZE["width"])
    noise = sampling.seeded_noise(shape, [1, 2], "cpu", torch.float32)
    cond, uncond = model.encode_prompts(["a red circle", "a dog"]), model.encode_prompts(["", ""])
    sigmas = sampling.teacher_sigmas(model.pipe.scheduler, 4)
    assert sigmas[0] == pytest.approx(200 / 201) and sigmas[-1] == 0.0  # UniPC's Karras flow sigmas, Cosmos'
    latents = sampling.teacher_sample(model.transformer, noise, cond, uncond, sigmas, 8.0, condition=condition)
    torch.testing.assert_close(latents[:, :, :1], condition.clean[:, :, :1])  # the frame, replaced exactly
    assert not torch.allclose(latents[0, :, 1:], latents[1, :, 1:])
    video = model.decode(latents)
    assert video.shape == (2, SIZE["num_frames"], SIZE["height"], SIZE["width"], 3) and video.dtype == np.uint8


def test_sample_command_runs_the_cosmos_teacher_from_an_image(cosmos_dir, tmp_path):
    image = tmp_path / "frame.png"
    Image.fromarray(_frame(7)).save(image)
    result = run_engine(
        "sample",
        "--base",
        str(cosmos_dir),
        "--image",
        str(image),
        "--prompt",
        "a red circle",
        "--seeds",
        "1-2",
        "--steps",
        "2",
        "--cfg",
        "8",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").glob("seed*.mp4"))) == 2
