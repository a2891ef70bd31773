"""Free disk space on the data folder's disk: a job does not start, and the studio queues none, where less than
DFD_STUDIO_MIN_FREE_MB (default 1024) is free. A run that starts on a nearly full disk fails half-way writing a
checkpoint; refused before it starts, it has written nothing and can be resumed once space is freed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MIN_FREE_DEFAULT_MB = 1024
MIN_FREE_VARIABLE = "DFD_STUDIO_MIN_FREE_MB"


def min_free_mb(environ=None) -> int:
    """The megabytes kept free: DFD_STUDIO_MIN_FREE_MB, else MIN_FREE_DEFAULT_MB. ValueError for a value that is
    not a whole number, saying how to fix it."""
    environ = os.environ if environ is None else environ
    value = (environ.get(MIN_FREE_VARIABLE) or "").strip()
    if not value:
        return MIN_FREE_DEFAULT_MB
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"{MIN_FREE_VARIABLE}={value!r} is not a whole number; set it to one, or unset it for {MIN_FREE_DEFAULT_MB}"
        ) from None


def free_mb(folder: str | os.PathLike) -> int:
    """Free megabytes on the disk that holds `folder` (or, before it exists, its nearest existing parent)."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free // 1024**2


def check_free_disk(
    data_dir: str | os.PathLike, what: str = "a job cannot start now", then: str = "try again later", environ=None
) -> None:
    """Raise ValueError when the data folder's disk has less free than DFD_STUDIO_MIN_FREE_MB: "this machine's
    disk has N MB free, less than the M MB the studio keeps free, so {what}; {then} (the owner can ...)"."""
    keep = min_free_mb(environ)
    free = free_mb(data_dir)
    if free < keep:
        raise ValueError(
            f"this machine's disk has {free} MB free, less than the {keep} MB the studio keeps free, so {what}; "
            f"{then} (the owner can free space, or change {MIN_FREE_VARIABLE})"
        )
