"""`python -m engine evaluate`: every model measured the same way, on any base.

For each model and prompt, the prompt's seeds are sampled (the same seeds, hence the same initial
noise, for every model; in batches of at most `batch` videos) and scoring.py measures the clips. The
reference every model is compared with is `real`: on the shapes world, clips the world draws from
p_real(. | prompt); elsewhere, the user's held-out clips (reference.py), when a folder of them is given.
Each (model, prompt) result is kept as it is measured (resume.py), so an interrupted run resumes.

An image-to-video base of the shapes world is measured from one first frame per prompt: the first frame of a
clip the world draws for the prompt (world.conditioning_clip), the same for every model and seed, so the seeds'
spread is the motion spread from one frame; `real` is then the world's continuations of that frame. Outside the
shapes world the frame of each prompt is the user's (user_frames.py), found and read before any sampling.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np

from ..config.fields import ConfigError
from ..config.sample import SampleConfig
from ..models.names import base_tasks, base_world
from ..shapes import world
from . import drift
from .colour import gaps
from .i2v_frames import i2v_frames_of
from .prompts import EvalPrompt, read_prompts, seeds_of
from .report import plot, save_figure, to_markdown, write_outputs  # noqa: F401  (the command's writers)
from .resume import Parts, fingerprint, lora_version
from .scoring import aggregate, mean, score_any, score_shapes
from .settings import EvalSettings
from .specs import ModelSpec
from .user_frames import frame_paths, read_frames, user_frames_given

REGIMES = ("detailed", "underspecified")
# Where image-to-video models outside the shapes world are measured from a frame of the user's
FROM_A_FRAME = (
    'evaluate it on first frames of yours (--frames FOLDER, or an "image" per JSONL prompt), or compare '
    "from a frame in the studio's Compare or Diversity tab"
)
FROM_A_FRAME_HELP = "An image-to-video base samples each prompt from its first frame (docs/evaluation.md)"
HELD_OUT = "(held-out clips)"  # the prompt key of the real clips outside the shapes world


class Session:
    """What one evaluation holds while it runs: the loaded model, encoders and the reference."""

    def __init__(self, settings: EvalSettings, shapes: bool, prompts: list[EvalPrompt] = ()):
        import torch  # torch: only when models are loaded, so the command's writers stay light

        self.settings, self.shapes = settings, shapes
        # A shapes I2V base's frame law (world.FRAME_LAWS) makes it image-to-video; a frame-replacement base that
        # does both (Wan2.2-TI2V) is measured as text-to-video unless the user gives first frames.
        self.frames = i2v_frames_of(settings.base) or "edge"
        self.i2v = base_tasks(settings.base) == ("i2v",) or i2v_frames_of(settings.base) is not None
        self.user_frames: dict[str, np.ndarray] = {}  # outside the shapes world: the user's frame of each prompt
        self.frame_paths: dict = {}
        if not shapes and (self.i2v or user_frames_given(settings, prompts)):
            if base_tasks(settings.base) is not None and "i2v" not in base_tasks(settings.base):
                raise ConfigError(
                    "frames",
                    f"{{base}} {settings.base} is a text-to-video model and the prompts give first frames; "
                    'leave out {frames} and the prompts\' "image", or evaluate an image-to-video base',
                    refers=("base",),
                )
            # An image-to-video base (or a TI2V base given frames) is measured from the user's frames, all found
            # before anything loads.
            self.i2v = True
            try:
                self.frame_paths = frame_paths(prompts, settings.frames)
            except ValueError as err:
                raise ConfigError("frames", f"{err}. {FROM_A_FRAME_HELP}") from None
        self.device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = None
        self.extractors, self.adherence, self.notes = [], None, []
        self.recognizer = None

    def load(self, need_model: bool) -> None:
        # torch: only when models are loaded, so the command's writers stay light
        from .adherence import ClipAdherence, has_text_tower
        from .features import load_extractor

        s = self.settings
        self.extractors = [load_extractor(spec, self.device) for spec in s.features]
        clip_model = s.adherence or next((x.name.partition(":")[2] for x in self.extractors if x.kind == "clip"), None)
        if s.adherence or (clip_model and has_text_tower(clip_model)):
            self.adherence = ClipAdherence(clip_model, self.device)
        else:
            self.notes.append(
                "No prompt adherence: it needs a whole CLIP model (clip:MODEL in features, or adherence)."
            )
        if self.shapes:
            # torch: only when models are loaded, so the command's writers stay light
            from ..shapes.recognizer import Recognizer

            self.recognizer = Recognizer()
        if need_model:
            # torch: only when models are loaded, so the command's writers stay light
            from ..models.base import load_base_model

            self.model = load_base_model(s.base, device=self.device)
            if s.num_frames or s.height or s.width:
                self.model.set_video_shape(
                    s.num_frames or self.model.num_frames, s.height or self.model.height, s.width or self.model.width
                )
            if self.frame_paths:  # read at the model's size before any sampling: a bad image stops the run here
                try:
                    self.user_frames = read_frames(self.frame_paths, self.model.height, self.model.width)
                except ValueError as err:
                    raise ConfigError("frames", str(err)) from None

    def sample(self, spec: ModelSpec, prompt: str, seeds: list[int]) -> tuple[np.ndarray, float, int]:
        """(clips, seconds per video, NFE per video) for one model and prompt."""
        # torch: only when models are loaded, so the command's writers stay light
        from ..generation.generate import sample_frames

        first = self.first_of(prompt)
        if spec.kind in ("real", "real-decoded"):  # the shapes world's own clips (decoded: through the autoencoder)
            # torch: only when models are loaded, so the command's writers stay light
            from .reference import through_decoder

            seed = zlib.crc32(prompt.encode()) + seeds[0]
            clips = (
                world.continuations(first, len(seeds), seed, world.parse_caption(prompt), frames=self.frames)
                if first is not None
                else world.sample_clips(world.parse_caption(prompt), len(seeds), seed=seed)
            )[0]
            return (clips if spec.kind == "real" else through_decoder(self.model, clips)), 0.0, 0
        batch = self.settings.batch or len(seeds)
        started, parts, nfe = time.perf_counter(), [], 0
        for i in range(0, len(seeds), batch):
            cfg = SampleConfig(
                base=self.model.source,
                prompt=prompt,
                seeds=seeds[i : i + batch],
                steps=spec.steps,
                guidance=spec.guidance,
                lora=spec.lora,
            )
            clips, nfe = sample_frames(self.model, cfg.validate(), first_frame=self.frame_of(prompt, first))
            parts.append(clips)
        return np.concatenate(parts), (time.perf_counter() - started) / len(seeds), nfe

    def score(self, clips: np.ndarray, prompt: str | list[str]) -> dict:
        if self.shapes:
            row = score_shapes(
                world.parse_caption(prompt),
                clips,
                prompt,
                self.recognizer,
                self.extractors,
                self.adherence,
                first=self.first_of(prompt),
                frames=self.frames,
            )
            if clips.shape[1] > drift.WINDOW:  # longer than the world's clips: measured window by window too
                row["windows"] = drift.along(clips, world.parse_caption(prompt), self.recognizer)
            return row
        frame = self.user_frames.get(prompt) if isinstance(prompt, str) else None
        return score_any(clips, prompt, self.extractors, self.adherence, frame=frame)

    def first_of(self, prompt: str):
        """An I2V evaluation's conditioning clip of a prompt (its factors), None for text-to-video."""
        if not self.i2v or not self.shapes:
            return None
        return world.conditioning_clip(prompt, self.frames)

    def frame_of(self, prompt: str, first) -> np.ndarray | None:
        """The first frame every model and seed of `prompt` is sampled from: the world's or the user's."""
        if first is not None:
            return world.render(first)[0]
        return self.user_frames.get(prompt)

    def real_reference(self) -> dict:
        """The held-out clips' row (through the model's VAE and back), captions as their prompts."""
        # torch: only when models are loaded, so the command's writers stay light
        from .reference import read_real_clips, through_decoder

        m, s = self.model, self.settings
        real = read_real_clips(s.real, m.num_frames, m.height, m.width, m.fps, limit=s.real_clips)
        started = time.perf_counter()
        clips = through_decoder(m, real.clips)
        row = self.score(clips, real.captions)
        row.update(clips=len(clips), skipped=len(real.skipped), seconds=time.perf_counter() - started)
        return row


def _specs(settings: EvalSettings, shapes: bool) -> list[ModelSpec]:
    specs = [ModelSpec.parse(t, settings.data_dir) for t in settings.models]
    has_real = any(s.kind == "real" for s in specs)
    if not shapes and has_real and settings.real is None:
        raise ConfigError(
            "real",
            "the model 'real' outside the shapes world is the held-out clips: set {real} to a "
            "folder of captioned videos, or leave 'real' out of {models}",
            refers=("models",),
        )
    if not has_real and (shapes or settings.real is not None):
        specs = [ModelSpec.parse("real")] + specs  # the reference for the relative metrics
    return specs


def _check_tasks(specs: list[ModelSpec], session: Session) -> None:
    """An image-to-video student measured from text alone would be measured on what it was not trained for
    (its TI2V base samples without a frame too): refused in one line before anything is loaded."""
    for spec in specs:
        if spec.task == "i2v" and not session.i2v:
            raise ConfigError(
                "models",
                f"{{models}}: {spec.name} is an image-to-video student (task i2v in its lora_config.json) and "
                f"evaluate measures {session.settings.base} from text alone; leave it out and {FROM_A_FRAME}",
            )


def _measure(session: Session, specs, prompts: list[EvalPrompt], parts: Parts, progress) -> dict:
    """per_prompt[model][prompt] = row (with nfe and seconds), each measured once and kept in `parts`."""
    s, shared = session.settings, {**session.settings.shared_fingerprint(), "device": session.device.split(":")[0]}
    default_seeds = list(range(1, s.seeds + 1))
    per_prompt: dict[str, dict[str, dict]] = {spec.name: {} for spec in specs}
    work = [
        (spec, p)
        for spec in specs
        for p in ([EvalPrompt(HELD_OUT)] if spec.kind == "real" and not session.shapes else prompts)
    ]
    for done, (spec, p) in enumerate(work, 1):
        seeds = seeds_of(p, default_seeds)
        what = {**shared, "model": vars(spec), "lora": lora_version(spec.lora), "seeds": seeds}
        if p.text in session.frame_paths:  # the user's frame: another frame, another measurement
            what["frame"] = str(session.frame_paths[p.text])
        key = fingerprint(what)
        row = parts.get(spec.name, p.text, key)
        if row is None:
            if spec.kind == "real" and not session.shapes:
                row = session.real_reference()
                row.update(nfe=0, seconds_per_video=0.0)
            else:
                clips, seconds, nfe = session.sample(spec, p.text, seeds)
                row = {**session.score(clips, p.text), "nfe": nfe, "seconds_per_video": seconds}
            parts.put(spec.name, p.text, key, row)
        per_prompt[spec.name][p.text] = row
        if progress:
            progress(done, len(work), f"{spec.name} · {p.text[:40]}")
    return per_prompt


def _relative(per_prompt: dict, shapes: bool) -> None:
    """Each row against the real clips: of the same prompt (shapes world) or of the held-out set."""
    if "real" not in per_prompt:
        return
    real_rows = per_prompt["real"]
    for rows in per_prompt.values():
        for prompt, row in rows.items():
            real = real_rows[prompt] if shapes else real_rows[HELD_OUT]
            row.update(gaps(row, real))
            row["sharpness_ratio"] = row["sharpness"] / max(real["sharpness"], 1e-6)
            if shapes:
                row["saturation_error"] = abs(row["saturation"] - real["saturation"])


def _entry(rows: dict[str, dict], shapes: bool) -> dict:
    factors = world.FACTOR_NAMES if shapes else ()
    entry = aggregate(list(rows.values()), factors)
    entry["nfe"] = next(iter(rows.values()))["nfe"]
    entry["seconds_per_video"] = mean(r["seconds_per_video"] for r in rows.values())
    if shapes:
        entry["by_regime"] = {
            regime: aggregate([rows[p] for p in world.prompt_set(regime) if p in rows], factors)
            for regime in REGIMES
            if any(p in rows for p in world.prompt_set(regime))
        }
    return entry


def run_evaluation(settings: EvalSettings, progress=None) -> dict:
    """Measure each model of `settings` on its prompts; the result the command writes as JSON."""
    settings.validate()
    shapes = base_world(settings.base) == "shapes"
    prompts = read_prompts(settings.prompts, shapes)
    specs = _specs(settings, shapes)
    session = Session(settings, shapes, prompts)
    _check_tasks(specs, session)
    session.load(need_model=any(s.kind != "real" for s in specs) or not shapes)
    parts = Parts(None if settings.parts is None else Path(settings.parts))
    per_prompt = _measure(session, specs, prompts, parts, progress)
    _relative(per_prompt, shapes)
    result = {
        "prompts": settings.prompts,
        "seeds": settings.seeds,
        "base": settings.base,
        "world": "shapes" if shapes else None,
        "task": "i2v" if session.i2v else "t2v",
        "device": session.device,
        "features": ([] if not shapes else ["recognizer"]) + [x.name for x in session.extractors],
        "adherence": session.adherence.name if session.adherence else None,
        "real": settings.real,
        "notes": session.notes,
        "resumed_parts": parts.reused,
    }
    if shapes:
        result["recognizer_heldout_accuracy"] = session.recognizer.meta["heldout_accuracy"]
    result["models"] = {name: _entry(rows, shapes) for name, rows in per_prompt.items()}
    if shapes and drift.summarize(per_prompt):
        result["drift"] = drift.summarize(per_prompt)
    result["per_prompt"] = per_prompt
    return result


def evaluate(
    model_texts: list[str],
    prompts: str,
    seeds: int,
    base: str = "shapes-tiny",
    progress=None,
    data_dir: str | None = None,
    features: list[str] = (),
    **more,
) -> dict:
    """run_evaluation with the settings as arguments (`more`: the other EvalSettings fields)."""
    settings = EvalSettings(
        models=list(model_texts),
        prompts=prompts,
        seeds=seeds,
        base=base,
        data_dir=data_dir,
        features=list(features),
        **more,
    )
    return run_evaluation(settings, progress and (lambda done, total, _label: progress(done, total)))
