"""The Distill form's request logic, without gradio: the form's values turned into a validated DistillConfig
(or one sentence saying what is wrong), the check beside Launch and its too-short-for-DFD warning, queueing
the job, an uploaded student LoRA or run config, and the DMD2 students a DFD run may start from.

The knobs' kinds, choices and help lines come from DistillConfig's own field metadata
(engine.settings_of), and the run's settings from engine.build_distill_config, as on the command line."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import engine
from engine import (
    ConfigError,
    DistillConfig,
    ModelError,
    UploadError,
    build_distill_config,
    check_model,
    resolve_model,
    save_lora_upload,
    settings_of,
)

from . import data_check, lineup, zerogpu
from .access import LOCAL, Access
from .distill_data import data_setting
from .files import uploads_folder
from .limits import check_free_disk

# Which DistillConfig fields the form shows as knobs, in order (their kinds, choices and help: the metadata).
MAIN_KNOBS = (
    "steps",
    "batch_size",
    "data_forcing_prob",
    "lora_rank",
    "lr_student",
    "lr_fake",
    "student_update_freq",
    "guidance",
    "time_shift",
    "student_input",
    "caption_regime",
    "checkpoint_every",
    "preview_every",
    "seed",
)
SETTINGS = {s.name: s for s in settings_of(DistillConfig)}
# Every other setting is an Advanced knob, so a new DistillConfig field reaches the form by itself; these
# few have controls of their own (base, data source, method, the student to start from) or none (out, and
# cache_dir: the studio's data dir, so that a visitor cannot make the server write elsewhere).
OWN_CONTROLS = ("method", "task", "base", "data", "init", "out", "cache_dir")
ADVANCED_KNOBS = tuple(name for name in SETTINGS if name not in MAIN_KNOBS + OWN_CONTROLS)
KNOBS = MAIN_KNOBS + ADVANCED_KNOBS
FORM = ["base", "data_source", "data_folder", "method", "task", "init_source", "init_student"] + list(KNOBS)


def defaults_for(base: str) -> dict:
    """The paper's recipe, with the built-in world's preset when the base is shapes-tiny (as the CLI does)."""
    return build_distill_config(values={"base": (base or "").strip()}, check=False).to_dict()


def task_for_base(base: str, task: str | None) -> str | None:
    """The task box's value once `base` is picked: `task` when the base can do it (a TI2V base, Wan2.2-TI2V-5B,
    does t2v and i2v), else the one task the base's files name, as DistillConfig.validate rules; `task`
    when its files cannot tell (the loaded model is checked at launch). Call only for a base the visitor
    may name (studio/access.py)."""
    tasks = engine.base_tasks((base or "").strip())
    if tasks is None or ("i2v" if task == "i2v" else "t2v") in tasks:
        return task
    return tasks[0]


def _form_name(name: str) -> str:
    """A config field as the form calls it: its label where the form shows it under one, else its name
    (the knobs show the setting's own name)."""
    return SETTINGS[name].label or name if name in SETTINGS else name


def _message(err: Exception) -> str:
    return err.worded(_form_name) if isinstance(err, ConfigError) else str(err)


@dataclass
class Request:
    config: DistillConfig  # built and validated once; queued as it is (the job row says exactly what runs)
    parent: str | None  # the DMD2 job a DFD run starts from
    summary: str


def request_from_form(
    data_dir: Path,
    form: dict,
    uploaded_data: str | None,
    uploaded_lora: str | None,
    reach_hub: bool = False,
    access: Access = LOCAL,
) -> Request:
    """Turn the form's values into a validated distill request; raises ValueError with one sentence.
    reach_hub: also fetch a hub id's model_index.json and scan the data folder's videos (at launch, not on
    each keystroke of the live check, which uses the folder's last scan if there is one).
    access: which server folders and hub ids a visitor may name (studio/access.py)."""
    base = (form.get("base") or "").strip()
    access.check_model(base)  # before the model is looked at: a refused path is not even probed
    try:
        (check_model if reach_hub else resolve_model)(base)
    except ModelError as err:
        raise ValueError(str(err)) from None
    settings: dict = {
        "base": base,
        "method": form.get("method") or "dmd2",
        "task": form.get("task") or "t2v",
        "cache_dir": str(Path(data_dir).resolve() / "cache"),  # never in the user's folder
        "data": data_setting(form, uploaded_data, access),
    }
    parent = None
    if settings["method"] == "dfd":
        if form.get("init_source") == "upload":
            if uploaded_lora:
                settings["init"] = uploaded_lora
        elif form.get("init_student"):
            student = lineup.find(data_dir, base, form["init_student"])
            if student.method != "dmd2":
                raise ValueError(f"{student.label} is a {student.method} student; DFD starts from a DMD2 student")
            settings["init"] = str(student.lora_dir)
            parent = student.key if student.key.startswith("j-") else None
    for name in KNOBS:
        value = form.get(name)
        settings[name] = bool(value) if SETTINGS[name].kind == "bool" else value
    config = build_distill_config(values=settings)  # typed and validated; also refuses a rank unlike init's
    access.check_workers(config.data_workers, _form_name("data_workers"))
    access.check_run(config, _form_name)  # a public studio's bounds on steps, batch, size, intervals, trackers
    where = {"shapes": "the shapes world"}.get(config.data, Path(config.data).name)
    if config.data != "shapes":
        look = data_check.scan if reach_hub else data_check.known
        found = look(config.data, config.base, config.num_frames, config.windows_per_video, access.max_probes)
        data_check.check_enough(found, config.batch_size, where)
    start = f" from {Path(config.init).name if config.init else 'the teacher'}" if config.method == "dfd" else ""
    task = " image-to-video" if config.task == "i2v" else ""
    summary = (
        f"{config.method.upper()}{task} on `{config.base}` with {where}{start}: {_plural(config.steps, 'step')} "
        f"({_plural(config.steps // config.student_update_freq, 'student update')}), batch "
        f"{config.batch_size}, LoRA rank {config.lora_rank}, {len(config.t_list) - 1}-step student"
    )
    return Request(config, parent, summary)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def init_rank(lora_dir: str | None) -> int | None:
    """The LoRA rank a student was saved with (lora_config.json), if known."""
    import json

    meta = Path(lora_dir) / "lora_config.json" if lora_dir else None
    if meta is None or not meta.is_file():
        return None
    try:
        return int(json.loads(meta.read_text())["rank"])
    except (ValueError, KeyError, TypeError):
        return None


def check(
    data_dir: Path, form: dict, uploaded_data: str | None, uploaded_lora: str | None, access: Access = LOCAL
) -> str:
    """The line beside Launch: what will run (and whether it is too short for DFD's p to tell), or what is
    wrong and what to do."""
    if zerogpu.on_zerogpu():
        return "**Cannot launch:** " + zerogpu.TRAINING_NOTE
    try:
        request = request_from_form(data_dir, form, uploaded_data, uploaded_lora, access=access)
    except ValueError as err:
        return "**Cannot launch:** " + _sentence(_message(err))
    warning = short_run_warning(request.config)
    return "**Ready.** " + request.summary + "." + (f"\n\n**Too short for DFD:** {warning}" if warning else "")


ENOUGH_REAL_CLIPS = 5  # expected student updates on a real clip below which a DFD run says little about p


def short_run_warning(config: DistillConfig) -> str | None:
    """Why a DFD run is too short for its data_forcing_prob to mean anything, or None. With the paper's one coin
    per step, each of the n student updates uses a real clip with chance p: about n * p do, and (1 - p)^n of such
    runs use none at all and train as DMD2 continued. (Per-sample coins and blending use real clips far more.)"""
    if config.method != "dfd" or config.data_forcing_blend or config.data_forcing_granularity != "step":
        return None
    n, p = config.steps // config.student_update_freq, config.data_forcing_prob
    if n * p >= ENOUGH_REAL_CLIPS:
        return None
    if p == 0:
        return "with data_forcing_prob 0 no student update uses a real clip: this run trains as DMD2 continued."
    needed = math.ceil(ENOUGH_REAL_CLIPS / p) * config.student_update_freq
    return (
        f"at data_forcing_prob {p:g}, only about {n * p:.1f} of its {_plural(n, 'student update')} would use a "
        f"real clip, and {(1 - p) ** n:.0%} of such runs use none (they train as DMD2 continued). For about "
        f"{ENOUGH_REAL_CLIPS} real-clip updates, use at least {needed} steps."
    )


def launch(
    data_dir: Path,
    form: dict,
    uploaded_data: str | None,
    uploaded_lora: str | None,
    access: Access = LOCAL,
    submitted_by: str | None = None,
) -> tuple[str, str | None]:
    """Queue the job when the form is valid: (message, job id or None). Never on ZeroGPU (no GPU for hours)."""
    if zerogpu.on_zerogpu():
        return "**Cannot launch:** " + zerogpu.TRAINING_NOTE, None
    try:
        access.check_queue(data_dir)  # first: a full queue or disk costs no scan of the data
        check_free_disk(data_dir, "the job")
        request = request_from_form(data_dir, form, uploaded_data, uploaded_lora, reach_hub=True, access=access)
        job = engine.jobs.submit(data_dir, "distill", request.config, parent=request.parent, submitted_by=submitted_by)
    except ValueError as err:
        return "**Cannot launch:** " + _sentence(_message(err)), None
    return f"**Queued** job `{job.id}`: {request.summary}. Follow it in the Jobs tab.", job.id


def _sentence(text: str) -> str:
    """One message as a sentence after a bold lead-in."""
    text = text.strip()
    return text + ("" if text.endswith((".", "!", "?")) else ".")


def upload_lora(data_dir: Path, path: str | None) -> tuple[str | None, str]:
    if not path:
        return None, ""
    try:
        folder = save_lora_upload(path, uploads_folder(data_dir))
    except UploadError as err:
        return None, "**Upload refused:** " + _sentence(str(err))
    return str(folder), "**Received:** the student LoRA."


def form_from_config(
    path: str | None, base: str, access: Access = LOCAL, data_dir: Path | None = None
) -> tuple[dict | None, str]:
    """An uploaded run config (YAML, TOML or JSON) -> (the form's values it sets, a line saying so). The
    file goes through build_distill_config as `--config` does, so a bad one is refused in one line naming
    the setting and the file, and the form keeps its values. The student to start from is picked in the
    form; the cache folder stays the studio's. The paths it names (base, data, and init unless it is a
    student this studio lists, such as a finished job's) are confined before the config's checks look at them."""
    if not path:
        return None, ""
    name = Path(path).name
    try:
        config = build_distill_config(base=(base or "").strip() or None, config_file=path, check=False)
        access.check_model(config.base)
        if config.data not in ("shapes", "synthetic") and access.public:  # and a config's folders, before validate
            if access.check_path(config.data, "data folder").is_file():
                engine.check_data_spec(config.data, confine=lambda p: access.check_path(str(p), "data folder"))
        if config.init and access.public and not _listed_student(data_dir, config.init):
            access.check_path(config.init, "student folder")
        config = build_distill_config(base=(base or "").strip() or None, config_file=path)
    except ValueError as err:
        message = _message(err).replace(str(path), name)
        return None, "**Config refused:** " + _sentence(message if name in message else f"{name}: {message}")
    settings = config.to_dict()
    values = {
        "base": config.base,
        "method": config.method,
        "task": config.task,
        "data_source": "shapes",
        "data_folder": "",
    }
    if config.data != "shapes":
        values.update(data_source="folder", data_folder=config.data)
    for knob in KNOBS:
        value = settings[knob]
        values[knob] = ", ".join(f"{v:g}" for v in value) if SETTINGS[knob].kind == "floats" else value
    start = " Pick the DMD2 student to start from below." if config.init else ""
    return values, f"**Loaded** {name} into the form.{start}"


def _listed_student(data_dir: Path | None, folder: str) -> bool:
    """Is `folder` a student this studio lists (shipped, or a finished job's)? Those a visitor may name."""
    if data_dir is None:
        return False
    target = Path(folder).expanduser().resolve()
    return any(Path(s.lora_dir).resolve() == target for s in lineup.students(data_dir) if s.lora_dir)


def init_choices(data_dir: Path, base: str) -> list[tuple[str, str]]:
    return [(c.label, c.key) for c in lineup.students(data_dir, (base or "").strip(), "dmd2")]
