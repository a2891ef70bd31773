"""Where few-step students come from: the ones shipped with the repo (made by recorded commands) and
the ones finished distillation jobs produced. The studio's Compare, Diversity and Publish tabs and
`python -m engine evaluate` name students through this module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.files import COMFY_FILE, LORA_FILE, PREVIEWS_FILE  # noqa: F401  (a student's files, named here too)
from ..core.timesteps import PAPER_T_LIST

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "students"


@dataclass(frozen=True)
class Student:
    name: str  # "dmd2", "dfd" for the shipped ones; the job id for a job's student
    lora_dir: Path
    base: str
    method: str
    info: dict  # lora_config.json (rank, t_list, steps, ...) and, for shipped ones, how it was made


def _read(folder: Path, name: str) -> Student | None:
    if not (folder / LORA_FILE).is_file():
        return None
    info = json.loads((folder / "lora_config.json").read_text()) if (folder / "lora_config.json").is_file() else {}
    made = folder / "made_by.json"
    if made.is_file():
        info = {**info, **json.loads(made.read_text())}
    return Student(
        name=name, lora_dir=folder, base=info.get("base", "shapes-tiny"), method=info.get("method", "?"), info=info
    )


def shipped_students() -> list[Student]:
    """The students bundled under engine/assets/students/<name>/ (e.g. dmd2, dfd)."""
    if not SHIPPED_DIR.is_dir():
        return []
    found = (_read(folder, folder.name) for folder in sorted(SHIPPED_DIR.iterdir()) if folder.is_dir())
    return [s for s in found if s is not None]


def job_students(data_dir: str | Path) -> list[Student]:
    """Students of succeeded distill jobs in a studio data folder, newest first."""
    import storage  # sqlalchemy: only when a data folder's jobs are read, not by every student lookup

    out = []
    for job in storage.jobs.list_jobs(storage.open_database(data_dir), ["succeeded"], limit=200):
        if job.kind != "distill":
            continue
        student = _read(Path(job.dir) / "lora", job.id)
        if student is not None:
            out.append(student)
    return out


def student_t_list(lora_dir: str | Path) -> list[float]:
    """The t_list a student was trained with (its lora_config.json), else the paper's."""
    meta = Path(lora_dir) / "lora_config.json"
    if meta.is_file():
        t_list = json.loads(meta.read_text()).get("t_list")
        if t_list:
            return [float(t) for t in t_list]
    return list(PAPER_T_LIST)


def training_guidance(lora_dir: str | Path) -> float | None:
    """The teacher CFG a student was distilled with: its lora_config.json's, else its run's distill_config.json
    (the student's own folder, or a studio job's folder above its lora/), None when neither says."""
    folder = Path(lora_dir)
    for path in (folder / "lora_config.json", folder / "distill_config.json", folder.parent / "distill_config.json"):
        try:
            guidance = json.loads(path.read_text()).get("guidance") if path.is_file() else None
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(guidance, (int, float)) and not isinstance(guidance, bool):
            return float(guidance)
    return None


def resolve_student(name: str, data_dir: str | Path | None = None) -> Student:
    """A student by shipped name, job id, or LoRA folder path. Raises ValueError saying what exists."""
    for student in shipped_students():
        if student.name == name:
            return student
    if data_dir is not None and Path(data_dir, "studio.db").is_file():
        for student in job_students(data_dir):
            if student.name == name:
                return student
    folder = Path(name)
    if folder.is_dir():
        student = _read(folder, folder.name)
        if student is not None:
            return student
    known = [s.name for s in shipped_students()]
    raise ValueError(
        f"no student {name!r}: give a shipped student ({', '.join(known) or 'none shipped yet'}), "
        "the id of a finished distill job, or a folder with pytorch_lora_weights.safetensors"
    )
