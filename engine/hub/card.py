"""The model card of a published student: the Hub's front matter (base_model, base_model_relation, a
`widget` gallery of the sample videos), what the student is, how it was trained (DMD2/DFD settings,
counted as the trainer counts them), its evaluation, and how to sample it on its own times in diffusers,
in DFD Studio and in ComfyUI.

The student samples as the DMD2/DFD paper's few-step sampler does (engine/generation/sampling.py
`student_sample`): at each time of its t_list it predicts x0 and re-noises it to the next time with fresh
noise. In diffusers that is FlowMatchEulerDiscreteScheduler with `stochastic_sampling=True` and `shift=1.0`
(the times are used as given) on the sigmas t_list[:-1]; WanPipeline asks its scheduler for
`num_inference_steps` times and takes no sigmas, so the card's snippet hands the scheduler the student's
sigmas. In ComfyUI it is the `lcm` sampler (x0, then fresh noise) on ManualSigmas = the t_list.

An image-to-video student (its run's task "i2v", recorded in distill_config.json) is a LoRA of an
image-to-video base: its card says so and loads it in WanImageToVideoPipeline, which takes the first frame
as `image` and asks its scheduler for times the same way.

A causal (autoregressive) student (its lora_config.json says `causal`, with `chunk_frames`,
`trained_latent_frames` and `window_frames`) is the same LoRA file, but it is only the student it was trained
as under block-causal attention with a key-value cache, chunk after chunk: diffusers' WanPipeline would run it
bidirectionally over the whole clip. Its card says so, gives its chunks, training length and window, and runs
it with DFD Studio's causal sampler instead of a diffusers snippet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.files import LORA_FILE, LOW_NOISE_LORA_FILE
from ..models.names import BUILTIN_MODELS
from .run_record import (  # re-exported: publish, the CLI and tests read a run's record from here
    CAUSAL_KEYS,  # noqa: F401
    causal_record,  # noqa: F401
    real_clip_updates,  # noqa: F401
    run_folder,  # noqa: F401
    training_previews,  # noqa: F401
    training_record,  # noqa: F401
)

HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
HF_CACHE_SNAPSHOT = re.compile(r"models--([\w.-]+)--([\w.-]+)[/\\]snapshots[/\\]")


@dataclass
class CardInfo:
    """What the model card says. `settings` and `metrics` are shown as tables in the given order.

    `steps` counts training steps as the trainer does: every `student_update_freq`-th updates the
    student, the others the fake score (docs/method.md)."""

    repo_id: str
    base: str
    method: str  # dmd2 | dfd
    steps: int | None  # training steps of the run
    t_list: list[float]
    settings: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    samples: list[tuple[str, str]] = field(default_factory=list)  # (relative path in the folder, caption)
    license: str = "apache-2.0"
    source: str = ""  # "job j-..." or "shipped with DFD Studio"
    base_hub_id: str | None = None  # the base's hub id; found from `base` when not given (hub_id_of)
    student_update_freq: int | None = None  # found in `settings` when not given
    data_forcing_prob: float | None = None  # DFD's p; found in `settings` when not given
    evaluation: str = ""  # a Markdown table from `engine evaluate` (evaluate.to_markdown), when one was run
    dtype: str = "fp32"  # how the published LoRA files store their weights
    task: str = "t2v"  # what the student generates: t2v (from a caption), i2v (from a first frame and a caption)
    causal: dict | None = None  # a causal student's chunk_frames, trained_latent_frames, window_frames; None if not
    started_from: str | None = None  # DFD: the DMD2 student the run started from (its name, a job id)
    real_clip_updates: tuple[int, int] | None = None  # DFD: (student updates a real clip pulled on, all of them)
    boundary_ratio: float | None = None  # a two-expert base's (Wan2.2-A14B) switch: one LoRA per expert; else None


def hub_id_of(base: str) -> str | None:
    """The base's Hugging Face hub id: the name itself when it is one (and not a local folder), or the id
    a hub cache snapshot folder was downloaded from; None for the built-in base and other folders."""
    base = (base or "").strip()
    if base in BUILTIN_MODELS:
        return None
    cached = HF_CACHE_SNAPSHOT.search(base)
    if cached:
        return f"{cached.group(1)}/{cached.group(2)}"
    if HUB_ID.fullmatch(base) and not Path(base).exists():
        return base
    return None


def public_base(base: str) -> str:
    """How a student's base is named in what is published (the card, lora_config.json): a built-in name or a
    hub id as it is, a hub cache snapshot as the id it came from, any other folder by its own name only: a
    server's absolute path says nothing to a reader and tells everyone how the server's disk is laid out."""
    base = (base or "").strip()
    if base in BUILTIN_MODELS:
        return base
    hub_id = hub_id_of(base)
    if hub_id:
        return hub_id
    parts = [part for part in re.split(r"[/\\]", base) if part]
    return parts[-1] if parts else base


def method_name(method: str) -> str:
    return {"dmd2": "DMD2", "dfd": "DFD (Data-Forcing Distillation)"}.get(method, method)


def _yaml_str(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cell(value) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _times(t_list: list[float]) -> str:
    return "[" + ", ".join(f"{t:g}" for t in t_list) + "]"


def _caption_prompt(caption: str) -> str:
    """The prompt of a sample's caption ("a red circle (seed 1)", "a red circle (step 40, seed 1)" -> "a red
    circle")."""
    return re.sub(r"\s*\((?:step \d+, )?seed \d+\)$", "", caption)


def _kind(info: CardInfo) -> str:
    return "image-to-video" if info.task == "i2v" else "text-to-video"


def front_matter(info: CardInfo, base_hub_id: str | None, base_license: dict | None = None) -> list[str]:
    """base_license: the Hub's license keys (license, license_name, license_link) the base imposes, or None."""
    lines = ["---", "library_name: diffusers", f"pipeline_tag: {_kind(info)}"]
    lines += [f"{k}: {v}" for k, v in (base_license or {"license": info.license}).items()]
    if base_hub_id:  # the Hub reads the relation of a named base only: alone it says nothing
        lines += [f"base_model: {_yaml_str(base_hub_id)}", "base_model_relation: adapter"]
    lines += ["tags:", "  - lora", f"  - {_kind(info)}", "  - distillation", f"  - {info.method}", "  - dfd-studio"]
    lines += ["  - causal", "  - autoregressive"] if info.causal is not None else []
    if info.samples:  # the Hub shows these as the card's gallery
        lines += ["widget:"]
        for path, caption in info.samples:
            lines += [
                f"  - text: {_yaml_str(_caption_prompt(caption))}",
                "    output:",
                f"      url: {_yaml_str(path)}",
            ]
    return lines + ["---", ""]


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _training_rows(info: CardInfo) -> list[str]:
    freq = info.student_update_freq or info.settings.get("student_update_freq")
    p = info.data_forcing_prob if info.data_forcing_prob is not None else info.settings.get("data_forcing_prob")
    rows = [
        f"| base (teacher) | `{public_base(info.base)}` |",
        f"| method | {method_name(info.method)} |",
        f"| training steps | {info.steps if info.steps is not None else 'unknown'} |",
    ]
    if info.steps is not None and freq:
        student = info.steps // int(freq)
        rows += [
            f"| student updates | {student} (every {_ordinal(int(freq))} step) |",
            f"| fake-score updates | {info.steps - student} |",
        ]
    if info.method == "dfd" and info.started_from:
        rows += [f"| started from | the DMD2 student `{_cell(info.started_from)}` |"]
    if info.method == "dfd" and p is not None:
        rows += [f"| data-forcing probability p | {_cell(p)} |"]
    if info.method == "dfd" and info.real_clip_updates is not None:
        k, n = info.real_clip_updates
        rows += [f"| real clip used | on {k} of {n} student updates{_none_used(k)} |"]
    if info.boundary_ratio is not None:
        high = [t for t in info.t_list[:-1] if t >= info.boundary_ratio]
        low = [t for t in info.t_list[:-1] if t < info.boundary_ratio]
        rows += [
            f"| experts | two, switched at t = {_cell(info.boundary_ratio)}: `{LORA_FILE}` on `transformer` "
            f"(times {_cell(high)}), `{LOW_NOISE_LORA_FILE}` on `transformer_2` (times {_cell(low)}) |"
        ]
    rows += [
        f"| sampling steps | {len(info.t_list) - 1} |",
        f"| sampling times (t_list) | {_cell(info.t_list)} |",
        f"| LoRA weights | {info.dtype} |",
    ]
    shown = {"student_update_freq", "data_forcing_prob", "t_list"}
    return rows + [f"| {_cell(k)} | {_cell(v)} |" for k, v in info.settings.items() if k not in shown]


def _none_used(k: int) -> str:
    return " (none: this run trained as DMD2 continued)" if k == 0 else ""


def model_card(info: CardInfo) -> str:
    """The README.md of the published repo."""
    # card_usage and card_cosmos build on this module's CardInfo and cells
    from .card_cosmos import base_license
    from .card_usage import causal_usage, usage

    base_hub_id = info.base_hub_id or hub_id_of(info.base)
    imposed = base_license(info, base_hub_id)
    steps = len(info.t_list) - 1 if info.t_list else 4
    name = info.repo_id.split("/")[-1]
    base_said = (
        f"the built-in `{info.base}` of DFD Studio"
        if info.base in BUILTIN_MODELS
        else f"`{base_hub_id or public_base(info.base)}`"
    )
    lines = [
        f"# {name}",
        "",
        f"A {steps}-step {'causal (autoregressive) ' if info.causal is not None else ''}{_kind(info)} student LoRA "
        f"for {base_said}, distilled with {method_name(info.method)} in DFD Studio "
        f"({info.source or 'a DFD Studio job'}).",
        "",
        f"The student samples in {steps} network evaluations on its times {_cell(info.t_list)} without "
        "classifier-free guidance"
        + (" (per chunk, plus one that commits the chunk to the cache)" if info.causal is not None else "")
        + "; the teacher needs 50 steps with CFG (100 evaluations).",
        "",
        "## Training",
        "",
        "| setting | value |",
        "|---|---|",
        *_training_rows(info),
    ]
    if info.evaluation:
        lines += ["", "## Evaluation", "", info.evaluation.strip()]
    if info.metrics:
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in info.metrics.items()]
    if info.samples:
        lines += ["", "## Samples", ""]
        lines += [f"- [{_cell(caption)}]({path})" for path, caption in info.samples]
        lines += ["", f'<video src="{info.samples[0][0]}" controls loop autoplay muted></video>']
    lines += [
        "",
        *(causal_usage(info, base_hub_id) if info.causal is not None else usage(info, base_hub_id)),
        "## License",
        "",
        _license_text(info, imposed),
        "",
    ]
    return "\n".join(front_matter(info, base_hub_id, imposed) + lines)


def _license_text(info: CardInfo, imposed: dict | None) -> str:
    if imposed is None:
        return f"{info.license}. The base model's own license applies to its weights."
    return (
        f"This LoRA is a derivative model of its base and is shared under the base's license, the "
        f"[NVIDIA Open Model License]({imposed['license_link']}); the license picked when publishing is not used."
    )
