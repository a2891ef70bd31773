"""A run's resumable checkpoints: out/checkpoints/step-N folders, each written atomically (a temporary
folder renamed once its state and its COMPLETE marker are on disk), the two newest kept. A checkpoint is read
back with torch's weights-only unpickler: it holds tensors, numbers, strings and containers only (the RNG
states are a ByteTensor and numpy's dict of ints), so a planted state.pt cannot run code in the job process."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import torch

from ..models.folders import written_folder

CHECKPOINTS = "checkpoints"


def write_checkpoint(out: Path, step: int, state: dict) -> Path:
    """Write checkpoints/step-N with this state and drop all but the newest two; returns its folder."""
    root = Path(out) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:07d}"
    with written_folder(final) as tmp:
        torch.save(state, tmp / "state.pt")
        (tmp / "COMPLETE").write_text(str(step))
    for old in sorted(p for p in root.glob("step-*") if p != final)[:-1]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(out: Path) -> Path | None:
    """The newest checkpoint folder that finished writing (half-written ones are ignored)."""
    root = Path(out) / CHECKPOINTS
    done = sorted(p for p in root.glob("step-*") if (p / "COMPLETE").is_file()) if root.is_dir() else []
    return done[-1] if done else None


def read_checkpoint(folder: Path) -> dict:
    """The state a checkpoint folder holds. ValueError (with what to do) for a state.pt that holds anything
    but tensors and plain values: DFD Studio never writes one, and unpickling it could run code."""
    path = Path(folder) / "state.pt"
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f" (it asks for {found.group(1)})" if found else ""
        raise ValueError(
            f"the checkpoint {path} holds more than tensors and plain values{what}; DFD Studio did not write it: "
            f"delete {Path(folder).name} to resume from the checkpoint before it"
        ) from None
