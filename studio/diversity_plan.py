"""A Diversity request without its page: the checks and cache folder of N seeds by several models (plan),
their sampling in this process (run) or as `sample` jobs (queue, poll), the grids and metrics table written
to and read back from the cache (write_results, read_results), and the table's columns and headers.
studio/diversity.py builds the tab on it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import engine
from engine import Rendered, still_grid, video_grid, world, write_mp4, write_png

from . import frames, lineup, sample_jobs
from .access import LOCAL, Access
from .admission import check_room, submitter_of
from .files import cache_key
from .identity import LOCAL_OWNER, Identity
from .measures import check_features, clip_metrics, default_features
from .zerogpu import on_gpu_for

SHOWN_SIZE = 128  # each clip of the grid at about this many pixels (8 seeds x 3 models stays readable)
COLUMNS = [
    "model",
    "NFE",
    "diversity",
    "diversity clip",
    "diversity dinov2",
    "adherence",
    "modes covered",
    "mode TV",
    "named correct",
    "saturation",
    "saturation spread",
    "contrast",
    "motion",
    "sharpness",
    "seconds",
]
# Which way is better, shown after the column's name: more varied samples, more modes, closer to the prompt;
# less distance from the world's frequencies. Colour and motion have no better direction (near the teacher's is
# what a student should keep), nor do NFE and seconds, which the table shows as costs.
BETTER = {
    "diversity": "↑",
    "diversity clip": "↑",
    "diversity dinov2": "↑",
    "adherence": "↑",
    "modes covered": "↑",
    "mode TV": "↓",
    "named correct": "↑",
}
# One bar chart per metric, each on its own axis (small values, e.g. motion's, stay visible).
BARS = (
    "diversity",
    "diversity clip",
    "diversity dinov2",
    "adherence",
    "modes covered",
    "mode TV",
    "named correct",
    "saturation",
    "contrast",
    "motion",
    "sharpness",
)
EXPLAINED = (
    "Diversity is 1 - mean pairwise cosine similarity of the recognizer's features over the seeds (paper "
    "Eq. 26); modes covered counts distinct combinations of the factors the prompt leaves free; mode TV is the "
    "total-variation distance of their frequencies from the world's (0 is perfect); named correct is the share "
    "of clips showing every named attribute."
)
DIRECTIONS = (
    "↑: higher is better, ↓: lower is better. Saturation, contrast, motion and sharpness have no better "
    "direction: a student's near the teacher's kept the teacher's look."
)


def heading(column: str, modes: int | None = None) -> str:
    """A column's header: its name, which way is better, and for modes covered the most there could be."""
    arrow = BETTER.get(column)
    shown = f"{column} {arrow}" if arrow else column
    return f"{shown} (of {modes})" if column == "modes covered" and modes else shown


def mode_count(prompt: str, seeds: int, image: Path | None = None) -> int | None:
    """The most modes `seeds` clips of this prompt could cover: the combinations of the factors the caption
    leaves free (only motions from a first frame, which fixes the rest), at most one per seed; None for a
    prompt that is not a caption of the world."""
    try:
        named = world.parse_caption(prompt)
    except ValueError:
        return None
    free = ["motion"] if image is not None else list(world.FACTOR_NAMES)
    count = 1
    for factor in free:
        if factor not in named:
            count *= len(world.FACTORS[factor])
    return min(seeds, count)


@dataclass
class DiversityResult:
    grid_video: str
    still_image: str
    table: pd.DataFrame
    bars: pd.DataFrame  # model, metric, value
    note: str
    modes: int | None = None  # the most modes the seeds could cover (mode_count)


@dataclass
class Plan:
    contenders: list[lineup.Contender]
    folder: Path
    base: str
    prompt: str
    seeds: list[int]
    steps: int
    guidance: float
    features: str = ""  # the feature models, checked: clip:MODEL,dinov2:MODEL
    image: Path | None = None  # the stored first frame of an image-to-video request
    request: tuple = ()  # the request as the job path replans it (the stored frame, not the upload)
    num_frames: int | None = None  # None: the model's own length (Diversity measures at it)


def model_choices(data_dir, base: str) -> list[tuple[str, str]]:
    return [("teacher (50 steps, CFG)", lineup.TEACHER)] + [(c.label, c.key) for c in lineup.students(data_dir, base)]


def plan(
    data_dir: Path,
    public_dir: Path,
    base: str,
    prompt: str,
    n_seeds: int,
    keys: list[str],
    steps: int = 50,
    guidance: float = 5.0,
    features: str | None = None,
    frame=None,
    access: Access = LOCAL,
) -> Plan:
    """Check the request and name its cache folder (settings + weights + feature models + first frame).
    Raises ValueError. `features` None: the app's default feature models. frame: the uploaded first frame
    (image-to-video bases only). access: which server folders and hub ids a visitor may name
    (studio/access.py); the app's own DFD_STUDIO_FEATURES always pass."""
    base, prompt = (base or "").strip(), (prompt or "").strip()
    access.check_model(base)  # before the base is looked at: a refused folder or hub id is never read or fetched
    if not prompt:
        raise ValueError("the prompt is empty; pick one of the world's prompts or type one")
    if not keys:
        raise ValueError("no model is ticked; tick the teacher and at least one student")
    n = int(n_seeds)
    if not 2 <= n <= 16:
        raise ValueError(f"seeds must be between 2 and 16 (diversity needs at least two samples), got {n}")
    image = frames.checked(data_dir, base, frame)  # first: an unknown base is named before its students
    order = [k for _, k in model_choices(data_dir, base)]  # rows: teacher, then DMD2, then DFD students
    keys = sorted(keys, key=lambda k: order.index(k) if k in order else len(order))
    contenders = [lineup.find(data_dir, base, key) for key in keys]
    frames.check_students(contenders, image)
    features = default_features() if features is None else features
    if engine.world_of(base) == "shapes":
        features = ""  # the recognizer measures there
    else:
        access.check_feature_models(features, owners=default_features())  # before check_features fetches a config
        features = check_features(features)
    framed = (image.name,) if image else ()  # a text-to-video request keeps the key it always had
    folder = (
        public_dir
        / "diversity"
        / cache_key(
            [lineup.weights_version(c) for c in contenders], prompt, n, int(steps), float(guidance), features, *framed
        )
    )
    request = (base, prompt, n, keys, int(steps), float(guidance), features, str(image) if image else None)
    return Plan(
        contenders, folder, base, prompt, list(range(1, n + 1)), int(steps), float(guidance), features, image, request
    )


def write_results(p: Plan, rendered: list[Rendered]) -> None:
    """Grid video, still grid and the metrics of each model into the plan's folder."""
    rows, labels, table, notes = [], [], [], set()
    for contender, r in zip(p.contenders, rendered):
        rows.append(list(r.clips))
        labels.append(contender.short)
        measured, note = clip_metrics(p.base, p.prompt, r.clips, p.features, frames.factors_of(p.image))
        if note:
            notes.add(note)
        model = "teacher" if contender.key == lineup.TEACHER else contender.label
        table.append({"model": model, "NFE": r.nfe, **measured, "seconds": round(r.seconds, 2)})
    cols = [f"seed {s}" for s in p.seeds]
    scale = max(1, SHOWN_SIZE // max(rendered[0].clips.shape[2:4]))
    write_mp4(p.folder / "grid.mp4", video_grid(rows, labels, cols, scale=scale), fps=rendered[0].fps)
    write_png(p.folder / "stills.png", still_grid(rows, labels, cols, scale=max(1, scale // 2)))
    note = " ".join(sorted(notes)) or EXPLAINED
    (p.folder / "meta.json").write_text(json.dumps({"rows": table, "note": note, "prompt": p.prompt}, indent=2))


def read_results(p: Plan) -> DiversityResult:
    meta = json.loads((p.folder / "meta.json").read_text())
    shown = [c for c in COLUMNS if c in ("model", "NFE", "seconds") or any(r.get(c) is not None for r in meta["rows"])]
    modes = mode_count(p.prompt, len(p.seeds), p.image) if "modes covered" in shown else None
    table = pd.DataFrame(meta["rows"], columns=shown)
    bars = pd.DataFrame(
        [
            {"model": r["model"], "metric": name, "value": r[name]}
            for r in meta["rows"]
            for name in BARS
            if r.get(name) is not None
        ],
        columns=["model", "metric", "value"],
    )
    teacher = f" The teacher sampled at CFG {p.guidance:g} ({p.steps} steps)."
    of = f" Modes covered is out of {modes}: the most {len(p.seeds)} seeds of this prompt can show." if modes else ""
    return DiversityResult(
        str(p.folder / "grid.mp4"),
        str(p.folder / "stills.png"),
        table,
        bars,
        f"{meta['note']}{of} {DIRECTIONS}{teacher}",
        modes,
    )


def run(
    data_dir: Path,
    public_dir: Path,
    base: str,
    prompt: str,
    n_seeds: int,
    keys: list[str],
    steps: int = 50,
    guidance: float = 5.0,
    features: str | None = None,
    frame=None,
    access: Access = LOCAL,
) -> DiversityResult:
    """Sample seeds 1..N of every chosen model in this process (cached by settings and weights), measure,
    and write the grids into the public folder. Raises ValueError / ModelError."""
    p = plan(data_dir, public_dir, base, prompt, n_seeds, keys, steps, guidance, features, frame, access)
    if not (p.folder / "meta.json").is_file():
        # a lent GPU on ZeroGPU (else as is): seconds for every seed, as large as the base's weights need
        render = on_gpu_for(lineup.render, p.base, len(p.seeds), p.steps, p.num_frames)
        write_results(
            p, [render(c, p.prompt, p.seeds, steps=p.steps, guidance=p.guidance, image=p.image) for c in p.contenders]
        )
    return read_results(p)


def queue(
    data_dir: Path,
    public_dir: Path,
    *request,
    access: Access = LOCAL,
    identity: Identity = LOCAL_OWNER,
    visitor: str | None = None,
) -> tuple[DiversityResult | None, sample_jobs.Pending | None]:
    """The job path: (cached result, None), or (None, the sample jobs queued as `visitor`'s when the visitor's
    cap, the queue's and the disk allow: studio/admission.py)."""
    p = plan(data_dir, public_dir, *request, access=access)
    return sample_jobs.queue(
        data_dir,
        p,
        p.request,
        p.contenders,
        p.seeds,
        read_results,
        before=lambda jobs: check_room(data_dir, access, identity, visitor, jobs, "the sample jobs"),
        submitted_by=submitter_of(identity, visitor),
    )


def poll(data_dir: Path, public_dir: Path, pending: sample_jobs.Pending) -> tuple[DiversityResult | None, str]:
    """(result, "") once the jobs are done, else (None, how far they are). Raises ValueError."""
    return sample_jobs.finish(
        data_dir, pending, lambda *request: plan(data_dir, public_dir, *request), write_results, read_results
    )
