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

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..models.names import BUILTIN_MODELS, STUDIO_META
from ..models.students import COMFY_FILE, LORA_FILE
from .run_record import (CAUSAL_KEYS, causal_record, real_clip_updates, run_folder, training_previews,  # noqa: F401
                         training_record)

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


def front_matter(info: CardInfo, base_hub_id: str | None) -> list[str]:
    lines = ["---", "library_name: diffusers", f"pipeline_tag: {_kind(info)}", f"license: {info.license}"]
    if base_hub_id:  # the Hub reads the relation of a named base only: alone it says nothing
        lines += [f"base_model: {_yaml_str(base_hub_id)}", "base_model_relation: adapter"]
    lines += ["tags:", "  - lora", f"  - {_kind(info)}", "  - distillation", f"  - {info.method}", "  - dfd-studio"]
    lines += ["  - causal", "  - autoregressive"] if info.causal is not None else []
    if info.samples:  # the Hub shows these as the card's gallery
        lines += ["widget:"]
        for path, caption in info.samples:
            lines += [f"  - text: {_yaml_str(_caption_prompt(caption))}", "    output:", f"      url: {_yaml_str(path)}"]
    return lines + ["---", ""]


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _training_rows(info: CardInfo) -> list[str]:
    freq = info.student_update_freq or info.settings.get("student_update_freq")
    p = info.data_forcing_prob if info.data_forcing_prob is not None else info.settings.get("data_forcing_prob")
    rows = [f"| base (teacher) | `{public_base(info.base)}` |", f"| method | {method_name(info.method)} |",
            f"| training steps | {info.steps if info.steps is not None else 'unknown'} |"]
    if info.steps is not None and freq:
        student = info.steps // int(freq)
        rows += [f"| student updates | {student} (every {_ordinal(int(freq))} step) |",
                 f"| fake-score updates | {info.steps - student} |"]
    if info.method == "dfd" and info.started_from:
        rows += [f"| started from | the DMD2 student `{_cell(info.started_from)}` |"]
    if info.method == "dfd" and p is not None:
        rows += [f"| data-forcing probability p | {_cell(p)} |"]
    if info.method == "dfd" and info.real_clip_updates is not None:
        k, n = info.real_clip_updates
        rows += [f"| real clip used | on {k} of {n} student updates{_none_used(k)} |"]
    rows += [f"| sampling steps | {len(info.t_list) - 1} |", f"| sampling times (t_list) | {_cell(info.t_list)} |",
             f"| LoRA weights | {info.dtype} |"]
    shown = {"student_update_freq", "data_forcing_prob", "t_list"}
    return rows + [f"| {_cell(k)} | {_cell(v)} |" for k, v in info.settings.items() if k not in shown]


def _none_used(k: int) -> str:
    return " (none: this run trained as DMD2 continued)" if k == 0 else ""


def _local_folder(base: str) -> Path | None:
    """The base's pipeline folder on this machine: the built-in base's, or the folder `base` names."""
    if base in BUILTIN_MODELS:
        return BUILTIN_MODELS[base]
    folder = Path(base).expanduser()
    return folder if (folder / "model_index.json").is_file() else None


def _needs_engine(folder: Path | None) -> bool:
    """A folder of DFD Studio's own kind (its model_index.json names our autoencoder class), which only
    loads after that class is imported."""
    try:
        return folder is not None and "engine.shapes" in (folder / "model_index.json").read_text()
    except OSError:
        return False


def _builtin_size(folder: Path | None) -> str:
    """`num_frames=..., height=..., width=..., max_sequence_length=...` of a base folder that names its own
    size and prompt length in its dfd_studio.json (WanPipeline's defaults are Wan's 81 x 480 x 832 and
    512 tokens)."""
    try:
        meta = json.loads((folder / STUDIO_META).read_text())
    except (OSError, ValueError, TypeError):
        return ""
    keys = (("num_frames", "num_frames"), ("height", "height"), ("width", "width"), ("text_len", "max_sequence_length"))
    return "".join(f", {arg}={meta[key]}" for key, arg in keys if key in meta)


def diffusers_snippet(info: CardInfo, base_hub_id: str | None) -> list[str]:
    """Python that loads the base and the LoRA and samples on the student's own times (for an
    image-to-video student, from a first frame through WanImageToVideoPipeline)."""
    i2v = info.task == "i2v"
    pipeline = "WanImageToVideoPipeline" if i2v else "WanPipeline"
    folder = _local_folder(info.base)
    if info.base in BUILTIN_MODELS:
        head = ["import engine.shapes.autoencoder  # defines the built-in base's autoencoder; run in DFD Studio's folder",
                "", f'pipe = {pipeline}.from_pretrained("engine/assets/{info.base}")']
        size = _builtin_size(folder)
    else:
        where = base_hub_id or "<the base's local folder>"
        shapes = _needs_engine(folder) and not base_hub_id
        head = (["import engine.shapes.autoencoder  # the base folder names DFD Studio's autoencoder; run in its folder"]
                if shapes else []) + ["", f'pipe = {pipeline}.from_pretrained("{where}", torch_dtype=torch.bfloat16).to("cuda")']
        size = _builtin_size(folder) if folder is not None and not base_hub_id else ""
    steps = len(info.t_list) - 1
    prompt = '"a red circle moving left on a dark background"'
    if i2v:
        call = ['image = load_image("first_frame.png")  # the video starts from this frame',
                "torch.manual_seed(1)",
                f"video = pipe(image=image, prompt={prompt}, num_inference_steps={steps}, guidance_scale=1.0{size}).frames[0]"]
    else:
        call = ["torch.manual_seed(1)",
                f"video = pipe({prompt}, num_inference_steps={steps}, guidance_scale=1.0{size}).frames[0]"]
    return [
        "```python",
        "import torch",
        f"from diffusers import FlowMatchEulerDiscreteScheduler, {pipeline}",
        *(["from diffusers.utils import load_image"] if i2v else []),
        *head,
        f'pipe.load_lora_weights("{info.repo_id}", weight_name="{LORA_FILE}")',
        f'# or from the exported zip, unzipped: pipe.load_lora_weights("path/to/folder", weight_name="{LORA_FILE}")',
        "",
        f"T_LIST = {_times(info.t_list)}  # the student's times, from its lora_config.json",
        "# The student's sampler: predict x0 at each time, re-noise it to the next with fresh noise; the times",
        f"# are used as given (shift 1). {pipeline} takes no sigmas, so its scheduler is handed them.",
        "pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, stochastic_sampling=True)",
        "set_timesteps = pipe.scheduler.set_timesteps",
        "pipe.scheduler.set_timesteps = lambda *args, device=None, **kwargs: set_timesteps(sigmas=T_LIST[:-1], device=device)",
        "",
        *call,
        "```",
    ]


def usage(info: CardInfo, base_hub_id: str | None) -> list[str]:
    steps, times = len(info.t_list) - 1, _cell(info.t_list)
    lines = ["## Usage", ""]
    if info.base in BUILTIN_MODELS:
        lines += [f"The base is `{info.base}`, the built-in base of DFD Studio (`engine/assets/{info.base}` in its "
                  "repository), not a Hub model: run this in DFD Studio's folder.", ""]
    elif not base_hub_id:
        lines += [f"The base `{public_base(info.base)}` is a local folder, not a Hub model: give `from_pretrained` "
                  "that folder.", ""]
    i2v = info.task == "i2v"
    if i2v:
        lines += ["This is an **image-to-video** LoRA: it loads on the image-to-video base in "
                  "`WanImageToVideoPipeline` and generates a video that starts from the first frame you give "
                  "(that pipeline cleans prompts with `ftfy`: `pip install ftfy`).", ""]
    lines += [f"**diffusers**, on the student's {steps} times {times} without classifier-free guidance:", ""]
    lines += diffusers_snippet(info, base_hub_id)
    base_arg = info.base if info.base in BUILTIN_MODELS else (base_hub_id or "<the base's folder>")
    image_arg = " --image first_frame.png" if i2v else ""
    lines += [
        "",
        "**DFD Studio** samples on the student's times itself" + (" (from the first frame, a PNG/JPG or a video's "
                                                                   "first frame)" if i2v else "")
        + "; `--lora` takes this repo downloaded, or the exported zip unzipped:",
        "",
        "```bash",
        f'python -m engine sample --base {base_arg} --lora <this repo, downloaded>{image_arg} --prompt "..." --seeds 1-4'
        " --out samples/",
        "```",
        "",
        f"**ComfyUI**: load `{COMFY_FILE}` (the same weights under the original Wan module names) with "
        "LoraLoaderModelOnly, and sample with SamplerCustom: sampler `lcm` (it predicts x0 and re-noises with "
        f"fresh noise, as the student was trained to), sigmas from ManualSigmas `{times}`, CFG 1.0"
        + (", the first frame given through the WanImageToVideo node as for the base." if i2v else "."),
        "",
    ]
    return lines


def _video_frames(latent_frames: int) -> int:
    """Video frames of `latent_frames` latent frames: Wan's VAE codes frame 0 alone, then 4 frames per latent."""
    return 4 * (latent_frames - 1) + 1


def causal_usage(info: CardInfo, base_hub_id: str | None) -> list[str]:
    """How to run a causal student: what it is (chunks, training length, window) and DFD Studio's sampler,
    since diffusers' WanPipeline alone runs the LoRA bidirectionally, not as the student it was trained as."""
    layout, steps = info.causal or {}, len(info.t_list) - 1
    chunk, trained, window = (layout.get(key) for key in CAUSAL_KEYS)
    lines = ["## Usage", "", "This is a **causal (autoregressive)** student: it generates the video chunk by chunk, "
             "each chunk attending only to itself and to the chunks before it through a key-value cache, as "
             "Self-Forcing's students do, so it streams: a chunk is finished before the next one starts."]
    if chunk and trained:
        lines[-1] += (f" Its chunks are the first latent frame alone, then {chunk} latent frames "
                      f"({4 * chunk} video frames) each; it was trained on {trained} latent frames "
                      f"({_video_frames(trained)} video frames).")
    if window:
        lines[-1] += (f" Its cache keeps the newest {window} latent frames (the longest context it saw in training), "
                      "so it goes on past its training length.")
    base_arg = info.base if info.base in BUILTIN_MODELS else (base_hub_id or "<the base's folder>")
    lines += ["", f"**DFD Studio** runs it causally on its {steps} times {_cell(info.t_list)} (a longer video than "
              "training with `--num-frames`):", "", "```bash",
              f'python -m engine sample --base {base_arg} --lora <this repo, downloaded> --prompt "..." '
              "--num-frames 65 --seeds 1-4 --out samples/", "```", "",
              "diffusers' `WanPipeline` alone does **not** run it causally: `load_lora_weights` loads the file, but "
              "the pipeline runs every frame against every other in one pass (no block-causal mask, no cache), "
              f"which is not the network this LoRA was trained as. The same holds for `{COMFY_FILE}` in ComfyUI's "
              "Wan nodes. Use DFD Studio's sampler (`engine/generation/causal_sampling.py`) to run it.", ""]
    return lines


def model_card(info: CardInfo) -> str:
    """The README.md of the published repo."""
    base_hub_id = info.base_hub_id or hub_id_of(info.base)
    steps = len(info.t_list) - 1 if info.t_list else 4
    name = info.repo_id.split("/")[-1]
    base_said = (f"the built-in `{info.base}` of DFD Studio" if info.base in BUILTIN_MODELS
                 else f"`{base_hub_id or public_base(info.base)}`")
    lines = [
        f"# {name}", "",
        f"A {steps}-step {'causal (autoregressive) ' if info.causal is not None else ''}{_kind(info)} student LoRA "
        f"for {base_said}, distilled with {method_name(info.method)} in DFD Studio "
        f"({info.source or 'a DFD Studio job'}).", "",
        f"The student samples in {steps} network evaluations on its times {_cell(info.t_list)} without "
        "classifier-free guidance" + (" (per chunk, plus one that commits the chunk to the cache)"
                                      if info.causal is not None else "")
        + "; the teacher needs 50 steps with CFG (100 evaluations).", "",
        "## Training", "", "| setting | value |", "|---|---|", *_training_rows(info),
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
    lines += ["", *(causal_usage(info, base_hub_id) if info.causal is not None else usage(info, base_hub_id)),
              "## License", "",
              f"{info.license}. The base model's own license applies to its weights.", ""]
    return "\n".join(front_matter(info, base_hub_id) + lines)
