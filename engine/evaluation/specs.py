"""What each entry of `python -m engine evaluate --models` names: `real`, `real-decoded`, `teacher@STEPS[:cfg=S]`,
or a student. Torch-free, so the command line refuses a bad entry before it imports the models (~10 s here)."""

from __future__ import annotations

from dataclasses import dataclass

from ..models.students import resolve_student


@dataclass
class ModelSpec:
    """One entry of --models: `real`, `real-decoded` (the real clips through the base's autoencoder: the
    reference for sharpness and saturation, engine/evaluation/study_references.py), `teacher@STEPS[:cfg=S]`, or a
    student: a shipped name (dmd2, dfd), a distill job id (with --data-dir), or a LoRA folder."""

    name: str
    kind: str  # "real" | "real-decoded" | "teacher" | "student"
    steps: int = 50
    guidance: float = 5.0
    lora: str | None = None
    task: str = "t2v"  # a student's, from its lora_config.json: i2v when it was trained from first frames

    @classmethod
    def parse(cls, text: str, data_dir: str | None = None) -> ModelSpec:
        text = text.strip()
        if text == "real":
            return cls(name="real", kind="real", steps=0)
        if text == "real-decoded":
            return cls(name="real-decoded", kind="real-decoded", steps=0)
        if text.startswith("teacher@"):
            body, _, opts = text[len("teacher@") :].partition(":")
            try:
                steps = int(body)
                guidance = 5.0
                if opts:
                    key, _, value = opts.partition("=")
                    if key != "cfg":
                        raise ValueError
                    guidance = float(value)
            except ValueError:
                raise ValueError(f"bad model {text!r}: write teacher@STEPS or teacher@STEPS:cfg=SCALE") from None
            if steps < 1:
                raise ValueError(f"bad model {text!r}: steps must be at least 1")
            return cls(name=text, kind="teacher", steps=steps, guidance=guidance)

        try:
            student = resolve_student(text, data_dir)
        except ValueError as err:
            raise ValueError(
                f"unknown model {text!r}: use real, real-decoded, teacher@50, teacher@4, or a student ({err})"
            ) from None
        t_list = student.info.get("t_list") or []
        return cls(
            name=text,
            kind="student",
            steps=max(1, len(t_list) - 1) if t_list else 4,
            guidance=1.0,
            lora=str(student.lora_dir),
            task=student.info.get("task") or "t2v",
        )
