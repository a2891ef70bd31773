"""The Distill tab's look at a data folder or data-set config: which clips training would use and every
file it would skip, with the reason (engine.scan_folder). A scan reads each video's header (one short
ffmpeg call per video), so it runs when the data box is left or submitted, on an upload and at Launch,
never on each keystroke; the live check reuses the last scan of the same folder or config (unchanged
since, its folders too) to refuse data with fewer usable windows than a batch. A public studio bounds the
headers one scan reads (max_probes, studio/limits.py): the clips past it count as one window each, and the
job itself reads them all when it runs."""

from __future__ import annotations

from pathlib import Path

import engine

_SCANS: dict[tuple, object] = {}  # (folder, its mtime, frames, fps, windows per video, max probes) -> FolderScan
_KEEP = 64  # scans remembered (a studio looks at few folders)


def _key(folder: Path, base: str, num_frames, windows_per_video, max_probes=None) -> tuple | None:
    try:
        mtime = (folder.stat().st_mtime_ns,)  # adding or removing a file changes it: a new scan
        if folder.is_file():  # a data-set config: a change to it or to a folder it names is a new scan too
            mtime += tuple(spec.path.stat().st_mtime_ns for spec in engine.check_data_spec(str(folder)).folders)
    except (OSError, ValueError):
        return None
    frames, fps = engine.video_window((base or "").strip(), int(num_frames) if num_frames else None)
    return str(folder.resolve()), mtime, frames, fps, int(windows_per_video or 0), max_probes


def scan(folder: str | Path, base: str, num_frames=None, windows_per_video=1, max_probes: int | None = None):
    """Scan the folder (or data-set config) for this base's windows and remember it; raises ValueError.
    max_probes: read at most this many video headers (None: all)."""
    folder = Path(folder)
    key = _key(folder, base, num_frames, windows_per_video, max_probes)
    if key is None and folder.is_file():
        engine.check_data_spec(str(folder))  # the config's own one-line error, naming its file and field
    if key is None:
        raise ValueError(f"{folder} is not a folder on this machine; give a folder of videos with captions")
    if key not in _SCANS:
        if len(_SCANS) >= _KEEP:
            _SCANS.pop(next(iter(_SCANS)))
        _SCANS[key] = engine.scan_folder(
            folder, num_frames=key[2], fps=key[3], windows_per_video=key[4], max_probes=max_probes
        )
    return _SCANS[key]


def known(folder: str | Path, base: str, num_frames=None, windows_per_video=1, max_probes: int | None = None):
    """The remembered scan of this folder as it is now, or None (nothing is scanned here)."""
    key = _key(Path(folder), base, num_frames, windows_per_video, max_probes)
    return _SCANS.get(key) if key else None


def note(folder: str | Path, base: str, num_frames=None, windows_per_video=1, max_probes: int | None = None) -> str:
    """The line under the data inputs: '**Data:** N usable clips of M videos; skipped: a.mp4 (why), ...'."""
    if not folder or not Path(folder).exists():
        return ""
    try:
        return "**Data:** " + scan(folder, base, num_frames, windows_per_video, max_probes).summary() + "."
    except ValueError as err:
        return "**Data refused:** " + str(err)


def check_enough(found, batch_size: int, where: str) -> None:
    """Refuse data with fewer usable windows than a batch, saying how many it found and needs."""
    if found is not None and found.windows < batch_size:
        clips = f"{found.captioned} usable clip{'s' * (found.captioned != 1)}"
        windows = f" ({found.windows} windows)" if found.windows != found.captioned else ""
        raise ValueError(
            f"found {clips}{windows} in {where}, a batch needs {batch_size}: add clips or lower "
            f"batch_size ({len(found.skipped)} files skipped, named under the data box)"
        )
