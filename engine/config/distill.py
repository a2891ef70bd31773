"""The typed configs of the jobs, shared by the CLI, the studio form and the job row: DistillConfig
(a distillation run) and SampleConfig (videos from a prompt). Torch-free, so the command line and the
jobs queue check a config in a fraction of a second, before anything heavy is imported.

Defaults reproduce the paper's recipe (method.md): 4 student steps on FastGen's t_list, DMD noise
time shifted with shift 5, CFG 5 in the uncond + s * (cond - uncond) convention, p = 0.5, two
time-scale updates with student_update_freq 5, AdamW (0.9, 0.999), weight decay 0.01, grad clip 10,
LoRA rates of FastVideo's LoRA example (rank 32, 2e-4 student, 1e-5 fake). `SHAPES_PRESET` lists the
values the built-in tiny world uses instead; the studio and the docs show both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


# The paper's 4-step schedule (FastGen's Wan recipe); 2-step: [0.999, 0.908, 0.0].
PAPER_T_LIST = (0.999, 0.937, 0.833, 0.624, 0.0)

METHODS = ("dmd2", "dfd")
STUDENT_INPUTS = ("paired", "backward")
CAPTION_REGIMES = ("detailed", "underspecified", "mixed")
MIXED_PRECISIONS = ("auto", "no", "bf16")


@dataclass
class DistillConfig:
    method: str = "dmd2"  # dmd2: from the teacher; dfd: post-training of a DMD2 student (--init)
    base: str = "shapes-tiny"
    data: str = "shapes"  # the built-in world, a folder of videos with captions, or "synthetic" (benchmarks)
    init: str | None = None  # student LoRA to start from (required for dfd unless force_from_teacher)
    # Updates, counted as FastGen and the paper count them: every student_update_freq-th one updates the
    # student, the others the fake score (so 100 steps = 20 student + 80 fake-score updates).
    steps: int = 100
    data_forcing_prob: float = 0.5  # p of DFD; ignored by dmd2
    dfd_t_min: float = 0.0  # noise-stage routing: data forcing only for DMD times t >= this (0 = paper)
    lora_rank: int = 32
    lr_student: float = 2e-4
    lr_fake: float = 1e-5
    student_update_freq: int = 5  # every freq-th step updates the student; freq - 1 fake-score steps between
    guidance: float = 5.0
    t_list: list[float] = field(default_factory=lambda: list(PAPER_T_LIST))
    time_shift: float = 5.0
    student_input: str = "paired"  # paired: real clip noised to a t_list time; backward: simulate from noise
    caption_regime: str = "detailed"  # shapes world only: which captions training draws
    shapes_pool_clips: int = 2048  # shapes world only: clips rendered once and drawn from (a finite data set)
    batch_size: int = 16
    grad_clip: float = 10.0
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    checkpoint_every: int = 50
    preview_every: int = 0  # write preview videos every K steps (0: only at the end)
    nan_patience: int = 3  # consecutive non-finite losses before the run stops
    # Memory and speed (the real-model path): bf16 base weights and autocast, activations recomputed in
    # the backward pass. "auto" is bf16 on a GPU and fp32 on CPU (where bf16 measured no faster).
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    # Video size for folder data (None: the base model's); 4k+1 frames, sizes a multiple of 16.
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    seed: int = 0
    force_from_teacher: bool = False  # allow DFD without a DMD2 student (the paper says it diverges)
    out: str | None = None

    def validate(self) -> "DistillConfig":
        """Raise ValueError with a one-line reason and what to do; returns self."""
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose dmd2 or dfd")
        if not 1 <= self.steps <= 1_000_000:
            raise ValueError(f"steps must be between 1 and 1000000, got {self.steps}")
        if not 0.0 <= self.data_forcing_prob <= 1.0:
            raise ValueError(f"data_forcing_prob must be in [0, 1], got {self.data_forcing_prob}")
        if not 0.0 <= self.dfd_t_min < 1.0:
            raise ValueError(f"dfd_t_min must be in [0, 1), got {self.dfd_t_min}")
        if not 1 <= self.lora_rank <= 1024:
            raise ValueError(f"lora_rank must be between 1 and 1024, got {self.lora_rank}")
        if self.lr_student <= 0 or self.lr_fake <= 0:
            raise ValueError("learning rates must be positive")
        if self.student_update_freq < 1:
            raise ValueError(f"student_update_freq must be at least 1, got {self.student_update_freq}")
        if self.steps < self.student_update_freq:
            raise ValueError(
                f"with {self.steps} steps and student_update_freq {self.student_update_freq} the student is never "
                f"updated (every {self.student_update_freq}th step is a student step); give at least "
                f"{self.student_update_freq} steps"
            )
        t = list(self.t_list)
        if len(t) < 2 or t[-1] != 0.0 or any(a <= b for a, b in zip(t, t[1:])) or t[0] > 1.0:
            raise ValueError(f"t_list must decrease strictly from at most 1 to exactly 0, got {t}")
        if self.student_input not in STUDENT_INPUTS:
            raise ValueError(f"unknown student_input {self.student_input!r}; choose paired or backward")
        if self.caption_regime not in CAPTION_REGIMES:
            raise ValueError(f"unknown caption_regime {self.caption_regime!r}; choose {', '.join(CAPTION_REGIMES)}")
        if not 16 <= self.shapes_pool_clips <= 100_000:
            raise ValueError(f"shapes_pool_clips must be between 16 and 100000, got {self.shapes_pool_clips}")
        if not 1 <= self.batch_size <= 4096:
            raise ValueError(f"batch_size must be between 1 and 4096, got {self.batch_size}")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"unknown mixed_precision {self.mixed_precision!r}; choose auto, no or bf16")
        for name in ("num_frames", "height", "width"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 4096:
                raise ValueError(f"{name} must be between 1 and 4096 (or empty for the model's), got {value}")
        if self.data == "shapes" and any(getattr(self, n) is not None for n in ("num_frames", "height", "width")):
            raise ValueError("num_frames, height and width are for folder data; the shapes world has its own size "
                             "(17 frames, 64x64): leave them empty")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be non-negative, got {self.guidance}")
        if self.method == "dfd" and not self.init and not self.force_from_teacher:
            raise ValueError(
                "DFD is a post-training stage: give --init with a DMD2 student LoRA. From the raw teacher the "
                "student is far from the data, the validity condition E||x_real - G(z,c)||^2 small (paper Eq. 7) "
                "fails, and the paper's run did not converge in 1400 steps; use --force-from-teacher to try anyway"
            )
        if self.init and not (Path(self.init) / "pytorch_lora_weights.safetensors").is_file():
            raise ValueError(f"--init {self.init}: no pytorch_lora_weights.safetensors there; give a student LoRA folder")
        if self.init and (Path(self.init) / "lora_config.json").is_file():
            rank = json.loads((Path(self.init) / "lora_config.json").read_text()).get("rank")
            if rank is not None and int(rank) != self.lora_rank:
                raise ValueError(f"the student in {self.init} has LoRA rank {rank}, not {self.lora_rank}; "
                                 f"set the LoRA rank to {rank} to continue it")
        if self.data not in ("shapes", "synthetic") and not Path(self.data).is_dir():
            raise ValueError(f"--data {self.data!r}: not 'shapes' and not a folder of videos with captions")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DistillConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown distillation setting(s): {', '.join(sorted(unknown))}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        if "t_list" in d:
            d["t_list"] = [float(v) for v in d["t_list"]]
        return cls(**d)


HELP = {
    "method": "dmd2 distills the teacher; dfd post-trains a DMD2 student (give --init)",
    "base": "teacher: shapes-tiny, a local diffusers folder, or a hub id",
    "data": "'shapes' (the built-in world) or a folder of videos with captions",
    "init": "student LoRA folder to start from (a DMD2 student for dfd)",
    "steps": "updates: every student_update_freq-th of the student, the rest of the fake score "
             "(the paper: 25k-30k for DMD2, 100-300 for DFD)",
    "data_forcing_prob": "DFD's p: chance per step that the teacher scores the real clip (paper 0.5)",
    "dfd_t_min": "data forcing only at DMD noise times t >= this (0 = always, the paper)",
    "lora_rank": "rank of the student and fake-score LoRA adapters",
    "lr_student": "AdamW learning rate of the student adapter",
    "lr_fake": "AdamW learning rate of the fake-score adapter",
    "student_update_freq": "every K-th step updates the student, the others the fake score (DMD2's two time-scale rule)",
    "guidance": "teacher CFG scale, uncond + s * (cond - uncond)",
    "t_list": "the student's times, decreasing to 0 (comma list)",
    "time_shift": "shift of the DMD noise-time distribution",
    "student_input": "paired: a real clip noised to a student time (DFD's regime); backward: from pure noise",
    "caption_regime": "shapes world only: detailed (DFD's regime), underspecified or mixed captions",
    "shapes_pool_clips": "shapes world only: how many real clips the run draws from",
    "batch_size": "clips per update",
    "grad_clip": "gradient-norm clip",
    "weight_decay": "AdamW weight decay",
    "checkpoint_every": "write a resumable checkpoint every K steps",
    "preview_every": "write preview videos every K steps (0: at the end only)",
    "nan_patience": "consecutive non-finite losses before the run stops",
    "seed": "random seed (same seed, same run, also after a resume)",
    "force_from_teacher": "allow DFD without a DMD2 student (the paper found it diverges)",
    "mixed_precision": "auto (bf16 on GPU, fp32 on CPU), no, or bf16: frozen base in bf16, forwards autocast",
    "gradient_checkpointing": "recompute activations in the backward pass (less GPU memory, ~30% slower)",
    "num_frames": "frames per training clip, 4k+1 (empty: the base model's; not for the shapes world)",
    "height": "training clip height, a multiple of 16 (empty: the base model's; not for the shapes world)",
    "width": "training clip width, a multiple of 16 (empty: the base model's; not for the shapes world)",
}


# What the built-in world uses (tiny model, CPU minutes): larger LoRA rates, small batches, and
# noise-time shift 3 (its 80-token latents need less of the high-noise emphasis that 480p Wan does).
SHAPES_PRESET = {
    "lora_rank": 16,
    "lr_student": 5e-4,
    "lr_fake": 5e-4,
    "batch_size": 8,
    "guidance": 3.0,
    "time_shift": 3.0,
}
