"""The Usage section of a Cosmos-Predict2.5 student's card: Cosmos2_5_PredictBasePipeline (NVIDIA's
guardrail included) with the LoRA through CosmosLoraLoaderMixin, on the student's times.

The pipeline's loop keeps the given frame only on a deterministic path: where the frame is given, it
uses the velocity from its *starting* noise to that frame, fixed for the whole run, so re-noising with
fresh noise between steps (the student's own sampler) would leave noise in that frame. The snippet
therefore hands the pipeline Euler steps on the student's times (the deterministic sampler through the
same x0 predictions); DFD Studio's `sample` runs the sampler the student was trained with."""

from __future__ import annotations

import json

from ..models.names import HUB_REVISIONS, STUDIO_META, resolve_model
from ..models.students import LORA_FILE
from .card import CardInfo, _cell, _times, public_base

COSMOS_PIPELINE = "Cosmos2_5_PredictBasePipeline"
COSMOS_RECIPE_SIZE = {"num_frames": 93, "height": 704, "width": 1280}  # the pipeline's defaults
# NVIDIA's Cosmos models are under the NVIDIA Open Model License, which binds a derivative model (a LoRA of
# one) too; the Hub names a licence of its own list only, any other as `other` with a name and a link.
NVIDIA_OPEN_MODEL_LICENSE = {
    "license": "other",
    "license_name": "nvidia-open-model-license",
    "license_link": "https://www.nvidia.com/en-us/agreements/enterprise-software/nvidia-open-model-license/",
}


def is_cosmos_base(base: str, base_hub_id: str | None) -> bool:
    """Whether the base is Cosmos-Predict2.5: its folder's model_index.json names the pipeline, or its
    hub id is NVIDIA's Cosmos-Predict2.5 repo (read without torch or network)."""
    try:
        _, folder = resolve_model(base)
        if folder is not None:
            return json.loads((folder / "model_index.json").read_text()).get("_class_name") == COSMOS_PIPELINE
    except (ValueError, OSError):
        pass
    return "cosmos-predict2.5" in (base_hub_id or base or "").lower()


def base_license(info: CardInfo, base_hub_id: str | None) -> dict | None:
    """The licence a student's card must carry because of its base (the NVIDIA Open Model License of a
    Cosmos base, whatever licence was picked for the LoRA), or None: the picked one applies."""
    return NVIDIA_OPEN_MODEL_LICENSE if is_cosmos_base(info.base, base_hub_id) else None


def _size(base: str) -> str:
    """The base folder's own video and prompt size (its dfd_studio.json), else none: the pipeline's
    defaults are the real model's."""
    try:
        _, folder = resolve_model(base)
        meta = json.loads((folder / STUDIO_META).read_text())
    except (ValueError, OSError, TypeError):
        return ""
    keys = (("num_frames", "num_frames"), ("height", "height"), ("width", "width"), ("text_len", "max_sequence_length"))
    return "".join(f", {arg}={meta[key]}" for key, arg in keys if key in meta)


def cosmos_usage(info: CardInfo, base_hub_id: str | None) -> list[str]:
    steps, times = len(info.t_list) - 1, _cell(info.t_list)
    where = base_hub_id or "<the base's local folder>"
    size = "" if base_hub_id else _size(info.base)
    revision = f', revision="{HUB_REVISIONS[base_hub_id]}"' if base_hub_id in HUB_REVISIONS else ""
    lines = ["## Usage", ""]
    if not base_hub_id:
        lines += [f"The base `{public_base(info.base)}` is a local folder: give `from_pretrained` that folder.", ""]
    lines += [
        "This is an **image-to-video** LoRA for Cosmos-Predict2.5, loaded by `Cosmos2_5_PredictBasePipeline` "
        "(CosmosLoraLoaderMixin). That pipeline runs NVIDIA's guardrail on every prompt and video: it needs "
        "`pip install cosmos_guardrail` (and torchvision), and the base's NVIDIA Open Model License applies.",
        "",
        f"**diffusers**, on the student's {steps} times {times} without classifier-free guidance. The "
        "pipeline keeps the given frame only on a deterministic path, so it takes Euler steps on these times; "
        "DFD Studio's sampler below re-noises between them as the student was trained to:",
        "",
        "```python",
        "import torch",
        f"from diffusers import {COSMOS_PIPELINE}, FlowMatchEulerDiscreteScheduler",
        "from diffusers.utils import load_image",
        "",
        f'pipe = {COSMOS_PIPELINE}.from_pretrained("{where}"{revision}, torch_dtype=torch.bfloat16).to("cuda")',
        f'pipe.load_lora_weights("{info.repo_id}", weight_name="{LORA_FILE}")',
        "",
        f"T_LIST = {_times(info.t_list)}  # the student's times, from its lora_config.json",
        "pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)",
        "set_timesteps = pipe.scheduler.set_timesteps",
        "pipe.scheduler.set_timesteps = lambda *args, device=None, **kwargs: "
        "set_timesteps(sigmas=T_LIST[:-1], device=device)",
        "",
        'image = load_image("first_frame.png")  # the video starts from this frame',
        f'video = pipe(image=image, prompt="a robot arm welding a steel beam", num_inference_steps={steps}, '
        f"guidance_scale=1.0{size}, generator=torch.Generator().manual_seed(1)).frames[0]",
        "```",
        "",
        "**DFD Studio** samples on the student's times itself, from the first frame, without the pipeline; "
        "`--lora` takes this repo downloaded:",
        "",
        "```bash",
        f"python -m engine sample --base {base_hub_id or '<the base folder>'} --lora <this repo, downloaded> "
        '--image first_frame.png --prompt "..." --seeds 1-4 --out samples/',
        "```",
        "",
    ]
    return lines
