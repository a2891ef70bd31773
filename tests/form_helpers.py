"""What the Distill tab's tests and the public-studio tests share: the tab's form values (the built-in
world's defaults, with overrides) and a folder of captioned clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.media.video import write_mp4
from studio import distill


def form(**overrides) -> dict:
    values = {
        "base": "shapes-tiny",
        "data_source": "shapes",
        "data_folder": "",
        "method": "dmd2",
        "init_source": "student",
        "init_student": None,
        **distill.defaults_for("shapes-tiny"),
    }
    values["t_list"] = ", ".join(f"{v:g}" for v in values["t_list"])
    values.update(overrides)
    return {k: values[k] for k in distill.FORM}


def captioned_clips(folder: Path, names=("a", "b")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_mp4(folder / f"{name}.mp4", np.zeros((24, 32, 32, 3), np.uint8), fps=8)  # one 17-frame window at 8 fps
        (folder / f"{name}.txt").write_text(f"clip {name}")
    return folder
