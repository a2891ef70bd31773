"""Publishing a student: a model card, a folder with the LoRA + card + sample videos, a zip of it, and a
push of that folder to the Hugging Face Hub through huggingface_hub.

A token is only ever an argument: it is not written to any file, not logged, and removed from any error
message the Hub client raises (`redact`).
"""

from __future__ import annotations

import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..models.students import COMFY_FILE, LORA_FILE

STUDENT_FILES = (LORA_FILE, COMFY_FILE, "lora_config.json", "made_by.json")
LICENSES = ("apache-2.0", "mit", "cc-by-4.0", "cc-by-nc-4.0", "openrail", "other")


@dataclass
class CardInfo:
    """What the model card says. `settings` and `metrics` are shown as tables in the given order."""

    repo_id: str
    base: str
    method: str  # dmd2 | dfd
    steps: int | None  # training steps of the student
    t_list: list[float]
    settings: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    samples: list[tuple[str, str]] = field(default_factory=list)  # (relative path in the folder, caption)
    license: str = "apache-2.0"
    source: str = ""  # "job j-..." or "shipped with DFD Studio"
    base_hub_id: str | None = None  # the base's hub id when it has one (for the card's base_model)


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


def method_name(method: str) -> str:
    return {"dmd2": "DMD2", "dfd": "DFD (Data-Forcing Distillation)"}.get(method, method)


def model_card(info: CardInfo) -> str:
    """The README.md of the published repo: Hub front matter, what the student is, how it was trained,
    its metrics and samples, and how to use it with diffusers."""
    steps = len(info.t_list) - 1 if info.t_list else 4
    front = ["---", "library_name: diffusers", "pipeline_tag: text-to-video", f"license: {info.license}"]
    if info.base_hub_id:
        front.append(f"base_model: {_yaml_str(info.base_hub_id)}")
    front += ["tags:", "  - lora", "  - text-to-video", "  - distillation", f"  - {info.method}", "  - dfd-studio", "---", ""]
    name = info.repo_id.split("/")[-1]
    lines = [
        f"# {name}",
        "",
        f"A {steps}-step text-to-video student LoRA for `{info.base}`, distilled with "
        f"{method_name(info.method)} in DFD Studio ({info.source or 'a DFD Studio job'}).",
        "",
        "The student samples in "
        f"{steps} network evaluations on the time list {_cell(info.t_list)} without classifier-free guidance; "
        "the teacher needs 50 steps with CFG (100 evaluations).",
        "",
        "## Training",
        "",
        "| setting | value |",
        "|---|---|",
        f"| base (teacher) | `{info.base}` |",
        f"| method | {method_name(info.method)} |",
        f"| student updates | {info.steps if info.steps is not None else 'unknown'} |",
    ]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in info.settings.items()]
    if info.metrics:
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in info.metrics.items()]
    if info.samples:
        lines += ["", "## Samples", ""]
        for path, caption in info.samples:
            lines += [f"- [{_cell(caption)}]({path})"]
        lines += ["", f'<video src="{info.samples[0][0]}" controls loop autoplay muted></video>']
    base_ref = info.base_hub_id or info.base
    lines += ["", "## Usage", ""]
    if not info.base_hub_id:
        lines += [f"`{info.base}` is not a Hub model: give `from_pretrained` its local folder (the built-in `shapes-tiny` "
                  "is `engine/assets/shapes-tiny` in DFD Studio: run the code below in DFD Studio's folder after "
                  "`import engine.shapes.autoencoder`, which defines its autoencoder).", ""]
    lines += [
        "```python",
        "import torch",
        "from diffusers import WanPipeline",
        "",
        f'pipe = WanPipeline.from_pretrained("{base_ref}", torch_dtype=torch.bfloat16).to("cuda")',
        f'pipe.load_lora_weights("{info.repo_id}", weight_name="{LORA_FILE}")',
        f'video = pipe("a red circle moving left on a dark background", num_inference_steps={steps}, guidance_scale=1.0).frames[0]',
        "```",
        "",
        f"`num_inference_steps={steps}` with the pipeline's scheduler approximates the student's time list; "
        "DFD Studio's sampler uses it exactly:",
        "",
        "```bash",
        f"python -m engine sample --base {base_ref} --lora <this repo, downloaded> --prompt \"...\" --seeds 1-4",
        "```",
        "",
        f"`{COMFY_FILE}` holds the same weights under the original Wan module names "
        "for ComfyUI.",
        "",
        "## License",
        "",
        f"{info.license}. The base model's own license applies to its weights.",
        "",
    ]
    return "\n".join(front + lines)


def stage_folder(lora_dir: str | Path, out_dir: str | Path, card: str,
                 samples: list[tuple[Path, str]] = ()) -> Path:
    """Write the publishable folder: the student's files, README.md (the card) and samples/<name>.
    Any earlier content of out_dir is replaced. Returns out_dir."""
    lora_dir, out_dir = Path(lora_dir), Path(out_dir)
    if not (lora_dir / LORA_FILE).is_file():
        raise ValueError(f"no {LORA_FILE} in {lora_dir}; pick a finished student")
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "samples").mkdir(parents=True)
    for name in STUDENT_FILES:
        if (lora_dir / name).is_file():
            shutil.copyfile(lora_dir / name, tmp / name)
    for path, relative in samples:
        target = tmp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (tmp / "README.md").write_text(card)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def export_zip(folder: str | Path, zip_path: str | Path) -> Path:
    """Zip a staged folder (what a push would upload), atomically."""
    folder, zip_path = Path(folder), Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    os.replace(tmp, zip_path)
    return zip_path


def check_repo_id(repo_id: str) -> str:
    """A valid 'namespace/name' repo id, stripped; ValueError with the rule otherwise."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    repo_id = (repo_id or "").strip()
    if repo_id.count("/") != 1:
        raise ValueError(f"the repo id {repo_id!r} must look like 'your-name/model-name'")
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise ValueError(
            f"the repo id {repo_id!r} is not valid: use letters, digits, '-', '_' and '.', as in 'your-name/model-name'"
        ) from None
    return repo_id


def pick_token(typed: str | None, oauth: str | None, environ=None) -> tuple[str | None, str]:
    """The token to push with and where it came from: the password field, then a Hugging Face login,
    then HF_TOKEN. (None, reason) when there is none."""
    environ = os.environ if environ is None else environ
    if typed and typed.strip():
        return typed.strip(), "the token field"
    if oauth:
        return oauth, "your Hugging Face login"
    if environ.get("HF_TOKEN", "").strip():
        return environ["HF_TOKEN"].strip(), "HF_TOKEN"
    return None, "no token: paste a write token, log in with Hugging Face, or set HF_TOKEN"


def redact(text: str, token: str | None) -> str:
    """`text` with the token (and anything that looks like an hf_ token) replaced by '***'."""
    import re

    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "***", text)


def push_folder(folder: str | Path, repo_id: str, token: str, private: bool = False,
                commit_message: str = "Upload student LoRA from DFD Studio", endpoint: str | None = None) -> str:
    """Create the model repo if needed and upload the folder; returns the repo's URL. Raises ValueError
    with one readable sentence (the token never appears in it). `endpoint`: another Hub (default hf.co)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = check_repo_id(repo_id)
    if not token:
        raise ValueError("no Hugging Face token: paste a write token, log in with Hugging Face, or set HF_TOKEN")
    api = HfApi(token=token, endpoint=endpoint)
    try:
        repo = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder), commit_message=commit_message)
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            raise ValueError(
                f"the Hub refused the token ({status}); use a token with write access to {repo_id.split('/')[0]}"
            ) from None
        raise ValueError(f"the Hub answered {status or 'an error'}: {redact(str(err), token).splitlines()[0]}") from None
    except (OSError, ConnectionError) as err:
        raise ValueError(
            f"could not reach the Hugging Face Hub ({type(err).__name__}); check the network, or use Export zip"
        ) from None
    url = str(getattr(repo, "url", "") or f"https://huggingface.co/{repo_id}")
    return redact(url, token)
