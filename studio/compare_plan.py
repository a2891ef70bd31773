"""A Compare request without its page: the checks and cache folder of one prompt and seed through the
teacher and two students (plan), their sampling in this process (compare) or as `sample` jobs (queue, poll),
and the clips, composite and per-clip figures written to and read back from the cache (write_results,
read_results). studio/compare.py builds the tab on it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import engine
from engine import Rendered, side_by_side, write_mp4

from . import frames, lineup, sample_jobs
from .access import LOCAL, Access
from .admission import check_room, submitter_of
from .files import cache_key
from .identity import LOCAL_OWNER, Identity
from .measures import clip_metrics, default_features
from .zerogpu import on_gpu_for

MAX_FRAMES = 161  # twice Wan's 81: a longer clip from the bidirectional teacher would not fit a GPU
SHOWN_SIZE = 256  # small clips are upscaled (nearest) to about this many pixels
# A clip's own figures, in the order shown; diversity, modes and spreads need several clips, so are not here.
FIGURES = ("adherence", "named correct", "saturation", "contrast", "motion", "sharpness")
NO_ADHERENCE = (
    "Prompt adherence needs a CLIP model: start the studio with DFD_STUDIO_FEATURES=clip:MODEL (a local "
    "folder or a hub id, e.g. clip:openai/clip-vit-large-patch14)."
)


@dataclass
class CompareResult:
    videos: dict[str, str | None] = field(default_factory=dict)  # slot -> mp4 in the public folder
    captions: dict[str, str] = field(default_factory=dict)  # slot -> "NFE 100 · 1.9 s" or why it is empty
    composite: str | None = None
    note: str = ""


@dataclass
class Plan:
    contenders: dict[str, lineup.Contender]
    missing: dict[str, str]  # slot -> why it is empty
    folder: Path  # where the results are (or will be) cached
    prompt: str
    seed: int
    steps: int
    guidance: float
    image: Path | None = None  # the stored first frame of an image-to-video request
    request: tuple = ()  # the request as the job path replans it (the stored frame, not the upload)
    num_frames: int | None = None  # None: the model's own length
    base: str = ""  # whose weights size the ZeroGPU grant


def student_choices(data_dir, base: str, method: str) -> list[tuple[str, str]]:
    return [(c.label, c.key) for c in lineup.students(data_dir, base, method)]


def _missing(method: str, base: str) -> str:
    return (
        f"No {lineup.METHOD_NAMES[method]} student of `{base}` yet: train one in the Distill tab "
        "(the shipped students appear here when the repo has them)."
    )


def video_frames(value) -> int | None:
    """The "Video frames" setting: None for 0 or blank (the model's own length), else a checked 4k+1 count."""
    if value is None or value == "" or value == 0:
        return None
    try:
        count = int(float(value)) if float(value).is_integer() else -1
    except (TypeError, ValueError):
        count = -1
    if count < 1 or (count - 1) % 4 or count > MAX_FRAMES:
        raise ValueError(
            f"Video frames must be 4k+1 between 1 and {MAX_FRAMES} (e.g. 17 or 65), or 0 for the "
            f"model's own length; got {value}"
        )
    return count


def plan(
    data_dir: Path,
    public_dir: Path,
    base: str,
    prompt: str,
    seed,
    dmd2_key: str | None,
    dfd_key: str | None,
    steps: int = 50,
    guidance: float = 5.0,
    frame=None,
    num_frames=None,
    access: Access = LOCAL,
) -> Plan:
    """Check the request and name its cache folder (settings + weights + first frame + length). Raises
    ValueError. frame: the uploaded first frame (image-to-video bases only); num_frames: the clips' length
    (None or 0: the model's own); access: which server folders and hub ids a visitor may name
    (studio/access.py)."""
    base, prompt = (base or "").strip(), (prompt or "").strip()
    access.check_model(base)  # before the base is looked at: a refused folder or hub id is never read or fetched
    if not prompt:
        raise ValueError("the prompt is empty; pick one of the world's prompts or type one")
    if seed is None or int(seed) < 0 or int(seed) != seed:
        raise ValueError("the seed must be a whole number of 0 or more")
    image = frames.checked(data_dir, base, frame)  # first: an unknown base is named before its students
    contenders, missing = {"teacher": lineup.teacher(base)}, {}
    for slot, key in (("dmd2", dmd2_key), ("dfd", dfd_key)):
        if key:
            contenders[slot] = lineup.find(data_dir, base, key)
        else:
            missing[slot] = _missing(slot, base)
    frames.check_students(contenders.values(), image)
    length = video_frames(num_frames)
    access.check_frames(length)
    versions = [lineup.weights_version(c) for c in contenders.values()]
    framed = (image.name,) if image else ()  # a text-to-video request keeps the key it always had
    framed += ("figures", default_features())  # the figures under each clip are measured by the app's feature models
    if any(c.causal for c in contenders.values()):
        framed += ("stream",)  # results of a causal student carry its streaming figures
    if length:
        framed += ("frames", length)  # the model's own length keeps the key it always had
    folder = public_dir / "compare" / cache_key(versions, prompt, int(seed), int(steps), float(guidance), *framed)
    request = (
        base,
        prompt,
        int(seed),
        dmd2_key,
        dfd_key,
        int(steps),
        float(guidance),
        str(image) if image else None,
        length,
    )
    return Plan(
        contenders, missing, folder, prompt, int(seed), int(steps), float(guidance), image, request, length, base
    )


def _label(slot: str, contender: lineup.Contender, p: Plan, nfe: int) -> str:
    if slot == "teacher":
        kind = " (bidirectional)" if any(c.causal for c in p.contenders.values()) else ""
        return f"teacher{kind} · {p.steps} steps · CFG {p.guidance:g}"
    if contender.causal:  # its NFE counts each chunk's steps and the forward that commits it to the cache
        return f"{contender.label} · {nfe - 1} steps per chunk"
    return f"{contender.label} · {nfe} steps"


def _stream(r: Rendered) -> dict | None:
    """A causal student's streaming figures: seconds to its first chunk and frames per second of the whole clip,
    both on the chunks' latents (decoding excluded), as the engine's sampler timed them."""
    if not r.stream:
        return None
    count, every = int(r.clips.shape[1]), r.stream["all_chunks_seconds"]
    return {
        "first_chunk_seconds": round(r.stream["first_chunk_seconds"], 4),
        "all_chunks_seconds": round(every, 4),
        "frames": count,
        "frames_per_second": count / every if every > 0 else None,
    }  # rounded once, when shown


def write_results(p: Plan, rendered: dict[str, Rendered], job_seconds: bool = False) -> None:
    """Each clip and the composite into the plan's folder, with what to say under each."""
    clips, labels, slots, no_adherence = [], [], {}, False
    for slot, contender in p.contenders.items():
        r = rendered[slot]
        scale = max(1, SHOWN_SIZE // max(r.clips.shape[2:4]))
        label = _label(slot, contender, p, r.nfe)
        write_mp4(p.folder / f"{slot}.mp4", r.clips[0], fps=r.fps, scale=scale)
        clips.append(r.clips[0])
        labels.append(label)
        measured, _ = clip_metrics(contender.base, p.prompt, r.clips[:1])
        slots[slot] = {
            "label": label,
            "nfe": r.nfe,
            "seconds": round(r.seconds, 3),
            "key": contender.key,
            "figures": {k: measured[k] for k in FIGURES if measured.get(k) is not None},
            "causal": contender.causal,
            "stream": _stream(r) if contender.causal else None,
        }
        no_adherence |= "adherence" not in measured and engine.world_of(contender.base) != "shapes"
    scale = max(1, SHOWN_SIZE // max(clips[0].shape[1:3]))
    fps = next(iter(rendered.values())).fps
    write_mp4(p.folder / "composite.mp4", side_by_side(clips, labels, scale=scale), fps=fps)
    timing = "job time (model loading included)" if job_seconds else "sampling and decoding, model loading excluded"
    (p.folder / "meta.json").write_text(
        json.dumps(
            {
                "prompt": p.prompt,
                "seed": p.seed,
                "slots": slots,
                "frames": int(clips[0].shape[0]),
                "timing": timing,
                "frame": p.image.name if p.image else None,
                "figures_note": NO_ADHERENCE if no_adherence else "",
            },
            indent=2,
        )
    )


def read_results(p: Plan) -> CompareResult:
    meta = json.loads((p.folder / "meta.json").read_text())
    result = CompareResult(captions=dict(p.missing))
    streamed = False
    for slot, info in meta["slots"].items():
        result.videos[slot] = str(p.folder / f"{slot}.mp4")
        per_chunk = " per chunk" if info.get("causal") else ""
        result.captions[slot] = f"**{info['label']}** · NFE {info['nfe']}{per_chunk} · {info['seconds']:.2f} s"
        stream = info.get("stream")
        if stream:
            streamed = True
            fps = f" · {stream['frames_per_second']:.1f} frames/s" if stream.get("frames_per_second") else ""
            result.captions[slot] += f"  \nstreaming: first chunk {stream['first_chunk_seconds']:.2f} s{fps}"
        figures = info.get("figures") or {}
        if figures:
            result.captions[slot] += "  \n" + " · ".join(f"{k} {v:.3g}" for k, v in figures.items())
    result.composite = str(p.folder / "composite.mp4")
    start = ", all from the same first frame" if meta.get("frame") else ""
    length = f", {meta['frames']} frames" if meta.get("frames") else ""
    result.note = (
        f"*{p.prompt}*, seed {p.seed}{length}{start}. Wall time: {meta.get('timing', 'sampling and decoding')}, "
        "on this machine. Under each clip: its own figures, as the Diversity tab measures them (named "
        "correct: 1 when the recognizer sees every attribute the prompt names)."
    )
    if streamed:
        where = "in its sample job" if meta.get("timing", "").startswith("job") else "in this process"
        result.note += (
            f" Streaming (a causal student), timed {where} as its chunks were made, model loading excluded: "
            "seconds from the start of sampling (prompt encoding included) until the first chunk's latents "
            "were ready, and the clip's frames over the time until every chunk's were; latents only, "
            "decoding excluded."
        )
    if meta.get("figures_note"):
        result.note += " " + meta["figures_note"]
    return result


def compare(
    data_dir: Path,
    public_dir: Path,
    base: str,
    prompt: str,
    seed,
    dmd2_key: str | None,
    dfd_key: str | None,
    steps: int = 50,
    guidance: float = 5.0,
    frame=None,
    num_frames=None,
    access: Access = LOCAL,
) -> CompareResult:
    """Sample in this process (cached by settings and weights). Raises ValueError / ModelError."""
    p = plan(data_dir, public_dir, base, prompt, seed, dmd2_key, dfd_key, steps, guidance, frame, num_frames, access)
    if not (p.folder / "meta.json").is_file():
        # a lent GPU on ZeroGPU (else as is), for as long as the clips' length asks, as large as the base needs
        render = on_gpu_for(lineup.render, p.base, 1, p.steps, p.num_frames)
        rendered = {
            slot: render(
                c, p.prompt, [p.seed], steps=p.steps, guidance=p.guidance, image=p.image, num_frames=p.num_frames
            )
            for slot, c in p.contenders.items()
        }
        write_results(p, rendered)
    return read_results(p)


def queue(
    data_dir: Path,
    public_dir: Path,
    *request,
    access: Access = LOCAL,
    identity: Identity = LOCAL_OWNER,
    visitor: str | None = None,
) -> tuple[CompareResult | None, sample_jobs.Pending | None]:
    """The job path: (cached result, None) when these settings were sampled before, else (None, pending jobs),
    queued as `visitor`'s when the visitor's cap, the queue's and the disk allow (studio/admission.py)."""
    p = plan(data_dir, public_dir, *request, access=access)
    return sample_jobs.queue(
        data_dir,
        p,
        p.request,
        list(p.contenders.values()),
        [p.seed],
        read_results,
        before=lambda jobs: check_room(data_dir, access, identity, visitor, jobs, "the sample jobs"),
        submitted_by=submitter_of(identity, visitor),
    )


def poll(data_dir: Path, public_dir: Path, pending: sample_jobs.Pending) -> tuple[CompareResult | None, str]:
    """(result, "") once the jobs are done, else (None, how far they are). Raises ValueError."""
    return sample_jobs.finish(
        data_dir,
        pending,
        lambda *request: plan(data_dir, public_dir, *request),
        lambda p, rendered: write_results(p, dict(zip(p.contenders, rendered)), job_seconds=True),
        read_results,
    )
