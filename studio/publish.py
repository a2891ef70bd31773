"""The Publish tab: pick a finished student, preview its generated model card (with sample videos and
metrics), then push LoRA + card + samples to the Hugging Face Hub, or export the same folder as a zip. The
page's last preview or export is kept in the browser (studio/recall.py) and shown again after a reload, from
the samples already made.

The token comes from the password field, a Hugging Face login (OAuth, on a Space) or HF_TOKEN; it is
passed to huggingface_hub for the one push and never stored, logged or shown."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import gradio as gr

import engine
import engine.jobs as jobs_api
from engine import ModelError, publish, student_t_list, world, write_mp4

from . import frames, lineup, recall
from .files import cache_key, expose, staging_folder
from .identity import LOCAL_OWNER, Identity, visitor_of
from .jobs import previews_html
from .measures import clip_metrics

SAMPLE_SEEDS = (1, 2)
METRIC_SEEDS = 8
LOSS_TERMS = ("loss_student", "loss_fake", "data_forcing", "real_gap")
SETTINGS_SHOWN = (
    "data",
    "lora_rank",
    "lr_student",
    "lr_fake",
    "batch_size",
    "student_update_freq",
    "guidance",
    "time_shift",
    "data_forcing_prob",
    "student_input",
    "caption_regime",
    "seed",
)


NO_STUDENTS = (
    "No finished student yet: launch a DMD2 job in the Distill tab and wait for it to succeed "
    "(the shipped students appear here when the repo has them)."
)


def student_choices(data_dir) -> list[tuple[str, str]]:
    return [(f"{c.label} · base {c.base}", c.key) for c in lineup.students(data_dir)]


def _student(data_dir, key: str) -> lineup.Contender:
    for contender in lineup.students(data_dir):
        if contender.key == key:
            return contender
    raise ValueError("pick a finished student first (the list refreshes when the tab opens)")


def _job_settings(data_dir, key: str) -> tuple[dict, dict]:
    """(settings, final training losses) of a job student; ({}, {}) for a shipped one."""
    if not key.startswith("j-"):
        return {}, {}
    try:
        job = jobs_api.get(data_dir, key)
    except jobs_api.JobNotFound:
        return {}, {}
    settings = {k: job.config[k] for k in SETTINGS_SHOWN if k in job.config}
    if "data" in settings and settings["data"] != "shapes":
        settings["data"] = "a folder of captioned videos"  # never publish a local path
    last = {}
    for point in jobs_api.metrics(data_dir, key, list(LOSS_TERMS)):
        last[point.name] = point.value
    names = {"real_gap": "validity gap (real_gap)"}  # the name the Jobs plots and the study use
    return settings, {f"final {names.get(k, k)}": round(v, 5) for k, v in last.items()}


def _training_previews(student: lineup.Contender) -> tuple[list[tuple[Path, str]], dict]:
    """An image-to-video student's card samples: its run's last previews, captioned with their prompts
    (the frame they start from is a training clip's, which this page has no other copy of)."""
    previews = publish.training_previews(student.lora_dir)
    if not previews:
        raise ValueError(
            f"the image-to-video student {student.key} has no training previews to show on its card; "
            "publish it with `python -m engine publish` instead, or retrain it to write them"
        )
    return previews, {}


def _samples_folder(data_dir: Path, student: lineup.Contender) -> Path | None:
    """Where a student's card samples are cached (None: an image-to-video student's are its training previews)."""
    # An i2v student of an image-to-video base, or of a TI2V one (one base for both tasks): its lora_config.json
    # names its task
    if frames.base_task(student.base, fetch=False) == "i2v" or (student.info or {}).get("task") == "i2v":
        return None
    return staging_folder(data_dir) / ".samples" / cache_key(lineup.weights_version(student))


def samples_and_metrics(data_dir: Path, student: lineup.Contender) -> tuple[list[tuple[Path, str]], dict]:
    """Sample videos (cached next to the staging folder) and evaluation metrics of a student."""
    folder = _samples_folder(data_dir, student)
    if folder is None:
        return _training_previews(student)
    meta = folder / "meta.json"
    if not meta.is_file():
        shapes = engine.world_of(student.base) == "shapes"
        prompts = world.prompt_set("detailed")[:2] if shapes else ["a video"]
        samples, measured = [], {}
        for i, prompt in enumerate(prompts):
            rendered = lineup.render(student, prompt, list(SAMPLE_SEEDS))
            for seed, clip in zip(SAMPLE_SEEDS, rendered.clips):
                name = f"samples/prompt{i}-seed{seed}.mp4"
                write_mp4(folder / name, clip, fps=rendered.fps, scale=4)
                samples.append((name, f"{prompt} (seed {seed})"))
        if shapes:
            probe = world.prompt_set("underspecified")[0]
            rendered = lineup.render(student, probe, list(range(1, METRIC_SEEDS + 1)))
            values, _ = clip_metrics(student.base, probe, rendered.clips)  # unmeasurable ones are None
            measured = {f"{k} ({METRIC_SEEDS} seeds of '{probe}')": v for k, v in values.items() if v is not None}
            measured["NFE per video"] = rendered.nfe
        folder.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"samples": samples, "metrics": measured}))
    data = json.loads(meta.read_text())
    return [(folder / name, caption) for name, caption in data["samples"]], data["metrics"]


def repo_for(repo_id: str | None, key: str) -> str:
    """The repo id the card names: the typed one, checked; with none typed (a preview, an offline zip) a
    placeholder 'your-name/dfd-studio-<student>' for the reader to replace. A push needs a real one."""
    if (repo_id or "").strip():
        return publish.check_repo_id(repo_id)
    name = re.sub(r"[^\w.-]", "-", key or "student")
    return publish.check_repo_id(f"your-name/dfd-studio-{name}")


def stage(
    data_dir: Path, key: str, repo_id: str, license: str, dtype: str = "fp32"
) -> tuple[Path, str, list[tuple[Path, str]]]:
    """Write the folder a push uploads: (folder, card text, samples), its LoRA files in `dtype` (fp32 as
    trained, bf16 or fp16: converted on the staged copy only). Raises ValueError / ModelError."""
    repo_id = repo_for(repo_id, key)
    if license not in publish.LICENSES:
        raise ValueError(f"unknown license {license!r}; pick one from the list")
    if dtype not in publish.DTYPES:
        raise ValueError(f"unknown LoRA dtype {dtype!r}; pick one of {', '.join(publish.DTYPES)}")
    student = _student(data_dir, key)
    samples, measured = samples_and_metrics(data_dir, student)
    settings, losses = _job_settings(data_dir, key)
    card = publish.model_card(
        publish.CardInfo(
            repo_id=repo_id,
            base=student.base,
            method=student.method,
            **publish.training_record(student.lora_dir),
            t_list=student_t_list(student.lora_dir),
            settings=settings,
            metrics={**measured, **losses},
            samples=[(str(Path("samples") / path.name), caption) for path, caption in samples],
            license=license,
            source=f"job {key}" if key.startswith("j-") else "shipped with DFD Studio",
            base_hub_id=student.base if re.fullmatch(r"[\w.-]+/[\w.-]+", student.base) else None,
            dtype=dtype,
        )
    )
    folder = publish.stage_folder(
        student.lora_dir,
        staging_folder(data_dir) / re.sub(r"[^\w.-]", "_", key),
        card,
        [(path, f"samples/{path.name}") for path, _ in samples],
        dtype=dtype,
    )
    return folder, card, samples


def preview(data_dir: Path, public_dir: Path, key: str, repo_id: str, license: str, dtype: str = "fp32"):
    """(card markdown, sample videos shown, status line)."""
    folder, card, samples = stage(data_dir, key, repo_id, license, dtype)
    shown = [
        (str(expose(path, public_dir, f"publish/{folder.name}/{path.name}")), caption) for path, caption in samples
    ]
    body = card.split("---", 2)[-1] if card.startswith("---") else card
    body = "\n".join(line for line in body.splitlines() if not line.startswith("<video"))  # the gallery shows them
    if not (repo_id or "").strip():
        return (
            body,
            shown,
            (
                f"Card and {len(samples)} sample videos are ready; the card names `{repo_for(None, key)}` "
                "until you type a repo id, which a push needs (an exported zip does not)."
            ),
        )
    return body, shown, f"Card and {len(samples)} sample videos are ready for `{repo_id.strip()}`; push or export."


def push(
    data_dir: Path,
    key: str,
    repo_id: str,
    license: str,
    private: bool,
    typed_token: str | None,
    oauth_token: str | None,
    environ=None,
    dtype: str = "fp32",
    identity: Identity = LOCAL_OWNER,
    visitor: str | None = None,
    whoami=None,
) -> str:
    """Push a student. On a public studio only its submitter or the owner may push a job's student, only with
    their own token (never the server's HF_TOKEN), and only into their own namespace or one of their orgs."""
    if key.startswith("j-"):
        try:
            identity.check_may_act(visitor, jobs_api.get(data_dir, key), "publish")
        except jobs_api.JobNotFound:
            pass  # _student says which students exist
    token, source = publish.pick_token(typed_token, oauth_token, environ, server_token=not identity.public)
    if token is None:
        raise ValueError(source)
    publish.check_repo_id(repo_id)  # a push goes somewhere: no placeholder
    if identity.public:
        publish.check_namespace(repo_id, token, whoami)
    folder, _, _ = stage(data_dir, key, repo_id, license, dtype)
    url = publish.push_folder(folder, repo_id, token, private=bool(private), token_source=source)
    return f"Pushed LoRA, model card and samples to {url} (LoRA weights in {dtype}; token from {source}, not stored)."


def zip_path(public_dir: Path, key: str, repo_id: str) -> Path:
    """The exported zip of a student under a repo id: its repo name and the student's staged folder name."""
    name = re.sub(r"[^\w.-]", "_", repo_for(repo_id, key).split("/")[-1])
    staged = re.sub(r"[^\w.-]", "_", key)
    return public_dir / "exports" / f"{name}-{staged}.zip"


def export(data_dir: Path, public_dir: Path, key: str, repo_id: str, license: str, dtype: str = "fp32") -> str:
    folder, _, _ = stage(data_dir, key, repo_id, license, dtype)
    return str(publish.export_zip(folder, zip_path(public_dir, key, repo_id)))


def reopen(data_dir: Path, public_dir: Path, last) -> list:
    """After a reload: the form, card, samples, status and zip of the page's last preview or export (JSON, as the
    browser keeps it), staged again from the samples already made (nothing is sampled when a page opens); all
    left as they are when nothing valid is kept. Its samples gone (new weights), the form and a line saying so."""
    try:
        remembered = json.loads(last) if isinstance(last, str) else None
        key, repo_id, license, dtype = remembered["request"]
        if not all(isinstance(v, str) for v in remembered["request"]):
            raise TypeError("a field of the kept request is not text")
        student = _student(data_dir, key)
    except (ValueError, TypeError, KeyError):
        return [gr.skip()] * 8
    form = [gr.update(choices=student_choices(data_dir), value=key), repo_id, license, dtype]
    folder = _samples_folder(data_dir, student)
    if folder is not None and not (folder / "meta.json").is_file():
        return [*form, gr.skip(), gr.skip(), f"Press Preview card to sample {key} again for its card.", gr.skip()]
    try:
        card, shown, status = preview(data_dir, public_dir, key, repo_id, license, dtype)
    except (ValueError, ModelError):
        return [*form, *[gr.skip()] * 4]
    zip_file = zip_path(public_dir, key, repo_id)
    shown_zip = remembered.get("exported") and zip_file.is_file()
    exported = gr.update(value=str(zip_file), visible=True) if shown_zip else gr.skip()
    return [*form, card, previews_html(shown, empty=""), status, exported]


def on_space() -> bool:
    """A Hugging Face Space with OAuth configured (hf_oauth: true in the README front matter)."""
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def build(data_dir: Path, public_dir: Path, identity: Identity = LOCAL_OWNER):
    initial = student_choices(data_dir)
    empty = gr.Markdown(NO_STUDENTS, visible=not initial, elem_id="publish-empty")
    with gr.Row():
        with gr.Column(scale=3):
            student = gr.Dropdown(
                label="Student",
                choices=initial,
                elem_id="publish-student",
                info="a shipped student or one of a finished distill job",
            )
            repo_id = gr.Textbox(
                label="Repo id",
                placeholder="your-name/shapes-dfd-student",
                elem_id="publish-repo",
                info="needed to push; a preview or an exported zip works without one",
            )
            with gr.Row():
                license_box = gr.Dropdown(list(publish.LICENSES), value="apache-2.0", label="License")
                dtype = gr.Dropdown(
                    list(publish.DTYPES),
                    value="fp32",
                    label="LoRA dtype",
                    elem_id="publish-dtype",
                    info="fp32 as trained; bf16/fp16 halve the files (the published copy only)",
                )
                private = gr.Checkbox(label="Private repo", value=False)
        with gr.Column(scale=2):
            if on_space():
                gr.LoginButton()
            token = gr.Textbox(
                label="Hugging Face token",
                type="password",
                elem_id="publish-token",
                info="write token; used for this push only, never stored. Empty: your login"
                + ("" if identity.public else " or HF_TOKEN"),
            )
    with gr.Row():
        preview_button = gr.Button("Preview card", elem_id="publish-preview")
        push_button = gr.Button("Push to the Hub", variant="primary", elem_id="publish-push")
        export_button = gr.Button("Export zip", elem_id="publish-export")
    status = gr.Markdown(elem_id="publish-status")
    exported = gr.File(label="Exported zip", interactive=False, visible=False, elem_id="publish-zip")
    # players with a poster frame and their whole caption (prompt and seed) under each, as in Jobs
    gr.Markdown("**Card samples** (the videos the card shows, prompt and seed under each)")
    samples = gr.HTML("", elem_id="publish-samples")
    card = gr.Markdown(elem_id="publish-card", container=True)
    last, load_js = recall.keeper("publish")

    def kept(key, repo, lic, dtype_v, exported=False) -> str:
        return json.dumps({"request": [key, repo, lic, dtype_v], "exported": exported})

    def on_preview(key, repo, lic, dtype_v):
        try:
            body, shown, message = preview(data_dir, public_dir, key, repo, lic, dtype_v)
        except (ValueError, ModelError) as err:
            raise gr.Error(str(err)) from None
        return body, previews_html(shown, empty=""), message, kept(key, repo, lic, dtype_v)

    def on_push(
        key, repo, lic, dtype_v, priv, typed, oauth_token: gr.OAuthToken | None = None, request: gr.Request = None
    ):
        try:
            message = push(
                data_dir,
                key,
                repo,
                lic,
                priv,
                typed,
                oauth_token.token if oauth_token else None,
                dtype=dtype_v,
                identity=identity,
                visitor=visitor_of(request),
            )
        except (ValueError, ModelError, PermissionError) as err:
            raise gr.Error(publish.redact(str(err), typed)) from None
        return message, ""  # the token field is emptied after use

    def on_export(key, repo, lic, dtype_v):
        try:
            path = export(data_dir, public_dir, key, repo, lic, dtype_v)
            message = "Exported: the zip holds exactly what a push uploads."
            return gr.update(value=path, visible=True), message, kept(key, repo, lic, dtype_v, exported=True)
        except (ValueError, ModelError) as err:
            raise gr.Error(str(err)) from None

    preview_button.click(
        on_preview, [student, repo_id, license_box, dtype], [card, samples, status, last], api_visibility="private"
    )
    push_button.click(
        on_push, [student, repo_id, license_box, dtype, private, token], [status, token], api_visibility="private"
    )
    export_button.click(
        on_export, [student, repo_id, license_box, dtype], [exported, status, last], api_visibility="private"
    )

    def refresh(current):
        """The list of students, the value left alone while it is one of them: the tab opened as a page loads
        may send the value from before the reload's own (reopen) and must not overwrite it."""
        choices = student_choices(data_dir)
        keys = [k for _, k in choices]
        value = {} if current in keys else {"value": keys[0] if keys else None}
        return gr.update(choices=choices, **value), gr.update(visible=not keys)

    return {
        "student": student,
        "refresh": refresh,
        "refresh_outputs": [student, empty],
        "open_page": lambda last_v: reopen(data_dir, public_dir, last_v),
        "open_inputs": [last],
        "open_outputs": [student, repo_id, license_box, dtype, card, samples, status, exported],
        "load_js": load_js,
    }
