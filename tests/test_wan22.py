"""Wan2.2-TI2V: frame-replacement conditioning (engine/models/frame_replacement.py) against diffusers'
own WanImageToVideoPipeline with expand_timesteps, on a tiny pipeline of the real classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_wan import save_tiny_wan22_ti2v

SHAPE = dict(num_frames=5, height=32, width=32)  # the tiny TI2V's smallest video: 16-px VAE x 2-px patches


@pytest.fixture(scope="module")
def ti2v_dir(tmp_path_factory):
    return save_tiny_wan22_ti2v(tmp_path_factory.mktemp("tiny_wan22_ti2v"))


@pytest.fixture(scope="module")
def ti2v_pipe(ti2v_dir):
    from diffusers import WanImageToVideoPipeline

    return WanImageToVideoPipeline.from_pretrained(ti2v_dir)


def _image(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, size=(32, 32, 3), dtype=np.uint8))


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_frame_replacement_sampling_is_the_pipelines_denoising_loop(ti2v_pipe, guidance):
    from engine.generation.sampling import teacher_sample, teacher_sigmas
    from engine.models.frame_replacement import FrameCondition

    pipe = ti2v_pipe
    image = pipe.video_processor.preprocess(_image(3), height=32, width=32)
    noise = torch.randn(1, 8, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    _, clean, mask = pipe.prepare_latents(image, 1, 8, 32, 32, 5, torch.float32, torch.device("cpu"), None, noise)
    condition = FrameCondition.first_frame(clean[:, :, :1], 2)
    assert torch.equal(condition.mask, mask)  # 0 on the given latent frame, 1 on the generated one
    cond = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(1))
    uncond = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(2))
    theirs = pipe(
        image=_image(3),
        prompt_embeds=cond,
        negative_prompt_embeds=uncond,
        guidance_scale=guidance,
        num_inference_steps=3,
        latents=noise.clone(),
        output_type="latent",
        **SHAPE,
    ).frames
    ours = teacher_sample(
        pipe.transformer, noise, cond, uncond, teacher_sigmas(pipe.scheduler, 3), guidance, condition=condition
    )
    # The given frame comes out as the clean frame, the generated one as the pipeline's.
    torch.testing.assert_close(ours[:, :, :1], clean[:, :, :1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_the_given_frames_velocity_predicts_the_clean_frame_and_trains_nothing(ti2v_pipe):
    from engine.core.flow import add_noise, x0_from_velocity
    from engine.generation.sampling import velocity
    from engine.models.frame_replacement import FrameCondition

    torch.manual_seed(0)
    x0 = torch.randn(2, 8, 2, 2, 2)
    condition = FrameCondition.first_frame(x0[:, :, :1], 2)
    x = add_noise(x0, torch.randn_like(x0), 0.7)
    v = velocity(ti2v_pipe.transformer, x, 0.7, torch.randn(2, 32, 32), condition)
    torch.testing.assert_close(x0_from_velocity(x, 0.7, v)[:, :, :1], x0[:, :, :1])
    params = [p for p in ti2v_pipe.transformer.parameters() if p.requires_grad]
    given = torch.autograd.grad(v[:, :, :1].square().sum(), params, retain_graph=True, allow_unused=True)
    generated = torch.autograd.grad(v[:, :, 1:].square().sum(), params, allow_unused=True)
    assert all(g is None or g.abs().max() == 0 for g in given)  # no loss on the given frame trains the network
    assert any(g is not None and g.abs().max() > 0 for g in generated)
