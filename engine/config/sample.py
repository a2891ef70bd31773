"""SampleConfig: what the `sample` job, `python -m engine sample` and the studio generate. Torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..models.students import LORA_FILE
from .seeds import MAX_SEEDS


@dataclass
class SampleConfig:
    """What to generate. Shared by the CLI, the job row and the studio form."""

    base: str = "shapes-tiny"
    prompt: str = ""
    seeds: list[int] = field(default_factory=lambda: [1])
    steps: int = 50  # teacher: Euler steps; with a student LoRA: len(t_list) - 1 is used instead
    guidance: float = 5.0  # CFG scale (uncond + s * (cond - uncond)); students run without CFG
    lora: str | None = None  # folder with pytorch_lora_weights.safetensors (a student)
    t_list: list[float] | None = None  # student times; default: the student's own, else the paper's
    num_frames: int | None = None  # default: the base model's
    height: int | None = None
    width: int | None = None
    scale: int = 1  # nearest-neighbour upscaling of the written mp4 (tiny worlds are 64x64)
    negative_prompt: str = ""

    def validate(self) -> "SampleConfig":
        """Raise ValueError with a one-line reason for any bad setting; returns self."""
        if not self.prompt or not self.prompt.strip():
            raise ValueError("the prompt is empty; describe the video to generate")
        if not self.seeds:
            raise ValueError("no seeds given; use e.g. 1-8")
        if any((not isinstance(s, int)) or s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be non-negative integers, got {self.seeds}")
        if len(self.seeds) > MAX_SEEDS:
            raise ValueError(f"too many seeds ({len(self.seeds)}); at most {MAX_SEEDS}")
        if not 1 <= self.steps <= 1000:
            raise ValueError(f"steps must be between 1 and 1000, got {self.steps}")
        if not 0.0 <= self.guidance <= 30.0:
            raise ValueError(f"guidance (CFG scale) must be between 0 and 30, got {self.guidance}")
        if not 1 <= self.scale <= 8:
            raise ValueError(f"scale must be between 1 and 8, got {self.scale}")
        if self.num_frames is not None and (self.num_frames < 1 or (self.num_frames - 1) % 4):
            raise ValueError(f"num_frames must be 4k+1 (e.g. 17), got {self.num_frames}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and (value <= 0 or value % 2):
                raise ValueError(f"{name} must be a positive even number, got {value}")
        if self.lora is not None and not (Path(self.lora) / LORA_FILE).is_file():
            raise ValueError(f"no student LoRA at {self.lora} (expected {LORA_FILE} there)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)
