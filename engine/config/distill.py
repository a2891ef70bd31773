"""DistillConfig: the settings of a distillation run, shared by `python -m engine distill`, the
`distill` job row and the studio's Distill form, each field with its help line and choices
(engine/config/fields.py). Torch-free, so a bad setting is refused before anything heavy is imported.

Defaults reproduce the paper's recipe (docs/method.md): 4 student steps on FastGen's t_list, DMD noise
time shifted with shift 5, CFG 5 in the uncond + s * (cond - uncond) convention, p = 0.5, two
time-scale updates with student_update_freq 5, AdamW (0.9, 0.999), weight decay 0.01, grad clip 10,
LoRA rates of FastVideo's LoRA example (rank 32, 2e-4 student, 1e-5 fake). `SHAPES_PRESET` lists the
values the built-in tiny world uses instead; engine/config/build.py layers them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..core.files import LORA_FILE
from ..core.timesteps import PAPER_T_LIST, t_list_problem
from ..datasets.dataset_config import check_data_spec
from ..models.names import base_tasks
from .fields import ConfigError, check_choices, setting

# What the built-in world uses (tiny model, CPU minutes): larger LoRA rates, small batches, and
# noise-time shift 3 (its 80-token latents need less of the high-noise emphasis that 480p Wan does).
SHAPES_PRESET = {
    "lora_rank": 16,
    "lr_student": 5e-4,
    "lr_fake": 5e-4,
    "batch_size": 8,
    "guidance": 3.0,
    "time_shift": 3.0,
    "chunk_frames": 2,  # its 5 latent frames as chunks [0], [1, 2], [3, 4]
}
SHAPES_BASE = "shapes-tiny"  # the default base
SHAPES_BASES = (SHAPES_BASE, "shapes-tiny-i2v", "shapes-tiny-ti2v")  # the built-in teachers: runs take SHAPES_PRESET


@dataclass
class DistillConfig:
    method: str = setting(
        "dmd2",
        choices=("dmd2", "dfd"),
        label="Method",
        help="dmd2 distills the teacher; dfd post-trains a DMD2 student (give init)",
    )
    base: str = setting(
        SHAPES_BASE, label="Base model", help="teacher: shapes-tiny, a local diffusers folder, or a hub id"
    )
    task: str = setting(
        "t2v",
        choices=("t2v", "i2v", "ar"),
        help="t2v: from a caption; i2v: also from the first frame of each real clip (the base must "
        "be an image-to-video model); ar: a causal text-to-video student that generates chunk "
        "after chunk with a KV cache, trained on its own rollouts (Self-Forcing)",
    )
    chunk_frames: int = setting(
        3,
        help="task ar: latent frames per chunk after the lone first frame (Self-Forcing: "
        "3); each chunk attends to itself and the chunks before it",
    )
    data: str = setting(
        "shapes",
        label="Data",
        help="'shapes' (the built-in world), a folder of videos with captions, a data-set config "
        "(YAML/TOML) naming folders, or 'synthetic' (benchmarks: random latents)",
    )
    windows_per_video: int = setting(
        1,
        help="folder data: training windows taken per video, one after another from "
        "its start (0: every whole window); a data-set config's own value wins",
    )
    cache_dir: str = setting(
        "",
        help="folder data: where encoded windows and captions are kept (empty: .dfd_cache "
        "in each data folder; studio jobs use the data dir's cache/)",
    )
    data_workers: int = setting(
        0,
        help="folder data: background processes that decode videos while the model encodes "
        "them and read batches ahead of each step (0: none; the same batches either way)",
    )
    init: str | None = setting(
        None, label="Start DFD from", help="student LoRA folder to start from (a DMD2 student for dfd)"
    )
    # Updates, counted as FastGen and the paper count them: every student_update_freq-th one updates the
    # student, the others the fake score (so 100 steps = 20 student + 80 fake-score updates).
    steps: int = setting(
        100,
        help="updates: every student_update_freq-th of the student, the rest of the fake "
        "score (the paper: 25k-30k for DMD2, 100-300 for DFD)",
    )
    data_forcing_prob: float = setting(
        0.5, help="DFD's p: chance per step that the teacher scores the real clip (paper 0.5); ignored by dmd2"
    )
    dfd_t_min: float = setting(0.0, help="data forcing only at DMD noise times t >= this (0 = always, the paper)")
    # Variants beyond the paper's one line (docs/method.md, "Variants"); the defaults are the paper's DFD.
    data_forcing_schedule: str = setting(
        "constant",
        choices=("constant", "decay", "rise"),
        help="DFD's p over the run: constant (the paper), decay (p to 0) or rise (0 to p), linear in the step",
    )
    data_forcing_granularity: str = setting(
        "step",
        choices=("step", "sample"),
        help="one data-forcing coin per step for the whole batch (the paper) or one per sample",
    )
    data_forcing_blend: bool = setting(
        False,
        help="instead of a coin, blend the teacher's targets: (1 - p) on the "
        "student's sample + p on the real clip, every step",
    )
    lora_rank: int = setting(32, help="rank of the student and fake-score LoRA adapters")
    lr_student: float = setting(2e-4, help="AdamW learning rate of the student adapter")
    lr_fake: float = setting(1e-5, help="AdamW learning rate of the fake-score adapter")
    student_update_freq: int = setting(
        5, help="every K-th step updates the student, the others the fake score (DMD2's two time-scale rule)"
    )
    guidance: float = setting(5.0, help="teacher CFG scale, uncond + s * (cond - uncond)")
    t_list: list[float] = setting(
        default_factory=lambda: list(PAPER_T_LIST), help="the student's times, decreasing to 0 (comma list)"
    )
    time_shift: float = setting(5.0, help="shift of the DMD noise-time distribution")
    student_input: str = setting(
        "paired",
        choices=("paired", "backward"),
        help="paired: a real clip noised to a student time (DFD's regime); backward: simulated from pure noise",
    )
    caption_regime: str = setting(
        "detailed",
        choices=("detailed", "underspecified", "mixed"),
        help="shapes world only: detailed (DFD's regime), underspecified or mixed captions",
    )
    shapes_pool_clips: int = setting(
        2048, help="shapes world only: how many real clips the run renders once and draws from (a finite data set)"
    )
    batch_size: int = setting(16, help="clips per update (per process when several train together)")
    grad_accum: int = setting(
        1,
        help="micro-batches of batch_size per update, their gradients summed before "
        "the step (a larger batch in the same memory)",
    )
    grad_clip: float = setting(10.0, help="gradient-norm clip")
    weight_decay: float = setting(0.01, help="AdamW weight decay")
    betas: tuple[float, float] = setting((0.9, 0.999), help="AdamW betas (two numbers)")
    checkpoint_every: int = setting(50, help="write a resumable checkpoint every K steps")
    preview_every: int = setting(0, help="write preview videos every K steps (0: at the end only)")
    nan_patience: int = setting(3, help="consecutive non-finite losses before the run stops")
    # Memory and speed (the real-model path): "auto" is bf16 on a GPU and fp32 on CPU (where bf16
    # measured no faster).
    mixed_precision: str = setting(
        "auto",
        choices=("auto", "no", "bf16"),
        help="auto (bf16 on GPU, fp32 on CPU), no, or bf16: frozen base in bf16, forwards autocast",
    )
    gradient_checkpointing: bool = setting(
        False, help="recompute activations in the backward pass (less GPU memory, ~30% slower)"
    )
    vae_tiling: bool = setting(
        False,
        help="encode the data's clips in overlapping tiles (less GPU memory at the first pass, more VAE FLOPs; "
        "`engine plan --vae-tiling` shows both)",
    )
    block_swap: int = setting(
        0,
        help="keep the frozen weights of the base's last N transformer blocks in host memory, each brought to the "
        "GPU for its forward (less GPU memory, a PCIe transfer per block per forward; needs gradient "
        "checkpointing; `engine plan --block-swap N` shows both; 0: off)",
    )
    base_int8: bool = setting(
        False,
        help="store the frozen base's transformer-block Linear weights in int8 (torchao weight-only, one scale "
        "per row: about half of bf16's weight memory, LoRA adapters in full precision; one GPU, both experts of "
        "a two-expert base; speed on a GPU unmeasured; `engine plan --base-int8` shows the memory)",
    )
    shard_base: bool = setting(
        False,
        help="several processes: shard the frozen base over them (FSDP2), the LoRA "
        "adapters kept whole (an accelerate FSDP config turns it on too)",
    )
    # Video size for folder data (None: the base model's).
    num_frames: int | None = setting(
        None, help="frames per training clip, 4k+1 (empty: the base model's; not for the shapes world)"
    )
    height: int | None = setting(
        None, help="training clip height, a multiple of 16 (empty: the base model's; not for the shapes world)"
    )
    width: int | None = setting(
        None, help="training clip width, a multiple of 16 (empty: the base model's; not for the shapes world)"
    )
    seed: int = setting(0, help="random seed (same seed, same run, also after a resume)")
    log_with: str = setting(
        "none",
        choices=("none", "tensorboard", "trackio", "wandb"),
        help="also log the loss terms and previews to this tracker (its package must be "
        "installed); metrics.jsonl is always written",
    )
    force_from_teacher: bool = setting(False, help="allow DFD without a DMD2 student (the paper found it diverges)")
    out: str | None = setting(None, help="output folder (LoRA, config, checkpoints, metrics)")

    def validate(self) -> DistillConfig:
        """Raise ConfigError (a ValueError) naming the field, with a one-line reason and what to do; returns self."""
        check_choices(self)
        self._check_ranges()
        self._check_schedule()
        self._check_video_size()
        self._check_sources()
        return self

    def _check_ranges(self) -> None:
        within = {
            "steps": (1, 1_000_000),
            "lora_rank": (1, 1024),
            "shapes_pool_clips": (16, 100_000),
            "batch_size": (1, 4096),
            "grad_accum": (1, 1024),
            "windows_per_video": (0, 100_000),
            "data_workers": (0, 32),
            "chunk_frames": (1, 1024),
        }
        for name, (low, high) in within.items():
            if not low <= getattr(self, name) <= high:
                raise ConfigError(name, f"{{{name}}} must be between {low} and {high}, got {getattr(self, name)}")
        if self.block_swap < 0:
            raise ConfigError(
                "block_swap", f"{{block_swap}} must be 0 (off) or a number of blocks, got {self.block_swap}"
            )
        if self.block_swap and not self.gradient_checkpointing:
            raise ConfigError(
                "block_swap",
                "{block_swap} needs {gradient_checkpointing}: without it the backward reads every block's weights "
                "after the block has left the GPU; turn it on",
                refers=("gradient_checkpointing",),
            )
        if self.block_swap and self.shard_base:
            raise ConfigError(
                "block_swap",
                "{block_swap} and {shard_base} both take the frozen weights off each GPU; choose one",
                refers=("shard_base",),
            )
        for other in ("block_swap", "shard_base"):
            if self.base_int8 and getattr(self, other):
                raise ConfigError(
                    "base_int8",
                    f"{{base_int8}} and {{{other}}} were not tried together (torchao's Int8Tensor moved or "
                    "sharded); choose one",
                    refers=(other,),
                )
        if self.data_workers and self.data in ("shapes", "synthetic"):
            raise ConfigError(
                "data_workers",
                f"{{data_workers}} is for folder data (videos decoded, batches read from "
                f"disk); the {self.data} data is held in memory: leave it 0",
            )
        if not 0.0 <= self.data_forcing_prob <= 1.0:
            raise ConfigError(
                "data_forcing_prob", f"{{data_forcing_prob}} must be in [0, 1], got {self.data_forcing_prob}"
            )
        if not 0.0 <= self.dfd_t_min < 1.0:
            raise ConfigError("dfd_t_min", f"{{dfd_t_min}} must be in [0, 1), got {self.dfd_t_min}")
        if self.data_forcing_blend and self.data_forcing_granularity == "sample":
            raise ConfigError(
                "data_forcing_granularity",
                "{data_forcing_granularity} sample draws coins, which "
                "{data_forcing_blend} replaces by a weight; choose one of the two",
                refers=("data_forcing_blend",),
            )
        for name in ("lr_student", "lr_fake"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, f"{{{name}}} must be positive, got {getattr(self, name)}")
        for name in ("student_update_freq", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(name, f"{{{name}}} must be at least 1, got {getattr(self, name)}")
        if self.guidance < 0:
            raise ConfigError("guidance", f"{{guidance}} must be non-negative, got {self.guidance}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError("betas", f"{{betas}} must be two numbers in [0, 1), got {list(self.betas)}")

    def _check_schedule(self) -> None:
        freq = self.student_update_freq
        if self.steps < freq:
            raise ConfigError(
                "steps",
                f"with {self.steps} steps and student_update_freq {freq} the student is never "
                f"updated (every {freq}th step is a student step); give at least {freq} steps",
            )
        problem = t_list_problem(self.t_list)
        if problem is not None:
            raise ConfigError("t_list", "{t_list} " + problem)

    def _check_video_size(self) -> None:
        size = ("num_frames", "height", "width")
        for name in size:
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 4096:
                raise ConfigError(
                    name, f"{{{name}}} must be between 1 and 4096 (or empty for the model's), got {value}"
                )
        if self.data == "shapes" and any(getattr(self, n) is not None for n in size):
            raise ConfigError(
                "num_frames",
                "{num_frames}, {height} and {width} are for folder data; the shapes world "
                "has its own size (17 frames, 64x64): leave them empty",
                refers=("height", "width"),
            )

    def _check_sources(self) -> None:
        if self.method == "dfd" and not self.init and not self.force_from_teacher:
            raise ConfigError(
                "init",
                "DFD is a post-training stage: start it from a DMD2 student LoRA ({init}). From the raw teacher the "
                "student is far from the data, the validity condition E||x_real - G(z,c)||^2 small (paper Eq. 7) "
                "fails, and the paper's run did not converge in 1400 steps; set {force_from_teacher} to try anyway",
                refers=("force_from_teacher",),
            )
        self.check_files()

    def check_files(self) -> None:
        """The checks that read files (the student to start from, the base's task, the data): validate() runs
        them, and a queued job again when it starts, since those files may have changed in between."""
        if self.init and not (Path(self.init) / LORA_FILE).is_file():
            raise ConfigError("init", f"{{init}}: no {LORA_FILE} in {self.init}; give a student LoRA folder")
        if self.init and (Path(self.init) / "lora_config.json").is_file():
            init_meta = json.loads((Path(self.init) / "lora_config.json").read_text())
            rank = init_meta.get("rank")
            if rank is not None and int(rank) != self.lora_rank:
                raise ConfigError(
                    "lora_rank",
                    f"the student in {self.init} has LoRA rank {rank}, not {self.lora_rank}; "
                    f"set the LoRA rank to {rank} to continue it",
                )
            chunk = init_meta.get("chunk_frames")
            if self.task == "ar" and chunk is not None and int(chunk) != self.chunk_frames:
                raise ConfigError(
                    "chunk_frames",
                    f"the causal student in {self.init} has {chunk}-frame chunks, not "
                    f"{self.chunk_frames}; set {{chunk_frames}} to {chunk} to continue it",
                )
        tasks = base_tasks(self.base)  # from the base's files, torch-free; None: the loaded model is checked
        known = tasks[0] if tasks else None
        needed = "i2v" if self.task == "i2v" else "t2v"  # any other task's student generates from text alone
        if tasks is not None and needed not in tasks:
            kind = {"t2v": "a text-to-video", "i2v": "an image-to-video"}
            raise ConfigError(
                "task",
                f"{{task}} {self.task} needs {kind[needed]} base, but {self.base} is "
                f"{kind[known]} model; choose {known}, or another base",
            )
        try:
            check_data_spec(self.data)
        except ValueError as err:
            raise ConfigError("data", f"{{data}}: {err}") from None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DistillConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(unknown[0], f"unknown distillation setting(s): {', '.join(unknown)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        if "t_list" in d:
            d["t_list"] = [float(v) for v in d["t_list"]]
        return cls(**d)
