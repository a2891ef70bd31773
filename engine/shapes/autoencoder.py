"""A fixed linear video autoencoder (patch PCA) with the interface of diffusers' AutoencoderKLWan.

A tiny AutoencoderKLWan does not learn the shapes world in minutes; a PCA of space-time patches is
fitted in seconds and reconstructs it at ~30 dB. It compresses like Wan's VAE (causal: the first
frame alone, then groups of 4 frames; 8x8 pixels per latent cell; 16 latent channels), so WanPipeline
and our samplers treat it exactly like the real VAE. A saved pipeline folder names this module in its
model_index.json; diffusers finds the class there once the module is imported (load_base_model does
that; a script calling `WanPipeline.from_pretrained` imports engine.shapes.autoencoder first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput


class _PointLatent:
    """A degenerate latent distribution: this autoencoder is deterministic."""

    def __init__(self, latents: torch.Tensor):
        self.latents = latents

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.latents

    def mode(self) -> torch.Tensor:
        return self.latents


@dataclass
class EncoderOutput(BaseOutput):
    latent_dist: _PointLatent


@dataclass
class DecoderOutput(BaseOutput):
    sample: torch.Tensor


class PatchPCAAutoencoder(ModelMixin, ConfigMixin):
    """Video (B, C, F, H, W) in [-1, 1] <-> latents (B, z_dim, 1 + (F-1)/t, H/s, W/s), linear both ways."""

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        z_dim: int = 16,
        in_channels: int = 3,
        scale_factor_temporal: int = 4,
        scale_factor_spatial: int = 8,
        latents_mean: list[float] | None = None,
        latents_std: list[float] | None = None,
    ):
        super().__init__()
        s, t, c = scale_factor_spatial, scale_factor_temporal, in_channels
        # Basis rows are orthonormal principal directions; "first" codes frame 0 alone (causal, as Wan).
        self.first_basis = torch.nn.Parameter(torch.zeros(z_dim, c * s * s), requires_grad=False)
        self.first_mean = torch.nn.Parameter(torch.zeros(c * s * s), requires_grad=False)
        self.group_basis = torch.nn.Parameter(torch.zeros(z_dim, c * t * s * s), requires_grad=False)
        self.group_mean = torch.nn.Parameter(torch.zeros(c * t * s * s), requires_grad=False)
        if latents_mean is None:
            self.register_to_config(latents_mean=[0.0] * z_dim)
        if latents_std is None:
            self.register_to_config(latents_std=[1.0] * z_dim)

    # --- patch <-> video reshaping -------------------------------------------------------------
    def _check(self, video: torch.Tensor) -> None:
        _, c, f, h, w = video.shape
        t, s = self.config.scale_factor_temporal, self.config.scale_factor_spatial
        if c != self.config.in_channels or (f - 1) % t or h % s or w % s:
            raise ValueError(
                f"video of shape {tuple(video.shape)} does not fit this autoencoder: it needs "
                f"{self.config.in_channels} channels, a frame count of {t}k+1 and sizes divisible by {s}"
            )

    def _to_patches(self, video: torch.Tensor, frames_per_group: int) -> torch.Tensor:
        b, c, f, h, w = video.shape
        s, g = self.config.scale_factor_spatial, frames_per_group
        x = video.reshape(b, c, f // g, g, h // s, s, w // s, s)
        # -> (b, groups, h/s, w/s, c*g*s*s)
        return x.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, f // g, h // s, w // s, c * g * s * s)

    def _from_patches(self, patches: torch.Tensor, frames_per_group: int, out: torch.Tensor) -> None:
        """Write patches (b, n, h/s, w/s, c*g*s*s) into the video slice `out` (b, c, n*g, h, w)."""
        b, n, hs, ws, _ = patches.shape
        s, g, c = self.config.scale_factor_spatial, frames_per_group, self.config.in_channels
        x = patches.reshape(b, n, hs, ws, c, g, s, s).permute(0, 4, 1, 5, 2, 6, 3, 7)
        out.view(b, c, n, g, hs, s, ws, s).copy_(x)

    # --- the AutoencoderKLWan interface --------------------------------------------------------
    def encode(self, x: torch.Tensor, return_dict: bool = True):
        self._check(x)
        x = x.to(self.group_basis.dtype)
        t = self.config.scale_factor_temporal
        first = self._to_patches(x[:, :, :1], 1) - self.first_mean
        rest = self._to_patches(x[:, :, 1:], t) - self.group_mean
        z = torch.cat([first @ self.first_basis.T, rest @ self.group_basis.T], dim=1)  # b, f', h', w', z
        latents = z.permute(0, 4, 1, 2, 3).contiguous()
        out = _PointLatent(latents)
        return EncoderOutput(latent_dist=out) if return_dict else (out,)

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        t = self.config.scale_factor_temporal
        z = z.to(self.group_basis.dtype).permute(0, 2, 3, 4, 1)  # b, f', h', w', z
        b, n, hs, ws, _ = z.shape
        s = self.config.scale_factor_spatial
        # Both parts are written into one video tensor, clamped in place: no concatenation pass.
        video = torch.empty(b, self.config.in_channels, 1 + (n - 1) * t, hs * s, ws * s, dtype=z.dtype, device=z.device)
        self._from_patches((z[:, :1] @ self.first_basis).add_(self.first_mean), 1, video[:, :, :1])
        self._from_patches((z[:, 1:] @ self.group_basis).add_(self.group_mean), t, video[:, :, 1:])
        video.clamp_(-1.0, 1.0)
        return DecoderOutput(sample=video) if return_dict else (video,)

    # --- fitting ---------------------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, videos: torch.Tensor, max_patches: int = 60000, seed: int = 0) -> PatchPCAAutoencoder:
        """Fit the bases by PCA on (B, C, F, H, W) videos in [-1, 1], then the latent statistics."""
        self._check(videos)
        gen = torch.Generator().manual_seed(seed)
        t, z_dim = self.config.scale_factor_temporal, self.config.z_dim
        for patches, basis, mean in (
            (self._to_patches(videos[:, :, :1], 1), self.first_basis, self.first_mean),
            (self._to_patches(videos[:, :, 1:], t), self.group_basis, self.group_mean),
        ):
            flat = patches.reshape(-1, patches.shape[-1]).double()
            if flat.shape[0] > max_patches:
                flat = flat[torch.randperm(flat.shape[0], generator=gen)[:max_patches]]
            mu = flat.mean(0)
            _, _, vh = torch.linalg.svd(flat - mu, full_matrices=False)
            # Fix each direction's sign so that fits are reproducible across LAPACK builds.
            signs = torch.sign(vh[:z_dim].sum(dim=1, keepdim=True) + 1e-12)
            basis.copy_((vh[:z_dim] * signs).float())
            mean.copy_(mu.float())
        latents = self.encode(videos).latent_dist.mode().double()
        per_channel = latents.transpose(0, 1).reshape(z_dim, -1)
        self.register_to_config(
            latents_mean=[round(float(v), 6) for v in per_channel.mean(1)],
            latents_std=[round(float(v), 6) for v in per_channel.std(1)],
        )
        return self

    def normalize(self, latents: torch.Tensor) -> torch.Tensor:
        """Raw latents to the unit-scale space the transformer works in (Wan's convention)."""
        return normalize_latents(self.config, latents)


def _latent_stats(vae_config, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, vae_config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae_config.latents_mean, dtype=like.dtype, device=like.device).view(shape)
    std = torch.tensor(vae_config.latents_std, dtype=like.dtype, device=like.device).view(shape)
    return mean, std


def normalize_latents(vae_config, latents: torch.Tensor) -> torch.Tensor:
    """(latents - latents_mean) / latents_std, from any Wan-style VAE config (ours or AutoencoderKLWan)."""
    mean, std = _latent_stats(vae_config, latents)
    return (latents - mean) / std


def denormalize_latents(vae_config, latents: torch.Tensor) -> torch.Tensor:
    mean, std = _latent_stats(vae_config, latents)
    return latents * std + mean


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 clips (B, F, H, W, 3) to a float video tensor (B, 3, F, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.asarray(frames)).float().div_(127.5).sub_(1.0)
    return x.permute(0, 4, 1, 2, 3).contiguous()


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """A float video tensor (B, 3, F, H, W) in [-1, 1] to uint8 clips (B, F, H, W, 3)."""
    # One new tensor (clamp), then in place: each full-size temporary costs a pass over fresh pages,
    # the larger part of decoding 8 videos on a small CPU.
    x = video.detach().float().clamp(-1, 1).add_(1.0).mul_(127.5).round_().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()
