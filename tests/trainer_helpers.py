"""What several trainer tests share: a callback that crashes a run at a given step, and a student's LoRA
tensors read back from its folder."""

from __future__ import annotations

from pathlib import Path

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
