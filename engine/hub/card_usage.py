"""The Usage section of a student's model card: how to sample it on its own times in diffusers
(WanPipeline, or WanImageToVideoPipeline for an image-to-video student, handed the student's sigmas), in
DFD Studio and in ComfyUI; for a causal student, its chunks, training length and window and DFD Studio's
causal sampler, since diffusers would run it bidirectionally (engine/hub/card.py says why, in full)."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.files import LOW_NOISE_COMFY_FILE, LOW_NOISE_LORA_FILE
from ..models.names import BUILTIN_MODELS, STUDIO_META, WAN22_TI2V_DEFAULTS, base_tasks
from ..models.students import COMFY_FILE, LORA_FILE
from .card import CardInfo, _cell, _times, public_base
from .card_cosmos import cosmos_usage, is_cosmos_base
from .run_record import CAUSAL_KEYS


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


def _frame_replacement(info: CardInfo, base_hub_id: str | None) -> bool:
    """A base that does text and image to video by frame replacement (Wan2.2-TI2V-5B), from its files."""
    return base_tasks(base_hub_id or info.base) == ("t2v", "i2v")


def _ti2v_size() -> str:
    """Wan2.2-TI2V-5B's published video (diffusers' Wan pipelines default to Wan2.1's 81 x 480 x 832)."""
    d = WAN22_TI2V_DEFAULTS
    return f", num_frames={d['num_frames']}, height={d['height']}, width={d['width']}"


def diffusers_snippet(info: CardInfo, base_hub_id: str | None) -> list[str]:
    """Python that loads the base and the LoRA and samples on the student's own times (for an
    image-to-video student, from a first frame through WanImageToVideoPipeline)."""
    i2v = info.task == "i2v"
    pipeline = "WanImageToVideoPipeline" if i2v else "WanPipeline"
    folder = _local_folder(info.base)
    if info.base in BUILTIN_MODELS:
        head = [
            "import engine.shapes.autoencoder  # defines the built-in base's autoencoder; run in DFD Studio's folder",
            "",
            f'pipe = {pipeline}.from_pretrained("engine/assets/{info.base}")',
        ]
        size = _builtin_size(folder)
    else:
        where = base_hub_id or "<the base's local folder>"
        shapes = _needs_engine(folder) and not base_hub_id
        head = (
            ["import engine.shapes.autoencoder  # the base folder names DFD Studio's autoencoder; run in its folder"]
            if shapes
            else []
        ) + ["", f'pipe = {pipeline}.from_pretrained("{where}", torch_dtype=torch.bfloat16).to("cuda")']
        size = _builtin_size(folder) if folder is not None and not base_hub_id else ""
        if not size and _frame_replacement(info, base_hub_id):
            size = _ti2v_size()
    steps = len(info.t_list) - 1
    prompt = '"a red circle moving left on a dark background"'
    # Two experts (Wan2.2-A14B): guidance off on both (the student's CFG is distilled in), each its own LoRA.
    guidance = "guidance_scale=1.0" + (", guidance_scale_2=1.0" if info.boundary_ratio is not None else "")
    if i2v:
        call = [
            'image = load_image("first_frame.png")  # the video starts from this frame',
            "torch.manual_seed(1)",
            f"video = pipe(image=image, prompt={prompt}, num_inference_steps={steps}, {guidance}{size}).frames[0]",
        ]
    else:
        call = [
            "torch.manual_seed(1)",
            f"video = pipe({prompt}, num_inference_steps={steps}, {guidance}{size}).frames[0]",
        ]
    return [
        "```python",
        "import torch",
        f"from diffusers import FlowMatchEulerDiscreteScheduler, {pipeline}",
        *(["from diffusers.utils import load_image"] if i2v else []),
        *head,
        f'pipe.load_lora_weights("{info.repo_id}", weight_name="{LORA_FILE}")',
        *_low_noise_lora(info),
        f'# or from the exported zip, unzipped: pipe.load_lora_weights("path/to/folder", weight_name="{LORA_FILE}")',
        "",
        f"T_LIST = {_times(info.t_list)}  # the student's times, from its lora_config.json",
        "# The student's sampler: predict x0 at each time, re-noise it to the next with fresh noise; the times",
        f"# are used as given (shift 1). {pipeline} takes no sigmas, so its scheduler is handed them.",
        "pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, stochastic_sampling=True)",
        "set_timesteps = pipe.scheduler.set_timesteps",
        "pipe.scheduler.set_timesteps = lambda *args, device=None, **kwargs: "
        "set_timesteps(sigmas=T_LIST[:-1], device=device)",
        "",
        *call,
        "```",
    ]


def _low_noise_lora(info: CardInfo) -> list[str]:
    """A two-expert student's second LoRA, into the low-noise expert (the pipeline switches experts at the
    boundary on the student's own times, as the student was trained)."""
    if info.boundary_ratio is None:
        return []
    return [
        f"# the low-noise expert's LoRA (times below {info.boundary_ratio}) goes into transformer_2",
        f'pipe.load_lora_weights("{info.repo_id}", weight_name="{LOW_NOISE_LORA_FILE}", load_into_transformer_2=True)',
    ]


def usage(info: CardInfo, base_hub_id: str | None) -> list[str]:
    if is_cosmos_base(info.base, base_hub_id):  # its own pipeline, guardrail and sampler note
        return cosmos_usage(info, base_hub_id)
    steps, times = len(info.t_list) - 1, _cell(info.t_list)
    lines = ["## Usage", ""]
    if info.base in BUILTIN_MODELS:
        lines += [
            f"The base is `{info.base}`, the built-in base of DFD Studio (`engine/assets/{info.base}` in its "
            "repository), not a Hub model: run this in DFD Studio's folder.",
            "",
        ]
    elif not base_hub_id:
        lines += [
            f"The base `{public_base(info.base)}` is a local folder, not a Hub model: give `from_pretrained` "
            "that folder.",
            "",
        ]
    i2v = info.task == "i2v"
    if _frame_replacement(info, base_hub_id):
        d = WAN22_TI2V_DEFAULTS
        lines += [
            "The base does text and image to video in one model (Wan2.2-TI2V): the given frame replaces the "
            "first latent frame at timestep 0 (`expand_timesteps` in its pipeline config), so the same base "
            "loads in `WanPipeline` for text-to-video and in `WanImageToVideoPipeline` for image-to-video. "
            f"Its video is {d['num_frames']} frames of {d['width']}x{d['height']} at {d['fps']} fps; the "
            "base's own recipe is 50 steps with guidance 5 on its scheduler (shift 5), this student's is below.",
            "",
        ]
    if i2v:
        lines += [
            "This is an **image-to-video** LoRA: it loads on the image-to-video base in "
            "`WanImageToVideoPipeline` and generates a video that starts from the first frame you give "
            "(that pipeline cleans prompts with `ftfy`: `pip install ftfy`).",
            "",
        ]
    if info.boundary_ratio is not None:
        lines += [
            f"The base has **two experts** (Wan2.2-A14B): `transformer` runs the times t >= {info.boundary_ratio} "
            f"and `transformer_2` the others, and this student is one LoRA per expert: `{LORA_FILE}` for "
            f"`transformer`, `{LOW_NOISE_LORA_FILE}` for `transformer_2` (`load_into_transformer_2=True`). "
            "Load both; the pipeline switches experts on the student's times as the student was trained. "
            f"In ComfyUI, load `{COMFY_FILE}` on the high-noise model and `{LOW_NOISE_COMFY_FILE}` on the "
            "low-noise one.",
            "",
        ]
    lines += [f"**diffusers**, on the student's {steps} times {times} without classifier-free guidance:", ""]
    lines += diffusers_snippet(info, base_hub_id)
    base_arg = info.base if info.base in BUILTIN_MODELS else (base_hub_id or "<the base's folder>")
    image_arg = " --image first_frame.png" if i2v else ""
    lines += [
        "",
        "**DFD Studio** samples on the student's times itself"
        + (" (from the first frame, a PNG/JPG or a video's first frame)" if i2v else "")
        + "; `--lora` takes this repo downloaded, or the exported zip unzipped:",
        "",
        "```bash",
        f"python -m engine sample --base {base_arg} --lora <this repo, downloaded>{image_arg} "
        '--prompt "..." --seeds 1-4 --out samples/',
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
    lines = [
        "## Usage",
        "",
        "This is a **causal (autoregressive)** student: it generates the video chunk by chunk, "
        "each chunk attending only to itself and to the chunks before it through a key-value cache, as "
        "Self-Forcing's students do, so it streams: a chunk is finished before the next one starts.",
    ]
    if chunk and trained:
        lines[-1] += (
            f" Its chunks are the first latent frame alone, then {chunk} latent frames "
            f"({4 * chunk} video frames) each; it was trained on {trained} latent frames "
            f"({_video_frames(trained)} video frames)."
        )
    if window:
        lines[-1] += (
            f" Its cache keeps the newest {window} latent frames (the longest context it saw in training), "
            "so it goes on past its training length."
        )
    base_arg = info.base if info.base in BUILTIN_MODELS else (base_hub_id or "<the base's folder>")
    lines += [
        "",
        f"**DFD Studio** runs it causally on its {steps} times {_cell(info.t_list)} (a longer video than "
        "training with `--num-frames`):",
        "",
        "```bash",
        f'python -m engine sample --base {base_arg} --lora <this repo, downloaded> --prompt "..." '
        "--num-frames 65 --seeds 1-4 --out samples/",
        "```",
        "",
        "diffusers' `WanPipeline` alone does **not** run it causally: `load_lora_weights` loads the file, but "
        "the pipeline runs every frame against every other in one pass (no block-causal mask, no cache), "
        f"which is not the network this LoRA was trained as. The same holds for `{COMFY_FILE}` in ComfyUI's "
        "Wan nodes. Use DFD Studio's sampler (`engine/generation/causal_sampling.py`) to run it.",
        "",
    ]
    return lines
