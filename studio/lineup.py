"""The models the Compare, Diversity and Publish tabs put side by side: the teacher of a base and the
students of that base (shipped ones and those of finished distill jobs), as the page names and lists them.
Sampling them is the engine's (`engine.render`: one shared model per base, one sampling at a time).

Sampling in the web process is right for the tiny built-in world on a CPU (seconds); every other base, and
every base on a machine with a GPU, belongs in `sample` jobs (see docs/studio.md): the worker lets one job
hold the GPU at a time, and the web process never takes it from a training job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import engine
from engine import Rendered

TEACHER = "teacher"
DEFAULT_BASE = "shapes-tiny"
METHOD_NAMES = {"dmd2": "DMD2", "dfd": "DFD", TEACHER: "teacher"}
METHOD_ORDER = {"dmd2": 0, "dfd": 1}
DEFAULT_GUIDANCE = 5.0  # the teacher's CFG when no chosen student records the one it was distilled with


@dataclass(frozen=True)
class Contender:
    key: str  # "teacher", a shipped student's name, or a job id
    label: str  # what the page shows: "DMD2 (shipped)", "DFD · j-20261121-ab12cd"
    base: str
    method: str  # teacher | dmd2 | dfd
    lora_dir: Path | None = None
    info: dict | None = None

    @property
    def causal(self) -> bool:
        """A causal (autoregressive) student: the engine samples it chunk by chunk (its lora_config.json says so)."""
        return bool((self.info or {}).get("causal"))

    @property
    def short(self) -> str:
        """A label that fits a grid row: "teacher", "DMD2", "DFD ab12cd", "causal DMD2 ab12cd"."""
        if self.key == TEACHER:
            return "teacher"
        name = method_name(self.method, self.info)
        return f"{name} {self.key[-6:]}" if self.key.startswith("j-") else name


def method_name(method: str, info: dict | None) -> str:
    """The method as pages name it: DMD2, or causal DMD2 for a causal student (its method alone would not tell
    it from a bidirectional one)."""
    name = METHOD_NAMES.get(method, method)
    return f"causal {name}" if (info or {}).get("causal") else name


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
    method = method_name(student.method, student.info)
    extra = "" if student.name == student.method else f" · {student.name}"
    return f"{method}{extra} (shipped)"


def students(data_dir: str | Path, base: str | None = None, method: str | None = None) -> list[Contender]:
    """Shipped students first, then job students newest first; only those of `base` and `method` if given."""
    shipped = sorted(engine.shipped_students(), key=lambda s: (METHOD_ORDER.get(s.method, 9), s.name))
    found = [(s, _shipped_label(s)) for s in shipped]
    from_jobs = sorted(engine.job_students(data_dir), key=lambda s: METHOD_ORDER.get(s.method, 9))  # stable
    found += [(s, f"{method_name(s.method, s.info)} · {s.name}") for s in from_jobs]
    out = []
    for student, label in found:
        if base is not None and not same_base(student.base, base):
            continue
        if method is not None and student.method != method:
            continue
        out.append(Contender(student.name, label, student.base, student.method, student.lora_dir, student.info))
    return out


def bases(data_dir: str | Path, current: str | None = None) -> list[str]:
    """The bases a page offers to pick from: the built-in ones, those of the shipped and finished job students
    (a student is compared with the teacher it learnt from), and the current one, each once."""
    out: list[str] = []
    for name in [*engine.BUILTIN_MODELS, *(s.base for s in students(data_dir)), current or ""]:
        if name and not any(same_base(name, known) for known in out):
            out.append(name)
    return out


def training_guidance(contenders: list[Contender]) -> tuple[float | None, str]:
    """(the teacher CFG the students were distilled with, why): the CFG of their runs (lora_config.json or
    the run's config), so the teacher on the page is the one they learnt from; (None, "") with no student
    that records one. Students of different CFGs give the first one's and name each."""
    found = [(c, engine.training_guidance(c.lora_dir)) for c in contenders if c.lora_dir is not None]
    found = [(c, g) for c, g in found if g is not None]
    if not found:
        return None, ""
    values = sorted({g for _, g in found})
    if len(values) == 1:
        return values[0], f"the students were distilled from the teacher at CFG {values[0]:g}"
    each = ", ".join(f"{c.label} at CFG {g:g}" for c, g in found)
    return found[0][1], f"the students were distilled from different teachers: {each}"


def teacher_cfg(data_dir: str | Path, base: str, keys) -> tuple[float, str]:
    """The teacher CFG to compare the students with these keys against, and why: their training_guidance, else
    DEFAULT_GUIDANCE (students gone or of another base are left out: the request names them when made)."""
    chosen = []
    for key in filter(None, keys or []):
        try:
            chosen.append(find(data_dir, base, key))
        except ValueError:
            continue
    value, why = training_guidance(chosen)
    return (DEFAULT_GUIDANCE, "no chosen student records its training CFG") if value is None else (value, why)


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


def render(
    contender: Contender,
    prompt: str,
    seeds: list[int],
    steps: int = 50,
    guidance: float = 5.0,
    image: str | Path | None = None,
    num_frames: int | None = None,
) -> Rendered:
    """Sample one clip per seed (the teacher with `steps` and CFG `guidance`; a student on its own
    few-step time list), from the first frame `image` for an image-to-video base, `num_frames` long (None:
    the model's own length). Raises ValueError (bad settings) or ModelError."""
    return engine.render(
        contender.base,
        prompt,
        seeds,
        steps=steps,
        guidance=guidance,
        lora_dir=contender.lora_dir,
        image=image,
        num_frames=num_frames,
    )


def weights_version(contender: Contender) -> tuple:
    """What the weights behind a contender are (base transformer + LoRA), for cache keys: a retrained
    teacher or student never shows an old result."""
    return (contender.base, contender.key, *engine.weights_version(contender.base, contender.lora_dir))


def in_web_process_refusal(base: str, as_jobs: bool) -> str | None:
    """Why a request may not sample in the web process, or None: a base outside the tiny built-in world on
    a machine with a GPU, which a training job may hold, is sampled by the worker only."""
    if as_jobs or not engine.accelerator_present() or engine.world_of(base) == "shapes":
        return None
    return (
        f"{base} is sampled by the worker on this machine's GPU (one job holds it at a time), not in the web "
        "process: tick Run as sample jobs"
    )
