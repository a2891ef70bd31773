"""SampleConfig: what the `sample` job, `python -m engine sample` and the studio generate, each field
with its help line (engine/config/fields.py). Torch-free."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.files import LORA_FILE
from .fields import setting
from .seeds import MAX_SEEDS


@dataclass
class SampleConfig:
    """What to generate. Shared by the CLI, the job row and the studio form."""

    base: str = setting("shapes-tiny", help="base model: shapes-tiny (built in), a diffusers folder or a hub id")
    prompt: str = setting("", help="what the videos should show")
    seeds: list[int] = setting(default_factory=lambda: [1], help="one video per seed: 3, 1-8 or 1,4,9")
    # With a student LoRA, len(t_list) - 1 steps are taken instead.
    steps: int = setting(50, help="sampling steps of the teacher")
    # Students run without CFG.
    guidance: float = setting(5.0, help="classifier-free guidance scale, uncond + s * (cond - uncond)")
    lora: str | None = setting(None, help=f"folder of a student LoRA ({LORA_FILE})")
    t_list: list[float] | None = setting(None, help="student times (default: the student's own, else the paper's)")
    num_frames: int | None = setting(None, help="frames, 4k+1 (default: the model's)")
    height: int | None = setting(None, help="height in pixels (default: the model's)")
    width: int | None = setting(None, help="width in pixels (default: the model's)")
    scale: int = setting(1, help="nearest-neighbour upscaling of the written videos (tiny worlds are 64x64)")
    negative_prompt: str = setting("", help="what the videos should not show")
    image: str | None = setting(
        None, help="first frame for an image-to-video base: a PNG/JPG, or a video whose first frame is used"
    )

    def validate(self) -> SampleConfig:
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
        if self.image is not None and not Path(self.image).is_file():
            raise ValueError(f"no image at {self.image}; give a PNG/JPG or a video whose first frame is used")
        if self.lora is not None and not (Path(self.lora) / LORA_FILE).is_file():
            raise ValueError(f"no student LoRA at {self.lora} (expected {LORA_FILE} there)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)
