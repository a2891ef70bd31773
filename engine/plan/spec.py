"""What a plan is asked about (a base at its real config, a task, a clip size, a batch, precision,
checkpointing, sharding, LoRA rank) and the configs of the bases it can plan without their weights.
No torch here: the command line validates a request before torch loads."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..models.configs import WAN22_VAE, WAN_1_3B, WAN_5B, WAN_14B  # noqa: F401  (the plan's names for them)

# UMT5-XXL's encoder, the text encoder of every Wan base (google/umt5-xxl).
UMT5_XXL = dict(
    vocab_size=256384,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    feed_forward_proj="gated-gelu",
    is_encoder_decoder=False,
)

# name -> (transformer config, VAE config or None for Wan2.1's, spatial compression, latent channels)
BASES = {
    "wan2.1-1.3b-random": (WAN_1_3B, None, 8, 16),
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": (WAN_1_3B, None, 8, 16),
    "Wan-AI/Wan2.1-T2V-14B-Diffusers": (WAN_14B, None, 8, 16),
    "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": (dict(WAN_14B, in_channels=36), None, 8, 16),
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": (WAN_5B, WAN22_VAE, 16, 48),
    # two experts of the 14B's config each (engine/models/configs.py), switched at EXPERTS' boundary
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": (WAN_14B, None, 8, 16),
    "Wan-AI/Wan2.2-I2V-A14B-Diffusers": (dict(WAN_14B, in_channels=36), None, 8, 16),
    # CosmosFlowTransformer at engine.models.cosmos.COSMOS_2B_TRANSFORMER (read when planned: that module
    # imports torch), Wan2.1's VAE, Qwen2.5-VL-7B's text encoder
    "nvidia/Cosmos-Predict2.5-2B": ("cosmos-2b", None, 8, 16),
}
# Two-expert bases: their boundary_ratio (model_index.json of each release). Both experts are on the device
# for the whole run: load_base_model puts the pipeline there, and Experts (engine/models/experts.py) runs the
# one whose noise range a batch is in.
EXPERTS = {"Wan-AI/Wan2.2-T2V-A14B-Diffusers": 0.875, "Wan-AI/Wan2.2-I2V-A14B-Diffusers": 0.9}
COSMOS = ("nvidia/Cosmos-Predict2.5-2B",)
# Qwen2.5-VL-7B-Instruct's config (the Cosmos text encoder): 28 layers of 3584, GQA with 4 KV heads, and the
# 32-block vision tower it also loads.
QWEN25_VL_7B = dict(
    text_config=dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        rms_norm_eps=1e-6,
        rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0},
    ),
    vision_config=dict(
        depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, window_size=112
    ),
    tie_word_embeddings=False,
)
ALIASES = {
    "wan2.1-1.3b": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "wan2.1-14b": "Wan-AI/Wan2.1-T2V-14B-Diffusers",
    "wan2.2-5b": "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
    "wan2.2-a14b": "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
    "wan2.2-i2v-a14b": "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
    "cosmos-predict2.5-2b": "nvidia/Cosmos-Predict2.5-2B",
    "wan2.1-1.3b-i2v-random": "wan2.1-1.3b-random",
}
TASKS = ("t2v", "i2v", "ar")
SHARDING = ("none", "ddp", "fsdp2")
PRECISIONS = ("bf16", "fp32")
TEXT_LEN = 512


class PlanError(ValueError):
    """A plan request that cannot be planned; the message names the field and what to give."""


@dataclass
class PlanSpec:
    base: str = "wan2.1-1.3b"
    task: str = "t2v"
    frames: int = 81
    height: int = 480
    width: int = 832
    batch: int = 1
    precision: str = "bf16"
    gradient_checkpointing: bool = True
    rank: int = 32
    gpus: int = 1
    sharding: str = "none"
    guidance: float = 5.0
    student_update_freq: int = 5
    text_encoder: bool = True  # plan the text-encoding stage (UMT5-XXL at full size)
    vae: bool = True  # plan latent encoding and the preview decode
    vae_tiling: bool = False  # encode the data's clips in tiles (DistillConfig.vae_tiling)
    block_swap: int = 0  # the last N blocks' frozen weights kept on the host (DistillConfig.block_swap)
    base_int8: bool = False  # the blocks' Linear weights stored in int8 (DistillConfig.base_int8)

    def check(self) -> PlanSpec:
        self.base = ALIASES.get(self.base, self.base)
        if self.base not in BASES and not _is_folder(self.base):
            raise PlanError(
                f"--base {self.base!r}: the plan knows {', '.join(sorted(set(BASES) | set(ALIASES)))} "
                "or a local diffusers folder (with transformer/config.json)"
            )
        for name, choices in (("task", TASKS), ("sharding", SHARDING), ("precision", PRECISIONS)):
            if getattr(self, name) not in choices:
                raise PlanError(f"--{name} {getattr(self, name)!r}: choose one of {', '.join(choices)}")
        if (self.frames - 1) % 4:
            raise PlanError(f"--frames {self.frames}: Wan's VAE takes 4k+1 frames (e.g. 81, 49, 17)")
        step = self.spatial * 2
        if self.height % step or self.width % step:
            raise PlanError(
                f"--height/--width {self.height}x{self.width}: both must be multiples of {step} for this base"
            )
        for name in ("batch", "rank", "gpus", "student_update_freq"):
            if getattr(self, name) < 1:
                raise PlanError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.block_swap and self.base in EXPERTS:
            raise PlanError(f"--block-swap {self.block_swap}: not on a two-expert base (the engine swaps one network)")
        if self.block_swap < 0 or self.block_swap > self.configs()[0].get("num_layers", 0):
            raise PlanError(
                f"--block-swap {self.block_swap}: give 0 (off) up to the base's "
                f"{self.configs()[0].get('num_layers', 0)} transformer blocks"
            )
        if self.block_swap and (self.sharding == "fsdp2" or not self.gradient_checkpointing):
            raise PlanError(
                f"--block-swap {self.block_swap} needs gradient checkpointing and no FSDP2 (the run refuses both)"
            )
        if self.base_int8 and (self.block_swap or self.gpus > 1):
            raise PlanError("--base-int8: one GPU and no block swap (the run refuses the rest)")
        if self.sharding == "none" and self.gpus > 1:
            raise PlanError(f"--gpus {self.gpus} needs --sharding ddp or fsdp2")
        return self

    @property
    def spatial(self) -> int:
        return self.configs()[2]

    def configs(self) -> tuple[dict, dict | None, int, int]:
        if self.base in BASES:
            transformer, vae, spatial, channels = BASES[self.base]
            if transformer == "cosmos-2b":
                from ..models.cosmos import COSMOS_2B_TRANSFORMER  # torch: only once a Cosmos plan is asked for

                transformer = COSMOS_2B_TRANSFORMER
        else:
            transformer, vae = _folder_configs(self.base)
            spatial, channels = int(vae.get("scale_factor_spatial", 8)), int(vae.get("z_dim", 16))
        # widened as pretrain-teacher --task i2v does, unless the base replaces its first frame (TI2V, Cosmos)
        if self.task == "i2v" and transformer["in_channels"] == channels and not _frame_replacement(self.base):
            transformer = dict(transformer, in_channels=2 * channels + 4)
        return transformer, vae, spatial, channels

    def text_width(self) -> int:
        """Width of a cached prompt embedding: UMT5's 4096 for Wan, Cosmos' projected 1024."""
        config = self.configs()[0]
        return config.get("encoder_hidden_states_channels") or config.get("text_dim", 4096)

    def condition_channels(self) -> int:
        """Channels of the I2V condition that travels beside the latents (engine/models/conditioning.py); a base
        that replaces its first latent frame (frame_condition) carries none beside them."""
        if _frame_replacement(self.base):
            return 0
        config, _, _, channels = self.configs()
        return max(config["in_channels"] - channels, 0)

    def frame_condition(self) -> str | None:
        """How an i2v run's first frame reaches a frame-replacement base (engine/models/frame_replacement.py):
        "channel" (Cosmos' indicator channel), "timestep" (Wan2.2-TI2V's per-token timestep 0), else None."""
        if self.task != "i2v" or not _frame_replacement(self.base):
            return None
        return "channel" if self.base in COSMOS else "timestep"

    def latent_shape(self) -> tuple[int, int, int, int, int]:
        _, _, spatial, channels = self.configs()
        return (self.batch, channels, (self.frames - 1) // 4 + 1, self.height // spatial, self.width // spatial)

    def tokens(self) -> int:
        _, f, h, w = self.latent_shape()[1:]
        return f * (h // 2) * (w // 2)

    def to_dict(self) -> dict:
        return asdict(self)


def _frame_replacement(base: str) -> bool:
    """Whether a first frame conditions the base by replacing its first latent frame (Wan2.2-TI2V-5B,
    `expand_timesteps` in its model_index.json; Cosmos-Predict2.5): an i2v run then adds no input channels."""
    if base == "Wan-AI/Wan2.2-TI2V-5B-Diffusers" or base in COSMOS:
        return True
    try:
        return bool(json.loads((Path(base).expanduser() / "model_index.json").read_text()).get("expand_timesteps"))
    except (OSError, ValueError, AttributeError):
        return False


def _is_folder(name: str) -> bool:
    return (Path(name).expanduser() / "transformer" / "config.json").is_file()


def _folder_configs(folder: str) -> tuple[dict, dict]:
    root = Path(folder).expanduser()
    try:
        transformer = json.loads((root / "transformer" / "config.json").read_text())
        vae = json.loads((root / "vae" / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise PlanError(f"--base {folder}: cannot read its transformer/vae config.json ({err})") from None
    return {k: v for k, v in transformer.items() if not k.startswith("_")}, {
        k: v for k, v in vae.items() if not k.startswith("_")
    }


WAN_DEFAULTS_SHAPE = (81, 480, 832)  # Wan2.1's published frames, height, width (engine.models.names.WAN_DEFAULTS)
