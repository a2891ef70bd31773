"""The models the Compare, Diversity and Publish tabs put side by side: the teacher of a base and the
students of that base (shipped ones and those of finished distill jobs), and sampling them in the web
process with one shared model per base and one sampling at a time.

Synchronous sampling is right for the tiny built-in world (seconds on a CPU); a GPU-scale base belongs in
`sample` jobs (see docs/studio.md).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.models import students as student_registry

TEACHER = "teacher"
DEFAULT_BASE = "shapes-tiny"
METHOD_NAMES = {"dmd2": "DMD2", "dfd": "DFD", TEACHER: "teacher"}
METHOD_ORDER = {"dmd2": 0, "dfd": 1}


@dataclass(frozen=True)
class Contender:
    key: str  # "teacher", a shipped student's name, or a job id
    label: str  # what the page shows: "DMD2 (shipped)", "DFD · j-20261121-ab12cd"
    base: str
    method: str  # teacher | dmd2 | dfd
    lora_dir: Path | None = None
    info: dict | None = None

    @property
    def short(self) -> str:
        """A label that fits a grid row: "teacher", "DMD2", "DFD ab12cd"."""
        if self.key == TEACHER:
            return "teacher"
        name = METHOD_NAMES.get(self.method, self.method)
        return f"{name} {self.key[-6:]}" if self.key.startswith("j-") else name


@dataclass
class Rendered:
    clips: np.ndarray  # uint8 (seeds, F, H, W, 3)
    nfe: int  # network evaluations per video
    seconds: float  # sampling + decoding, model loading excluded
    fps: int


def same_base(a: str, b: str) -> bool:
    """Two base names point at the same model (a name, or the same folder however it is written)."""
    a, b = (a or "").strip(), (b or "").strip()
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.is_dir() and pb.is_dir() and pa.resolve() == pb.resolve()


def teacher(base: str) -> Contender:
    return Contender(TEACHER, "teacher", base, TEACHER)


def _shipped_label(student) -> str:
    """'DMD2 (shipped)'; a shipped name beyond the method shows too: 'DMD2 · dmd2-continued (shipped)'."""
    method = METHOD_NAMES.get(student.method, student.method)
    extra = "" if student.name == student.method else f" · {student.name}"
    return f"{method}{extra} (shipped)"


def students(data_dir: str | Path, base: str | None = None, method: str | None = None) -> list[Contender]:
    """Shipped students first, then job students newest first; only those of `base` and `method` if given."""
    shipped = sorted(student_registry.shipped_students(), key=lambda s: (METHOD_ORDER.get(s.method, 9), s.name))
    found = [(s, _shipped_label(s)) for s in shipped]
    from_jobs = sorted(student_registry.job_students(data_dir), key=lambda s: METHOD_ORDER.get(s.method, 9))  # stable
    found += [(s, f"{METHOD_NAMES.get(s.method, s.method)} · {s.name}") for s in from_jobs]
    out = []
    for student, label in found:
        if base is not None and not same_base(student.base, base):
            continue
        if method is not None and student.method != method:
            continue
        out.append(Contender(student.name, label, student.base, student.method, student.lora_dir, student.info))
    return out


def find(data_dir: str | Path, base: str, key: str) -> Contender:
    """The teacher or a student of `base` by key; ValueError saying what to pick otherwise."""
    if key == TEACHER:
        return teacher(base)
    for contender in students(data_dir):
        if contender.key == key:
            if not same_base(contender.base, base):
                raise ValueError(
                    f"the student {key} was distilled from {contender.base}, not {base}; pick a student of {base}"
                )
            return contender
    raise ValueError(f"no student {key!r} any more; pick one from the list (it refreshes when the tab opens)")


_models: dict[str, tuple[tuple, object]] = {}  # base -> (weights version, model)
_loras: dict[tuple[str, str], tuple] = {}  # (base, student folder) -> weights version when loaded
_lock = threading.RLock()  # one sampling at a time: models are shared and the CPU is small


def model(base: str):
    """The loaded base model, cached per name and reloaded when its weights change on disk (a teacher
    being retrained). Raises engine.models.ModelError."""
    from engine.models.base import load_base_model

    with _lock:
        version = base_version(base)
        cached = _models.get(base)
        if cached is None or cached[0] != version:
            _models[base] = (version, load_base_model(base))
        return _models[base][1]


def render(contender: Contender, prompt: str, seeds: list[int], steps: int = 50, guidance: float = 5.0) -> Rendered:
    """Sample one clip per seed (the teacher with `steps` and CFG `guidance`; a student on its own
    few-step time list). Raises ValueError (bad settings) or ModelError."""
    from engine.config.sample import SampleConfig
    from engine.generation.generate import sample_frames

    cfg = SampleConfig(base=contender.base, prompt=prompt, seeds=list(seeds), steps=int(steps),
                       guidance=float(guidance), lora=str(contender.lora_dir) if contender.lora_dir else None)
    cfg.validate()
    with _lock:
        if contender.lora_dir is not None:  # a student rewritten on disk: its adapter must be loaded afresh
            from .files import file_version

            key, version = (contender.base, str(contender.lora_dir)), file_version(contender.lora_dir / "pytorch_lora_weights.safetensors")
            if _loras.setdefault(key, version) != version:
                _models.pop(contender.base, None)
                _loras[key] = version
        base_model = model(contender.base)
        started = time.perf_counter()
        clips, nfe = sample_frames(base_model, cfg)
        seconds = time.perf_counter() - started
    return Rendered(clips=clips, nfe=nfe, seconds=seconds, fps=base_model.fps)


def world_of(base: str) -> str | None:
    """'shapes' for a base of the built-in world (its metrics apply), else None."""
    return model(base).meta.get("world")


def base_version(base: str) -> tuple:
    """Sizes and times of a local base's transformer weights (() for a hub id)."""
    from engine.models.base import ModelError, resolve_model

    from .files import file_version

    try:
        _, folder = resolve_model(base)
    except ModelError:
        return ()
    return tuple(file_version(p) for p in sorted((folder / "transformer").glob("*.safetensors"))) if folder else ()


def weights_version(contender: Contender) -> tuple:
    """What the weights behind a contender are (base transformer + LoRA), for cache keys: a retrained
    teacher or student never shows an old result."""
    from .files import file_version

    lora = contender.lora_dir / "pytorch_lora_weights.safetensors" if contender.lora_dir else None
    return (contender.base, contender.key, base_version(contender.base), file_version(lora))
