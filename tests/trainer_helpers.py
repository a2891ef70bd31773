"""What several trainer tests share: a short run's config, a callback that crashes a run at a given step, and a
student's LoRA tensors read back from its folder."""

from __future__ import annotations

from pathlib import Path

from engine.config.distill import DistillConfig
from engine.distill.trainer import Callbacks


class StopAt(Callbacks):
    """Raise KeyboardInterrupt (as a crash or Ctrl-C would) once the run reaches `step`."""

    def __init__(self, step: int):
        self.step = step

    def on_step(self, step, total, terms, it_per_s, eta_s):
        if step == self.step:
            raise KeyboardInterrupt("simulated crash")


def student_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(Path(folder) / "pytorch_lora_weights.safetensors")


def tiny_config(base, **kw) -> DistillConfig:
    """A short DMD2 run of the tiny Wan at `base` (4 steps, 2 student updates, rank 4), `kw` overriding."""
    values = dict(
        base=str(base),
        steps=4,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        lr_student=1e-3,
        lr_fake=1e-3,
        checkpoint_every=2,
        guidance=3.0,
        seed=3,
        shapes_pool_clips=64,
    )
    values.update(kw)
    return DistillConfig(**values)
