"""Loading a base (teacher) model: the built-in `shapes-tiny`, a local diffusers folder, or a hub id.

Whatever the source, the result is a `BaseModel`: a WanPipeline (tokenizer, text encoder, VAE,
scheduler, WanTransformer3DModel) plus the few facts our samplers and trainers need (default video
shape, prompt length, fps). The real Wan2.1-T2V-1.3B goes through the same code as the tiny teacher.
"""

from __future__ import annotations

import gc
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..shapes import autoencoder as _autoencoder  # noqa: F401  (registers our VAE class for from_pretrained)
from ..shapes.text import encode_prompts
from .conditioning import condition_latents, task_of
from .experts import two_experts
from .names import (  # noqa: F401  (re-exported: engine.models.base is where callers look for them)
    ASSETS,
    BASE_RECIPES,
    BUILTIN_MODELS,
    RANDOM_MODELS,
    RANDOM_TI2V,
    STUDIO_META,
    WAN22_TI2V_DEFAULTS,
    WAN_DEFAULTS,
    ModelError,
    check_model,
    check_video_shape,
    hub_error,
    resolve_model,
)

# Teacher folders written by earlier versions of DFD Studio name the autoencoder's module "engine.autoencoder"
# in model_index.json, and diffusers looks that name up in sys.modules: keep them loading.
sys.modules.setdefault("engine.autoencoder", _autoencoder)


@dataclass
class BaseModel:
    """A loaded base model (text-to-video, or image-to-video: `task`) and how to drive it."""

    pipe: object  # diffusers WanPipeline or WanImageToVideoPipeline
    source: str
    meta: dict = field(default_factory=dict)
    _experts: object = field(default=None, repr=False)
    # Encode clips in overlapping spatial tiles (diffusers' VAE tiling): one tile's activations on the device
    # instead of whole frames', for more FLOPs (the tiles overlap); the latents differ slightly at the seams.
    tiled_encode: bool = False

    @property
    def transformer(self):
        """The network the samplers and the trainer run: the pipeline's transformer, or for a two-expert
        base (Wan2.2-A14B) both experts as one (engine/models/experts.py), made once and kept."""
        if getattr(self.pipe, "transformer_2", None) is None:
            return self.pipe.transformer
        if self._experts is None:
            self._experts = two_experts(self.pipe)
            self._experts.guidance_2 = self.meta.get("guidance_2")
        return self._experts

    @property
    def experts(self) -> bool:
        """Whether the base is two experts switched at a boundary (Wan2.2-A14B)."""
        return getattr(self.pipe, "transformer_2", None) is not None

    @property
    def vae(self):
        return self.pipe.vae

    @property
    def device(self) -> torch.device:
        return next(self.pipe.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.pipe.transformer.parameters()).dtype

    @property
    def defaults(self) -> dict:
        """The published video settings of this kind of base (Wan2.2-TI2V-5B's or Wan2.1's)."""
        return WAN22_TI2V_DEFAULTS if self.frame_replacement else WAN_DEFAULTS

    @property
    def num_frames(self) -> int:
        return int(self.meta.get("num_frames", self.defaults["num_frames"]))

    @property
    def height(self) -> int:
        return int(self.meta.get("height", self.defaults["height"]))

    @property
    def width(self) -> int:
        return int(self.meta.get("width", self.defaults["width"]))

    @property
    def fps(self) -> int:
        return int(self.meta.get("fps", self.defaults["fps"]))

    @property
    def text_len(self) -> int:
        return int(self.meta.get("text_len", WAN_DEFAULTS["text_len"]))

    def check_video_shape(self, num_frames: int, height: int, width: int) -> None:
        """Raise a clear error for a video shape the VAE and transformer cannot take."""
        t = self.vae.config.scale_factor_temporal
        s = self.vae.config.scale_factor_spatial * self.transformer.config.patch_size[1]
        rope = getattr(self.transformer.config, "rope_max_seq_len", None)
        check_video_shape(t, s, num_frames, height, width, rope)

    def latent_shape(self, batch: int, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        self.check_video_shape(num_frames, height, width)
        t, s = self.vae.config.scale_factor_temporal, self.vae.config.scale_factor_spatial
        return (batch, self.transformer.config.out_channels, (num_frames - 1) // t + 1, height // s, width // s)

    @property
    def task(self) -> str:
        """ "t2v", or "i2v" for a transformer that also takes a first frame's mask and latents (conditioning.py);
        a frame-replacement base is "t2v" by its channels and does both (`tasks`)."""
        return task_of(self.transformer.config, self.vae.config)

    frame_mask_channel = False  # Wan2.2-TI2V's given tokens take timestep 0 (FrameCondition.mask_channel)

    @property
    def frame_replacement(self) -> bool:
        """True for a base that takes a given frame in place of its first latent frame (Wan2.2-TI2V's
        expand_timesteps, engine/models/frame_replacement.py): one model for text and image to video."""
        return bool(getattr(self.pipe.config, "expand_timesteps", False))

    @property
    def tasks(self) -> tuple[str, ...]:
        """What this base generates: ("t2v", "i2v") for a frame-replacement base, else its one task."""
        return ("t2v", "i2v") if self.frame_replacement else (self.task,)

    def condition_latents(self, first_frames: np.ndarray, num_frames: int | None = None):
        """The I2V condition for uint8 frames (B, H, W, 3): the mask and encoded-frame channels, or a
        FrameCondition for a frame-replacement base."""
        return condition_latents(self, first_frames, num_frames)

    def set_video_shape(self, num_frames: int, height: int, width: int) -> None:
        """Work at another video size than the model's default (e.g. a small one for a quick run)."""
        self.check_video_shape(num_frames, height, width)
        self.meta = {**self.meta, "num_frames": num_frames, "height": height, "width": width}

    def release_text_encoder(self) -> None:
        """Drop the text encoder once every embedding a run needs is cached (UMT5-XXL is ~11 GB in bf16)."""
        self.pipe.text_encoder = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Prompt embeddings padded with zeros to text_len, as WanPipeline makes them."""
        if self.pipe.text_encoder is None:
            raise ModelError(
                "the text encoder was released after the run cached its embeddings; "
                "load the model again to encode new prompts"
            )
        emb = encode_prompts(self.pipe.tokenizer, self.pipe.text_encoder, prompts, self.text_len)
        return emb.to(device=self.device, dtype=self.dtype)

    def normalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """VAE latents to the transformer's unit-scale space (Wan's latents_mean / latents_std)."""
        return _autoencoder.normalize_latents(self.vae.config, latents)

    def denormalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        return _autoencoder.denormalize_latents(self.vae.config, latents)

    @torch.no_grad()
    def encode_video(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 clips (B, F, H, W, 3) to normalized latents."""
        video = _autoencoder.frames_to_tensor(frames).to(device=self.device, dtype=self.vae.dtype)
        tiled = self.tiled_encode and hasattr(self.vae, "enable_tiling")
        if tiled:
            self.vae.enable_tiling()
        try:
            latents = self.vae.encode(video).latent_dist.mode()
        finally:
            if tiled:
                self.vae.disable_tiling()
        return self.normalize_latents(latents.to(self.dtype))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Normalized latents to uint8 clips (B, F, H, W, 3).

        Wan's VAE decodes one video at a time, and frames over 256 px in overlapping tiles (diffusers'
        tiling; encoding only with tiled_encode): a 480x832 preview in the middle of a run then holds
        one tile's activations, not a batch of whole frames', on the GPU that training fills. Our
        patch-PCA autoencoder is linear and small: it decodes the batch at once."""
        raw = self.denormalize_latents(latents.to(self.vae.dtype))
        if not hasattr(self.vae, "enable_tiling"):
            return _autoencoder.tensor_to_frames(self.vae.decode(raw, return_dict=False)[0])
        self.vae.enable_tiling()
        try:
            return np.concatenate(
                [_autoencoder.tensor_to_frames(self.vae.decode(z[None], return_dict=False)[0]) for z in raw]
            )
        finally:
            self.vae.disable_tiling()

    def to(self, device: str | torch.device) -> BaseModel:
        self.pipe.to(device)
        return self


def _quiet_libraries() -> None:
    """Loading bars and type warnings of diffusers/transformers would bury our own progress bars
    (our VAE is not an AutoencoderKLWan by class, only by interface, which WanPipeline warns about)."""
    import diffusers  # diffusers' pipelines: only when a model is built or loaded
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _read_meta(folder: Path) -> dict:
    path = folder / STUDIO_META
    return json.loads(path.read_text()) if path.is_file() else {}


def base_dtype(mixed_precision: str, device: str) -> torch.dtype:
    """The frozen base's dtype for a run: bf16 when asked, or on a GPU under "auto"; fp32 otherwise."""
    if mixed_precision == "bf16" or (mixed_precision == "auto" and str(device).startswith("cuda")):
        return torch.bfloat16
    return torch.float32


def pipeline_class(folder: Path | None, hub_id: str | None = None):
    """WanImageToVideoPipeline when the model_index.json of the folder (or of the hub repo) names it, else
    WanPipeline."""
    # diffusers' pipelines: only when a model is built or loaded
    from diffusers import WanImageToVideoPipeline, WanPipeline

    index = folder / "model_index.json" if folder is not None else None
    if index is None and hub_id:
        from huggingface_hub import hf_hub_download  # huggingface_hub: only for a hub id

        try:  # from_pretrained fetches this file anyway; read it first to pick the class
            index = Path(hf_hub_download(hub_id, "model_index.json"))
        except (OSError, ValueError):
            index = None  # from_pretrained below reports the hub's error in full
    if index is not None and index.is_file():
        if json.loads(index.read_text()).get("_class_name") == "WanImageToVideoPipeline":
            return WanImageToVideoPipeline
    return WanPipeline


def load_base_model(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None) -> BaseModel:
    """Load a base model by name (see resolve_model); raises ModelError with a one-line fix on failure."""
    _quiet_libraries()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if name_or_path in RANDOM_MODELS:
        from .random_bases import random_wan22_ti2v_5b, random_wan_1_3b  # they build this module's BaseModel

        dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
        if name_or_path in RANDOM_TI2V:
            return random_wan22_ti2v_5b(device, dtype)
        return random_wan_1_3b(device, dtype, task=RANDOM_MODELS[name_or_path])
    kind, folder = resolve_model(name_or_path)
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") and kind == "hub" else torch.float32
    source = str(folder) if folder is not None else name_or_path
    from . import cosmos  # cosmos builds on this module's BaseModel: imported when a base is loaded

    if cosmos.is_cosmos(folder, name_or_path if kind == "hub" else None):
        return cosmos.load_cosmos(source, kind, device, dtype)
    try:
        pipe = pipeline_class(folder, name_or_path if kind == "hub" else None).from_pretrained(source, dtype=dtype)
    except OSError as err:
        if kind == "hub":
            raise hub_error(name_or_path, err) from err
        raise ModelError(f"could not load the pipeline folder {source}: {err}") from err
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    # A known hub release's own sampling recipe (Wan2.2-A14B's per-expert CFG), under a folder's own facts.
    meta = {**BASE_RECIPES.get(name_or_path.strip(), {}), **(_read_meta(folder) if folder else {})}
    return BaseModel(pipe=pipe, source=name_or_path, meta=meta)
