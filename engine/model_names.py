"""Which base model a name points to, checked without loading anything (no torch, no diffusers): the
built-in `shapes-tiny`, a local diffusers pipeline folder, a Hugging Face hub id, or a random-weights
timing model. The command line refuses a bad name with this before it pays for importing the models."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
BUILTIN_MODELS = {"shapes-tiny": ASSETS / "shapes-tiny"}
STUDIO_META = "dfd_studio.json"  # our facts about a pipeline folder, beside model_index.json
# Wan2.1-T2V-1.3B's configs with random weights, for speed and memory figures (models.random_wan_1_3b).
RANDOM_MODELS = ("wan2.1-1.3b-random",)


class ModelError(ValueError):
    """A base model could not be found or loaded; the message says what to do."""


def resolve_model(name_or_path: str) -> tuple[str, Path | None]:
    """Where a model name points: ('builtin'|'folder'|'hub', local folder or None)."""
    if not name_or_path or not name_or_path.strip():
        raise ModelError("no base model given; use 'shapes-tiny', a local diffusers folder, or a hub id")
    name = name_or_path.strip()
    if name in BUILTIN_MODELS:
        folder = BUILTIN_MODELS[name]
        if not (folder / "model_index.json").is_file():
            raise ModelError(
                f"the built-in model {name!r} is missing from {folder}; restore it with "
                f"`git checkout -- {folder}` or rebuild it with `python -m engine pretrain-teacher --out {folder}`"
            )
        return "builtin", folder
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        if not path.is_dir():
            raise ModelError(f"{name!r} is not a folder; give a diffusers pipeline folder (with model_index.json)")
        if not (path / "model_index.json").is_file():
            raise ModelError(
                f"{name!r} has no model_index.json, so it is not a diffusers pipeline folder; "
                "save one with pipe.save_pretrained(...) or give a hub id"
            )
        return "folder", path
    if name.count("/") == 1 and all(part.strip() for part in name.split("/")):
        return "hub", None
    raise ModelError(
        f"unknown model {name!r}: use 'shapes-tiny' (built in), a local diffusers folder, "
        "or a Hugging Face hub id such as Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    )
