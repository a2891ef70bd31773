"""The patch-PCA autoencoder and the samplers: shapes, reconstruction quality, seeding, save/load."""

import numpy as np
import pytest
import torch

from engine.generation import sampling
from engine.shapes import world
from engine.shapes.autoencoder import PatchPCAAutoencoder, frames_to_tensor, tensor_to_frames


@pytest.fixture(scope="module")
def fitted_vae():
    clips, _ = world.sample_clips({}, 200, seed=1)
    return PatchPCAAutoencoder(z_dim=16).fit(frames_to_tensor(clips))


def test_autoencoder_compresses_like_wan_and_reconstructs_world_clips_well(fitted_vae):
    clips, _ = world.sample_clips({}, 24, seed=2)
    x = frames_to_tensor(clips)
    z = fitted_vae.encode(x).latent_dist.mode()
    assert z.shape == (24, 16, 5, 8, 8)  # 1 + 16/4 latent frames, 64/8 cells
    back = fitted_vae.decode(z).sample
    mse = ((back - x) ** 2).mean().item()
    psnr = 10 * np.log10(4.0 / mse)
    assert psnr > 25.0, psnr
    normalized = fitted_vae.normalize(z)
    assert abs(normalized.mean().item()) < 0.2 and 0.7 < normalized.std().item() < 1.3


def test_autoencoder_saves_and_reloads_identically(tmp_path, fitted_vae):
    fitted_vae.save_pretrained(tmp_path / "vae")
    again = PatchPCAAutoencoder.from_pretrained(tmp_path / "vae")
    x = frames_to_tensor(world.sample_clips({}, 2, seed=3)[0])
    assert torch.equal(again.encode(x).latent_dist.mode(), fitted_vae.encode(x).latent_dist.mode())
    assert again.config.latents_std == fitted_vae.config.latents_std


def test_autoencoder_refuses_a_video_of_the_wrong_shape(fitted_vae):
    with pytest.raises(ValueError, match="4k\\+1"):
        fitted_vae.encode(torch.zeros(1, 3, 16, 64, 64))


def test_frames_tensor_round_trip_is_lossless():
    clips, _ = world.sample_clips({}, 2, seed=4)
    assert np.array_equal(tensor_to_frames(frames_to_tensor(clips)), clips)


class _Linear(torch.nn.Module):
    """A stand-in network with the transformer's call signature: v = x (the flow of x0 = 0)."""

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict=False):
        return (hidden_states.clone(),)


def test_teacher_and_student_samplers_return_latents_of_the_noise_shape():
    model = _Linear()
    noise = torch.randn(3, 4, 5, 8, 8)
    cond = torch.randn(3, 6, 8)
    x = sampling.teacher_sample(model, noise, cond, cond, [1.0, 0.5, 0.0], guidance=5.0)
    assert x.shape == noise.shape
    y = sampling.student_sample(model, noise, cond, sampling.PAPER_T_LIST, generator=torch.Generator().manual_seed(0))
    assert y.shape == noise.shape


def test_student_sampler_rejects_a_bad_t_list():
    with pytest.raises(ValueError, match="t_list"):
        sampling.student_sample(_Linear(), torch.zeros(1, 1, 1, 2, 2), torch.zeros(1, 1, 1), (0.5, 0.9, 0.0))


def test_seeded_noise_does_not_depend_on_the_batch_it_is_drawn_in():
    alone = sampling.seeded_noise((1, 4, 5, 8, 8), [7], "cpu", torch.float32)
    batch = sampling.seeded_noise((3, 4, 5, 8, 8), [3, 7, 9], "cpu", torch.float32)
    assert torch.equal(alone[0], batch[1])


def test_teacher_sigmas_come_from_the_shifted_scheduler_and_end_at_zero():
    from diffusers import FlowMatchEulerDiscreteScheduler

    sigmas = sampling.teacher_sigmas(FlowMatchEulerDiscreteScheduler(shift=3.0), 4)
    assert len(sigmas) == 5 and sigmas[-1] == 0.0 and sigmas[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    assert sigmas[2] > 0.5  # the shift keeps more steps at high noise
