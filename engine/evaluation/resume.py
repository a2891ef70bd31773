"""Resuming an interrupted evaluation: each (model, prompt) result is written to its own file as soon as
it is measured, in a folder next to the --json output (out.json -> out.parts/), and a re-run with the same
settings reads it instead of sampling again.

Each file holds a fingerprint of everything its numbers depend on (base, model entry and its LoRA file's
size and time, seeds, video size, feature and adherence models, the reference folder, the device); a
file whose fingerprint differs is measured again and overwritten, so a changed setting never shows an
old number.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..core.files import LORA_FILE, LOW_NOISE_LORA_FILE


def parts_folder(json_path: str | Path) -> Path:
    path = Path(json_path)
    return path.with_name(path.stem + ".parts")


def fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lora_version(lora_dir: str | None) -> list:
    """[size, mtime_ns] of a student's weight file: a retrained student is measured again."""
    if lora_dir is None:
        return []

    st = (Path(lora_dir) / LORA_FILE).stat()
    low = Path(lora_dir) / LOW_NOISE_LORA_FILE  # a two-expert student's second file; absent, the version is as before
    extra = [low.stat().st_size, low.stat().st_mtime_ns] if low.is_file() else []
    return [st.st_size, st.st_mtime_ns, *extra]


class Parts:
    """The per-(model, prompt) results of one evaluation; `folder` None keeps nothing (no --json)."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.reused = 0

    def _path(self, model: str, prompt: str) -> Path:
        key = hashlib.sha256(f"{model}\n{prompt}".encode()).hexdigest()[:20]
        return self.folder / f"{key}.json"

    def get(self, model: str, prompt: str, print_: str) -> dict | None:
        """The stored part of (model, prompt) when its fingerprint is `print_`, else None."""
        if self.folder is None:
            return None
        path = self._path(model, prompt)
        try:
            part = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if part.get("fingerprint") != print_ or part.get("model") != model or part.get("prompt") != prompt:
            return None
        self.reused += 1
        return part["result"]

    def put(self, model: str, prompt: str, print_: str, result: dict) -> None:
        """Write the part atomically: an interruption leaves the old file or the new one, never half."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(model, prompt)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"fingerprint": print_, "model": model, "prompt": prompt, "result": result}, indent=1) + "\n"
        )
        os.replace(tmp, path)
