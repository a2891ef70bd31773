"""TeacherConfig and RecognizerConfig: the settings of `python -m engine pretrain-teacher` (the built-in
world's tiny teacher) and `train-recognizer` (its attribute recognizer), stored beside the weights they
make. Torch-free, so a bad setting is refused before torch loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .fields import ConfigError, check_choices, setting


@dataclass
class TeacherConfig:
    steps: int = setting(10000, help="training steps")
    seed: int = setting(0, help="random seed")
    batch_size: int = setting(32, help="clips per step")
    lr: float = setting(1e-3, help="peak AdamW learning rate")
    warmup_steps: int = setting(300, help="linear warm-up steps")
    weight_decay: float = setting(0.01, help="AdamW weight decay")
    grad_clip: float = setting(1.0, help="gradient-norm clip")
    ema_decay: float = setting(0.999, help="decay of the weights' moving average (what is saved)")
    pool_clips: int = setting(16000, help="pre-rendered training clips (continuous factors make each one unique)")
    ae_fit_clips: int = setting(1500, help="clips the patch-PCA autoencoder is fitted on")
    # Transformer size (WanTransformer3DModel config).
    num_layers: int = setting(6, help="transformer blocks")
    num_attention_heads: int = setting(4, help="attention heads")
    attention_head_dim: int = setting(32, help="width of one attention head")
    ffn_dim: int = setting(512, help="feed-forward width")
    text_dim: int = setting(64, help="text-embedding width")
    text_len: int = setting(16, help="tokens per caption")
    z_dim: int = setting(16, help="latent channels of the autoencoder")
    flow_shift: float = setting(3.0, help="scheduler shift for multi-step sampling")
    # With init, the size settings above are taken from that teacher. With a constant rate, the save at
    # step k is exactly what `steps = k` would have written, so any intermediate save can be shipped as is.
    init: str | None = setting(None, help="continue training this teacher folder (its sizes are kept)")
    # i2v: the transformer also takes a first frame's mask and latents (engine/models/conditioning.py); from
    # a text-to-video init, its patch embedding is widened with zero weights (the same model at step 0).
    task: str = setting(
        "t2v",
        choices=("t2v", "i2v"),
        help="t2v: videos from a caption; i2v: from a caption and the clip's first frame (a T2V init "
        "is widened to take it)",
    )
    # frame: Wan2.2-TI2V's frame replacement (engine/models/frame_replacement.py): the first latent frame is the
    # given frame's clean latent, at timestep 0, in every training and sampling step, so the frame is copied by
    # construction, not only used; from a text-to-video init it adds no input channels.
    i2v_conditioning: str = setting(
        "channels",
        choices=("channels", "frame"),
        help="with task i2v: channels (Wan2.1-I2V's mask and frame latents beside the noisy ones) or frame "
        "(Wan2.2-TI2V's frame replacement: the first latent frame is the given one at every step)",
    )
    # The law of the training clips' starts (world.FRAME_LAWS): mixed draws half of them from the centre box every
    # motion allows, so a first frame often leaves all four motions open.
    i2v_frames: str = setting(
        "edge",
        choices=("edge", "mixed"),
        help="with task i2v: the law of the clips' starts (edge: the world's own; mixed: half from the centre "
        "box every motion allows)",
    )
    lr_schedule: str = setting(
        "cosine",
        choices=("cosine", "constant"),
        help="cosine: decay to 10% over the steps; constant: after the warm-up (then every "
        "intermediate save equals a run of that length)",
    )
    # Training noise levels t = s*u / (1 + (s-1)*u), u uniform. s > 1 trains more at high noise, where a
    # sample's layout and shape are decided (the sampler's own shift spends its steps there too).
    time_shift: float = setting(
        1.0, help="train more at high noise: t = s*u/(1+(s-1)*u) for uniform u (1: every level equally)"
    )
    # Fraction of each batch drawn with every factor uniform and captioned in full (world.uniform_naming).
    # This shows the rare combinations (purple 8%, diamond 10%, ...), where the teacher's shape is weakest,
    # as often as common ones without changing any conditional it learns: p(clip | detailed
    # caption) is the same, and partial and empty captions still come from the true frequencies.
    balanced_detailed: float = setting(
        0.0,
        help="fraction of each batch with every factor uniform and captioned "
        "in full: rare combinations as often as common ones, the same "
        "p(clip | detailed caption)",
    )

    def validate(self) -> TeacherConfig:
        """Raise ConfigError (a ValueError) naming the field; returns self."""
        check_choices(self)
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"{{{name}}} must be at least 1, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise ConfigError("warmup_steps", f"{{warmup_steps}} must be 0 or more, got {self.warmup_steps}")
        if self.pool_clips < self.batch_size:
            raise ConfigError(
                "pool_clips",
                f"{{pool_clips}} must be at least {{batch_size}} ({self.batch_size}), got {self.pool_clips}",
                refers=("batch_size",),
            )
        if self.lr <= 0:
            raise ConfigError("lr", f"{{lr}} must be positive, got {self.lr}")
        if self.time_shift <= 0:
            raise ConfigError("time_shift", "{time_shift} must be positive (1 trains every noise level equally)")
        if not 0 <= self.balanced_detailed < 1:
            raise ConfigError(
                "balanced_detailed",
                "{balanced_detailed} must be in [0, 1): the fraction of each batch with uniform factors",
            )
        if self.task != "i2v" and (self.i2v_conditioning != "channels" or self.i2v_frames != "edge"):
            raise ConfigError(
                "task",
                "{i2v_conditioning} and {i2v_frames} are image-to-video settings: give {task} i2v",
                refers=("i2v_conditioning", "i2v_frames"),
            )
        if self.init and self.init != "shapes-tiny" and not Path(self.init).is_dir():
            raise ConfigError(
                "init", f"{{init}} {self.init}: no such folder; give a teacher folder written by pretrain-teacher"
            )
        return self


@dataclass
class RecognizerConfig:
    steps: int = setting(1500, help="training steps")
    seed: int = setting(0, help="random seed")
    batch_size: int = setting(32, help="clips per step")
    lr: float = setting(2e-3, help="peak AdamW learning rate (one-cycle schedule)")
    autoencoder: str = setting(
        "shapes-tiny",
        help="round-trip half of the training clips through this model's "
        "autoencoder, so decoded samples read like real clips",
    )
    heldout_clips: int = setting(800, help="real clips the held-out accuracy is measured on")

    def validate(self) -> RecognizerConfig:
        for name in ("steps", "batch_size", "heldout_clips"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"{{{name}}} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ConfigError("batch_size", "{batch_size} must be at least 2 (half the clips pass the autoencoder)")
        if self.lr <= 0:
            raise ConfigError("lr", f"{{lr}} must be positive, got {self.lr}")
        return self
