"""Image-to-video conditioning of the Wan2.1 image-to-video kind: 20 extra input channels.

An I2V transformer (WanTransformer3DModel with in_channels = 2 * z + t, z the latent channels and t the
VAE's temporal factor, 16 + 4 + 16 = 36 for Wan) takes on the channel axis the noisy latents, a mask of
t channels saying which pixel frames are given (the first), and the latents of a conditioning video
made of the given frame followed by zeros. This is what diffusers' WanImageToVideoPipeline does
(`prepare_latents`, then `torch.cat([latents, condition], dim=1)` before every forward, for the
conditional and the unconditional branch alike), so a folder we write loads in that pipeline.

Why this and not Wan2.2 TI2V's frame replacement (`expand_timesteps`: the first latent frame is
overwritten by the clean one and gets timestep 0): the concatenation leaves the noisy latent, the
timestep and the losses of DMD2/DFD exactly as in text-to-video (the student, fake score and teacher
all predict the same 16 channels from the same x_t), the condition is one more input beside the
caption, and the same layout is Wan2.1-I2V's and each expert's of Wan2.2-I2V-A14B. Wan2.1-I2V also
adds CLIP image tokens (image_dim); the built-in world needs no image encoder (image_dim None).

The bases that condition by frame replacement (Wan2.2-TI2V, Cosmos-Predict2.5) get their condition from
the same two entry points, `condition_latents` and `condition_of_clips`: a FrameCondition of the one
helper, engine/models/frame_replacement.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..media.video import read_mp4
from ..shapes.autoencoder import frames_to_tensor
from .frame_replacement import FrameCondition
from .names import task_from_channels

TASKS = ("t2v", "i2v")


def task_of(transformer_config, vae_config) -> str:
    """ "i2v" when the transformer takes the mask and condition channels beside the latents, else "t2v"
    (the rule engine.base_task applies to a folder's configs without loading it)."""
    return task_from_channels(transformer_config.in_channels, vae_config.z_dim, vae_config.scale_factor_temporal)


def first_frame_mask(batch: int, num_frames: int, latent_height: int, latent_width: int, temporal: int) -> torch.Tensor:
    """(batch, temporal, F', h, w): 1 where a pixel frame is given. As in WanImageToVideoPipeline's
    prepare_latents: the first frame's mask is repeated `temporal` times, so the first latent frame
    (which codes that frame alone in Wan's causal VAE) is all ones, every later latent frame zeros."""
    mask = torch.ones(batch, 1, num_frames, latent_height, latent_width)
    mask[:, :, 1:] = 0
    first = torch.repeat_interleave(mask[:, :, 0:1], dim=2, repeats=temporal)
    mask = torch.cat([first, mask[:, :, 1:]], dim=2)
    return mask.view(batch, -1, temporal, latent_height, latent_width).transpose(1, 2)


@torch.no_grad()
def condition_latents(model, first_frames: np.ndarray, num_frames: int | None = None):
    """The mask and condition channels (B, t + z, F', h, w) for uint8 first frames (B, H, W, 3).

    The conditioning video is each frame followed by num_frames - 1 zero frames (mid-grey in [-1, 1]),
    encoded by the VAE (its mode) and normalized with latents_mean / latents_std, as the pipeline does.
    A frame-replacement base (Wan2.2-TI2V, Cosmos-Predict2.5) gets a FrameCondition of the frame encoded
    alone, as Wan2.2's pipeline's prepare_latents does with expand_timesteps."""
    frames = np.asarray(first_frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"first frames must be uint8 (B, H, W, 3), got shape {frames.shape}")
    num_frames = num_frames or model.num_frames
    b, height, width = frames.shape[0], frames.shape[1], frames.shape[2]
    model.check_video_shape(num_frames, height, width)
    image = frames_to_tensor(frames[:, None])  # (B, 3, 1, H, W)
    if getattr(model, "frame_replacement", False):
        image = image.to(device=model.device, dtype=model.vae.dtype)
        first = model.normalize_latents(model.vae.encode(image).latent_dist.mode().float()).to(model.dtype)
        latent_frames = (num_frames - 1) // model.vae.config.scale_factor_temporal + 1
        return FrameCondition.first_frame(first, latent_frames, getattr(model, "frame_mask_channel", False))
    video = torch.cat([image, image.new_zeros(b, 3, num_frames - 1, height, width)], dim=2)
    video = video.to(device=model.device, dtype=model.vae.dtype)
    latents = model.normalize_latents(model.vae.encode(video).latent_dist.mode().float())
    t = model.vae.config.scale_factor_temporal
    mask = first_frame_mask(b, num_frames, latents.shape[3], latents.shape[4], t).to(latents.device)
    return torch.cat([mask, latents], dim=1).to(model.dtype)


@torch.no_grad()
def condition_of_clips(model, latents: torch.Tensor) -> torch.Tensor:
    """The condition channels of real clips given as normalized latents: each clip's own first frame.

    The first frame is decoded from the clip's first latent frame (Wan's VAE codes frame 0 alone) to
    build the zero-padded conditioning video; the condition's first latent frame is then set to the
    clip's own, which is exactly what encoding that frame gives (the encoder is deterministic), so the
    student, fake score and teacher see the frame the real clip starts from (DFD's pairing). For a
    frame-replacement base the clip's first latent frame is the given frame itself."""
    if getattr(model, "frame_replacement", False):
        return FrameCondition.first_frame(
            latents[:, :, :1], latents.shape[2], getattr(model, "frame_mask_channel", False)
        )
    first = model.decode(latents[:, :, :1].to(model.dtype))[:, 0]
    num_frames = (latents.shape[2] - 1) * model.vae.config.scale_factor_temporal + 1
    condition = condition_latents(model, first, num_frames).to(latents.dtype)
    t = model.vae.config.scale_factor_temporal
    condition[:, t:, :1] = latents[:, :, :1]
    return condition


def read_first_frame(path: str | Path, height: int, width: int) -> np.ndarray:
    """uint8 (H, W, 3): a PNG/JPG image, or the first frame of a video, resized to the model's size
    (Lanczos, as diffusers' image processor resizes); a clear error for anything else."""
    from PIL import Image  # Pillow: only when a frame is read from an image

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no image at {path}; give a PNG/JPG image or a video whose first frame is used")
    if path.suffix.lower() in (".mp4", ".mov", ".webm", ".mkv", ".avi"):
        try:
            image = Image.fromarray(read_mp4(path)[0])
        except Exception as err:  # noqa: BLE001  (any decoder failure is one bad-input line)
            raise ValueError(f"could not read the first frame of {path}: {err}") from None
    else:
        try:
            image = Image.open(path)
            image.load()
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"{path} is not an image PIL can read ({err}); give a PNG/JPG") from None
    image = image.convert("RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.LANCZOS)
    return np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy warns on a read-only view)


def for_seeds(condition, n: int):
    """One condition row per seed: a single frame's condition repeated n times."""
    if isinstance(condition, FrameCondition):
        return condition.repeat_to(n)
    return condition.expand(n, -1, -1, -1, -1)


def with_condition(x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
    """The transformer's input: the noisy latents and, for an I2V model, the condition channels.

    A batch doubled for CFG ([conditional rows; unconditional rows]) gets the condition repeated: both
    branches see the same frame, as in the pipeline (guidance is over the caption only)."""
    if condition is None:
        return x
    if condition.shape[0] != x.shape[0]:
        if x.shape[0] % condition.shape[0]:
            raise ValueError(f"a condition of {condition.shape[0]} rows does not fit a batch of {x.shape[0]}")
        condition = condition.repeat(x.shape[0] // condition.shape[0], 1, 1, 1, 1)
    return torch.cat([x, condition.to(device=x.device, dtype=x.dtype)], dim=1)


def image_to_video_pipeline(pipe):
    """A WanImageToVideoPipeline made from a text-to-video WanPipeline: the same text encoder, VAE,
    scheduler and transformer, whose patch embedding is widened from z to 2z + t input channels with
    zero weights on the new ones, so that before any training it computes exactly what the T2V model
    does whatever the condition (training then teaches it to use the frame). No image encoder."""
    # diffusers' pipelines: only when a model is built or loaded
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel

    old = pipe.transformer
    z, t = pipe.vae.config.z_dim, pipe.vae.config.scale_factor_temporal
    if old.config.in_channels != z:
        raise ValueError(
            f"the transformer takes {old.config.in_channels} channels, not the VAE's {z}: "
            "it is not a text-to-video model to widen"
        )
    config = {k: v for k, v in old.config.items() if not k.startswith("_")}
    state = old.state_dict()
    weight = state["patch_embedding.weight"]
    with torch.device(weight.device):  # a meta-device timing model stays without memory
        transformer = WanTransformer3DModel(**{**config, "in_channels": 2 * z + t})
    wide = weight.new_zeros(weight.shape[0], 2 * z + t, *weight.shape[2:])
    wide[:, :z] = weight
    transformer.load_state_dict({**state, "patch_embedding.weight": wide}, assign=weight.is_meta)
    transformer.to(device=weight.device, dtype=weight.dtype)
    return WanImageToVideoPipeline(
        tokenizer=pipe.tokenizer,
        text_encoder=pipe.text_encoder,
        vae=pipe.vae,
        scheduler=pipe.scheduler,
        transformer=transformer,
    )


def check_task(task: str, model) -> None:
    """A run's task must be its base's (a causal `ar` student is a text-to-video one): a clear error
    naming both otherwise."""
    needed = "t2v" if task == "ar" else task
    if task == "ar" and getattr(model, "frame_replacement", False):
        raise ValueError(
            f"task ar is not supported for {model.source}: a frame-replacement base (Wan2.2-TI2V, "
            f"Cosmos-Predict2.5) is distilled bidirectionally; give task {' or '.join(model.tasks)}"
        )
    if needed not in getattr(model, "tasks", (model.task,)):
        kind = {"t2v": "a text-to-video", "i2v": "an image-to-video"}
        raise ValueError(
            f"task {task} needs {kind[needed]} base, but {model.source} is {kind[model.task]}: "
            f"give task {model.task} or another base"
        )
