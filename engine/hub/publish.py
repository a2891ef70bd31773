"""Publishing a student: a folder with the LoRA + model card (engine/hub/card.py) + sample videos, a zip
of it, and a push of that folder to the Hugging Face Hub through huggingface_hub. The staged LoRA files
can be stored in bf16 or fp16 (engine/hub/weights.py); the student's own folder is never changed.

A token is only ever an argument: it is not written to any file, not logged, and removed from any error
message the Hub client raises (`redact`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path

from ..core.files import LOW_NOISE_COMFY_FILE, LOW_NOISE_LORA_FILE
from ..models.students import COMFY_FILE, LORA_FILE
from .card import CardInfo, hub_id_of, method_name, model_card, public_base, training_previews, training_record
from .weights import DTYPES, check_dtype, convert_weights

__all__ = [
    "CardInfo",
    "COMFY_FILE",
    "DTYPES",
    "LICENSES",
    "LORA_FILE",
    "STUDENT_FILES",
    "check_namespace",
    "check_repo_id",
    "export_zip",
    "hub_id_of",
    "method_name",
    "model_card",
    "pick_token",
    "push_folder",
    "redact",
    "refused",
    "stage_folder",
    "training_previews",
    "training_record",
]

# A two-expert student's low-noise files travel beside the others (engine/models/experts.py).
STUDENT_FILES = (LORA_FILE, COMFY_FILE, LOW_NOISE_LORA_FILE, LOW_NOISE_COMFY_FILE, "lora_config.json", "made_by.json")
LICENSES = ("apache-2.0", "mit", "cc-by-4.0", "cc-by-nc-4.0", "openrail", "other")


def stage_folder(
    lora_dir: str | Path, out_dir: str | Path, card: str, samples: list[tuple[Path, str]] = (), dtype: str = "fp32"
) -> Path:
    """Write the publishable folder: the student's files, README.md (the card) and samples/<name>, with
    the LoRA files' weights in `dtype` (fp32 as trained, bf16 or fp16). Any earlier content of out_dir
    is replaced. Returns out_dir."""
    lora_dir, out_dir = Path(lora_dir), Path(out_dir)
    if not (lora_dir / LORA_FILE).is_file():
        raise ValueError(f"no {LORA_FILE} in {lora_dir}; pick a finished student")
    check_dtype(dtype)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "samples").mkdir(parents=True)
    for name in STUDENT_FILES:
        if (lora_dir / name).is_file():
            shutil.copyfile(lora_dir / name, tmp / name)
    _publish_base(tmp / "lora_config.json")
    for name in (LORA_FILE, COMFY_FILE, LOW_NOISE_LORA_FILE, LOW_NOISE_COMFY_FILE):
        if dtype != "fp32" and (tmp / name).is_file():
            convert_weights(tmp / name, dtype)
    for path, relative in samples:
        target = tmp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (tmp / "README.md").write_text(card)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def _publish_base(config: Path) -> None:
    """The staged lora_config.json names its base as `public_base` does, never by a path on this server."""
    try:
        settings = json.loads(config.read_text())
    except (OSError, ValueError):
        return
    if isinstance(settings, dict) and isinstance(settings.get("base"), str):
        settings["base"] = public_base(settings["base"])
        config.write_text(json.dumps(settings, indent=2))


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
    # huggingface_hub: only when the Hub is reached
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


OAUTH_SOURCE = "your Hugging Face login"


def pick_token(
    typed: str | None, oauth: str | None, environ=None, cached_login: bool = False, server_token: bool = True
) -> tuple[str | None, str]:
    """The token to push with and where it came from: the password field (or --token), then a Hugging
    Face login, then HF_TOKEN, then (cached_login: the command line only, never a web server's visitors)
    the token `hf auth login` stored. (None, reason) when there is none. server_token=False (a public
    studio): never HF_TOKEN, which is the server's own and would let any visitor write as its owner."""
    environ = os.environ if environ is None else environ
    if typed and typed.strip():
        return typed.strip(), "the token field"
    if oauth:
        return oauth, OAUTH_SOURCE
    if not server_token:
        return None, (
            "no token: this studio is public, so it pushes only with your own token: sign in with "
            "Hugging Face or paste a write token (the server's HF_TOKEN is never used for visitors)"
        )
    if environ.get("HF_TOKEN", "").strip():
        return environ["HF_TOKEN"].strip(), "HF_TOKEN"
    if cached_login:
        from huggingface_hub import get_token  # huggingface_hub: only when the Hub is reached

        stored = get_token()
        if stored:
            return stored, "the login stored by `hf auth login`"
        return None, "no token: pass --token, set HF_TOKEN, or run `hf auth login` with a write token"
    return None, "no token: paste a write token, log in with Hugging Face, or set HF_TOKEN"


def check_namespace(repo_id: str, token: str, whoami=None) -> str:
    """Raise ValueError unless `repo_id` lies in the token owner's own namespace or one of their orgs (a
    public studio's rule: a visitor's push goes only where the visitor may write). Returns the token's user."""
    if whoami is None:
        from huggingface_hub import whoami  # the Hub client: only when a push is checked
    repo_id = check_repo_id(repo_id)
    try:
        info = whoami(token)
    except Exception as err:  # an invalid token, the Hub unreachable: nothing can be shown to be theirs
        raise ValueError(
            f"could not check whose token this is ({redact(str(err), token).splitlines()[0]}); use a valid write token"
        ) from None
    user = info.get("name") or ""
    namespaces = {user.lower(), *(o.get("name", "").lower() for o in info.get("orgs") or [])} - {""}
    namespace = repo_id.split("/")[0]
    if namespace.lower() not in namespaces:
        raise ValueError(
            f"{repo_id} is not in your namespace: this public studio pushes only to {user!r} or one of "
            f"your organisations ({', '.join(sorted(namespaces - {user.lower()})) or 'none'}); "
            f"use a repo id like {user}/{repo_id.split('/')[1]}"
        )
    return user


def redact(text: str, token: str | None) -> str:
    """`text` with the token (and anything that looks like an hf_ token) replaced by '***'."""
    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "***", text)


def refused(status: int, repo_id: str, source: str) -> str:
    """What a 401 (the token is not valid) or a 403 (it may not write there) from the Hub means."""
    namespace = repo_id.split("/")[0]
    if status == 401:
        return (
            f"the Hub refused the token (401) from {source}: it is not a valid token (expired, revoked or "
            "mistyped); create a write token at https://huggingface.co/settings/tokens"
        )
    if source == OAUTH_SOURCE:  # Sign in with Hugging Face grants only the scopes the Space's README asks for
        return (
            f"the Hub refused your Hugging Face login (403): it may not create repos under {namespace!r}; the "
            "Space's README must list contribute-repos under hf_oauth_scopes (then sign out and in again), or "
            "paste a write token"
        )
    return (
        f"the Hub refused the token (403) from {source}: it may not create or write repos under {namespace!r}; "
        f"use a 'write' token, or a fine-grained one with write access to {namespace}'s repos"
    )


def push_folder(
    folder: str | Path,
    repo_id: str,
    token: str,
    private: bool = False,
    commit_message: str = "Upload student LoRA from DFD Studio",
    endpoint: str | None = None,
    token_source: str = "the token given",
) -> str:
    """Create the model repo if needed and upload the folder; returns the repo's URL. Raises ValueError
    with one readable sentence (the token never appears in it). `endpoint`: another Hub (default hf.co);
    `token_source`: where the token came from, named when the Hub refuses it."""
    from huggingface_hub import HfApi  # huggingface_hub: only when the Hub is reached
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
            raise ValueError(refused(status, repo_id, token_source)) from None
        raise ValueError(
            f"the Hub answered {status or 'an error'}: {redact(str(err), token).splitlines()[0]}"
        ) from None
    except (OSError, ConnectionError) as err:
        raise ValueError(
            f"could not reach the Hugging Face Hub ({type(err).__name__}); check the network, or use Export zip"
        ) from None
    url = str(getattr(repo, "url", "") or f"https://huggingface.co/{repo_id}")
    return redact(url, token)
