"""Frame-replacement image conditioning, the one helper of both bases that condition this way: Wan2.2-TI2V's
`expand_timesteps` and Cosmos-Predict2.5's (beside Wan2.1's channel concatenation, conditioning.py).

The transformer takes the latents (in_channels = z); the given frame enters by replacing the first latent
frame of x with its clean latents. How the network is told which frames are given is each base's own:

- Wan2.2-TI2V: the given tokens get timestep 0 (a per-token timestep of shape (B, seq_len)). This is
  diffusers' WanImageToVideoPipeline with `expand_timesteps=True`:
`prepare_latents` returns (latents, condition, first_frame_mask), mask 0 on the given latent frame and 1
elsewhere, and before every forward the loop builds `(1 - mask) * condition + mask * latents` and
`timestep = mask[0][0][:, ::2, ::2].flatten() * t`; after the last step the given frame is put back.
- Cosmos-Predict2.5 (`mask_channel=True`): the replaced latents go in with one more channel, 1 on the
  given latent frames, and the sample's time t; the Cosmos adapter (engine/models/cosmos.py) turns that
  channel into the pipeline's `condition_mask` and per-frame timesteps.

Either way the velocity at the given frames is the one below, not the network's.

API (small on purpose: the one object every caller passes as `condition` to sampling.velocity):

- `FrameCondition(clean, mask, mask_channel)`: clean normalized latents (B, z, F', h, w) (only where mask
  is 0 they matter), the mask (1 or B, 1, F', h, w), 1 on generated latent frames, 0 on given ones, and
  how the network takes it (per-token timesteps, or a mask channel).
- `FrameCondition.first_frame(clean_first, latent_frames, mask_channel)`: the usual case, one given first frame.
- `cond.replace(x)`: x with the given frames put back (the model's input, and any output latents).
- `cond.token_timesteps(t, patch_size)`: (B, seq_len) timesteps, 0 on given tokens.
- `cond.repeat_to(batch)`: the same condition for a batch doubled for CFG.
- `frame_velocity(transformer, x, t, prompt_embeds, cond)`: what sampling.velocity calls for it.

Why the velocity at given tokens is (x - clean) / t and not the network's: it is the velocity that
carries x to the clean frame, so every consumer gets the pipeline's behaviour without knowing about the
condition. x0 = x - t v is the clean frame exactly (the student's output at the given frame is the
frame, as the pipeline's final replacement makes it); an Euler step lands on the straight path to it.
It does not depend on the network's weights, so no loss trains the given tokens: DMD2's distribution
gradient (fake - teacher) is 0 there, and the fake score's flow-matching loss on a real or generated
x_t = (1 - t) x0 + t eps whose first frame is the clean one is exactly 0 there (x_t - x0) / t = eps - x0.
DFD's losses are DMD2's and the fake score's on other clips, so the same holds. The given frame is
thereby neither a target nor a source of gradient: training is on the generated frames only, given the
first, which is what the teacher was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FrameCondition:
    """Given latent frames that replace the noisy ones (mask 0 there), at timestep 0."""

    clean: torch.Tensor  # (B, z, F', h, w) normalized latents
    mask: torch.Tensor  # (1 or B, 1, F', h, w): 1 generated, 0 given
    mask_channel: bool = False  # Cosmos-Predict2.5: the given frames as an input channel; else timestep 0 per token

    @classmethod
    def first_frame(cls, clean_first: torch.Tensor, latent_frames: int, mask_channel: bool = False) -> FrameCondition:
        """The first latent frame given: clean_first (B, z, 1, h, w), the rest generated."""
        b, z, _, h, w = clean_first.shape
        clean = clean_first.new_zeros(b, z, latent_frames, h, w)
        clean[:, :, :1] = clean_first
        return cls(clean, first_frame_mask(latent_frames, h, w, clean_first.device, clean_first.dtype), mask_channel)

    def repeat_to(self, batch: int) -> FrameCondition:
        rows = self.clean.shape[0]
        if rows == batch:
            return self
        if batch % rows:
            raise ValueError(f"a frame condition of {rows} rows does not fit a batch of {batch}")
        mask = self.mask if self.mask.shape[0] == 1 else self.mask.repeat(batch // rows, 1, 1, 1, 1)
        return FrameCondition(self.clean.repeat(batch // rows, 1, 1, 1, 1), mask, self.mask_channel)

    def replace(self, x: torch.Tensor) -> torch.Tensor:
        cond = self.repeat_to(x.shape[0])
        mask = cond.mask.to(device=x.device, dtype=x.dtype)
        return (1 - mask) * cond.clean.to(device=x.device, dtype=x.dtype) + mask * x

    def token_timesteps(self, t: torch.Tensor, patch_size) -> torch.Tensor:
        """(B, seq_len): t (B,) on generated tokens, 0 on given ones, in the transformer's token order
        (frame, row, column of patches), as the pipeline's `mask[0][0][:, ::2, ::2].flatten() * t`."""
        pt, ph, pw = patch_size
        per_token = self.mask[:, 0, ::pt, ::ph, ::pw].flatten(1).to(device=t.device, dtype=t.dtype)
        return per_token * t[:, None]

    def check_shape(self, x: torch.Tensor) -> None:
        if self.clean.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"the frame condition's latents {tuple(self.clean.shape[1:])} do not match the video's "
                f"{tuple(x.shape[1:])}: encode the frame at the video's size"
            )


def first_frame_mask(latent_frames: int, h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(1, 1, F', h, w): 0 on the first latent frame (given), 1 elsewhere, as the pipeline's."""
    mask = torch.ones(1, 1, latent_frames, h, w, device=device, dtype=dtype)
    mask[:, :, 0] = 0
    return mask


def frame_velocity(transformer, x: torch.Tensor, t: torch.Tensor, prompt_embeds: torch.Tensor, cond: FrameCondition):
    """The velocity of `x` at per-sample times t (B,) in [0, 1] under a frame condition: the network's on
    generated tokens, (x - clean) / t on given ones (module docstring)."""
    cond = cond.repeat_to(x.shape[0])
    cond.check_shape(x)
    embed = getattr(transformer, "patch_embedding", None)
    dtype = embed.weight.dtype if embed is not None else x.dtype
    model_input = cond.replace(x)
    mask = cond.mask.to(device=x.device, dtype=x.dtype)
    if cond.mask_channel:  # Cosmos: the adapter reads the given frames from this channel (module docstring)
        b, _, frames, h, w = x.shape
        hidden, timestep = torch.cat([model_input, (1 - mask).expand(b, 1, frames, h, w)], dim=1), t * 1000.0
    else:
        # The patch embedding's kernel is the patch size: the one attribute a DDP-wrapped update's view passes on.
        patch = embed.kernel_size if embed is not None else transformer.config.patch_size
        hidden, timestep = model_input, cond.token_timesteps(t * 1000.0, patch)
    v = transformer(
        hidden_states=hidden.to(dtype),
        timestep=timestep,
        encoder_hidden_states=prompt_embeds.to(dtype),
        return_dict=False,
    )[0].to(x.dtype)
    times = t.to(x.dtype).view(-1, 1, 1, 1, 1)
    given = torch.where(times > 0, (x - model_input) / times.clamp_min(1e-12), torch.zeros_like(x))
    return mask * v + (1 - mask) * given
