"""Loading a base (teacher) model: the built-in `shapes-tiny`, a local diffusers folder, or a hub id.

Whatever the source, the result is a `BaseModel`: a WanPipeline (tokenizer, text encoder, VAE,
scheduler, WanTransformer3DModel) plus the few facts our samplers and trainers need (default video
shape, prompt length, fps). The real Wan2.1-T2V-1.3B goes through the same code as the tiny teacher.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import autoencoder as _autoencoder  # noqa: F401  (registers our VAE class for from_pretrained)
from .text import encode_prompts

ASSETS = Path(__file__).resolve().parent / "assets"
BUILTIN_MODELS = {"shapes-tiny": ASSETS / "shapes-tiny"}
STUDIO_META = "dfd_studio.json"  # our facts about a pipeline folder, beside model_index.json

# Defaults for pipelines that carry no dfd_studio.json (Wan2.1-T2V-1.3B's published settings).
WAN_DEFAULTS = {"num_frames": 81, "height": 480, "width": 832, "fps": 16, "text_len": 512}


class ModelError(ValueError):
    """A base model could not be found or loaded; the message says what to do."""


@dataclass
class BaseModel:
    """A loaded text-to-video base model and how to drive it."""

    pipe: object  # diffusers WanPipeline
    source: str
    meta: dict = field(default_factory=dict)

    @property
    def transformer(self):
        return self.pipe.transformer

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
    def num_frames(self) -> int:
        return int(self.meta.get("num_frames", WAN_DEFAULTS["num_frames"]))

    @property
    def height(self) -> int:
        return int(self.meta.get("height", WAN_DEFAULTS["height"]))

    @property
    def width(self) -> int:
        return int(self.meta.get("width", WAN_DEFAULTS["width"]))

    @property
    def fps(self) -> int:
        return int(self.meta.get("fps", WAN_DEFAULTS["fps"]))

    @property
    def text_len(self) -> int:
        return int(self.meta.get("text_len", WAN_DEFAULTS["text_len"]))

    def check_video_shape(self, num_frames: int, height: int, width: int) -> None:
        """Raise a clear error for a video shape the VAE and transformer cannot take."""
        t = self.vae.config.scale_factor_temporal
        s = self.vae.config.scale_factor_spatial * self.transformer.config.patch_size[1]
        if num_frames < 1 or (num_frames - 1) % t:
            raise ModelError(f"num_frames must be {t}k+1 (e.g. {t * 4 + 1}); got {num_frames}")
        if height <= 0 or width <= 0 or height % s or width % s:
            raise ModelError(f"height and width must be positive multiples of {s}; got {width}x{height}")

    def latent_shape(self, batch: int, num_frames: int, height: int, width: int) -> tuple[int, ...]:
        self.check_video_shape(num_frames, height, width)
        t, s = self.vae.config.scale_factor_temporal, self.vae.config.scale_factor_spatial
        return (batch, self.transformer.config.in_channels, (num_frames - 1) // t + 1, height // s, width // s)

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """Prompt embeddings padded with zeros to text_len, as WanPipeline makes them."""
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
        latents = self.vae.encode(video).latent_dist.mode()
        return self.normalize_latents(latents.to(self.dtype))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Normalized latents to uint8 clips (B, F, H, W, 3)."""
        raw = self.denormalize_latents(latents.to(self.vae.dtype))
        video = self.vae.decode(raw, return_dict=False)[0]
        return _autoencoder.tensor_to_frames(video)

    def to(self, device: str | torch.device) -> "BaseModel":
        self.pipe.to(device)
        return self


def _quiet_libraries() -> None:
    """Loading bars and type warnings of diffusers/transformers would bury our own progress bars
    (our VAE is not an AutoencoderKLWan by class, only by interface, which WanPipeline warns about)."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _read_meta(folder: Path) -> dict:
    path = folder / STUDIO_META
    return json.loads(path.read_text()) if path.is_file() else {}


def resolve_model(name_or_path: str) -> tuple[str, Path | None]:
    """Where a model name points: ('builtin'|'folder'|'hub', local folder or None)."""
    if not name_or_path or not name_or_path.strip():
        raise ModelError("no base model given; use 'shapes-tiny', a local diffusers folder, or a hub id")
    name = name_or_path.strip()
    if name in BUILTIN_MODELS:
        folder = BUILTIN_MODELS[name]
        if not (folder / "model_index.json").is_file():
            raise ModelError(
                f"the built-in model {name!r} is missing from {folder}; restore it with "
                f"`git checkout -- {folder}` or rebuild it with `python -m engine pretrain-teacher --out {folder}`"
            )
        return "builtin", folder
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        if not path.is_dir():
            raise ModelError(f"{name!r} is not a folder; give a diffusers pipeline folder (with model_index.json)")
        if not (path / "model_index.json").is_file():
            raise ModelError(
                f"{name!r} has no model_index.json, so it is not a diffusers pipeline folder; "
                "save one with pipe.save_pretrained(...) or give a hub id"
            )
        return "folder", path
    if name.count("/") == 1 and all(part.strip() for part in name.split("/")):
        return "hub", None
    raise ModelError(
        f"unknown model {name!r}: use 'shapes-tiny' (built in), a local diffusers folder, "
        "or a Hugging Face hub id such as Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    )


def load_base_model(name_or_path: str, device: str | None = None, dtype: torch.dtype | None = None) -> BaseModel:
    """Load a base model by name (see resolve_model); raises ModelError with a one-line fix on failure."""
    from diffusers import WanPipeline

    _quiet_libraries()
    kind, folder = resolve_model(name_or_path)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") and kind == "hub" else torch.float32
    source = str(folder) if folder is not None else name_or_path
    try:
        pipe = WanPipeline.from_pretrained(source, dtype=dtype)
    except OSError as err:
        if kind == "hub":
            raise ModelError(
                f"could not fetch {name_or_path!r} from the Hugging Face Hub ({type(err).__name__}); "
                "check the id and your network, or download it elsewhere and pass the local folder"
            ) from err
        raise ModelError(f"could not load the pipeline folder {source}: {err}") from err
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    return BaseModel(pipe=pipe, source=name_or_path, meta=_read_meta(folder) if folder else {})
