"""What `--data` names: 'shapes', 'synthetic', a folder of videos with captions, or a data-set config
file (YAML or TOML) naming one or more folders, as the LoRA trainers users know do. Torch-free, so
DistillConfig.validate and the studio can check a data spec before anything heavy is imported.

A data-set config (every key but `folders` optional; a folder's own keys override the top level's):

    fps: 16                  # the rate training windows are taken at (default: the base model's)
    windows_per_video: 1     # windows per video, from its start ('all': as many as fit; default: the run's)
    folders:
      - path: clips          # relative to the config file
        captions: auto       # auto | sidecar | captions.csv | captions.jsonl (or another .csv/.jsonl in it)
        repeats: 2           # each window is drawn this many times as often as a window with repeats 1 (<= 1000)
      - path: more/clips
        caption: a cat on a sofa   # one fixed caption for every video of the folder
        source_fps: 30             # use this instead of the rate the files declare (wrong headers)
        windows_per_video: all

Every clip is brought to the run's size (the base model's, or --height/--width) by the centre-crop
rule: the frames are scaled (area-averaged bilinear) so that the short side, relative to the target's
aspect, just covers the target, then the centre is cut out; nothing is stretched or padded. Windows are
`num_frames` frames at `fps` (engine/datasets/video_windows.py). A caption longer than the text
encoder's length (512 tokens for Wan) is cut there, with a warning naming its file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .sources import VIDEO_SUFFIXES, DataError, Listing, inside, list_folder

CONFIG_SUFFIXES = (".yaml", ".yml", ".toml")
BUILT_IN = ("shapes", "synthetic")
_TOP_KEYS = {"folders", "fps", "windows_per_video", "captions", "repeats", "source_fps"}
_FOLDER_KEYS = {"path", "captions", "caption", "repeats", "fps", "source_fps", "windows_per_video"}
MAX_REPEATS = 1000  # every window is listed `repeats` times in memory: a bound for any run


@dataclass(frozen=True)
class FolderSpec:
    path: Path
    captions: str = "auto"
    caption: str | None = None  # a fixed caption for every video
    repeats: int = 1
    fps: float | None = None  # None: the base model's
    source_fps: float | None = None  # None: what each file declares
    windows_per_video: int | None = 1  # None: all that fit
    label: str = ""  # how skipped files of this folder are named: "" or "path/"


@dataclass(frozen=True)
class DataSpec:
    folders: tuple[FolderSpec, ...]
    source: str  # the folder or config file the user gave


def _fail(where: str, key: str, message: str) -> DataError:
    return DataError(f"{where}: {key} {message}")


def _number(value, where: str, key: str, whole: bool, low: float):
    if value is None:
        return None
    ok = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or value < low:
        kind = "a whole number" if whole else "a number"
        raise _fail(where, key, f"must be {kind} >= {low:g}, got {value!r}")
    return value


# A check a folder path must pass before it is even looked at (the studio's confinement of visitors'
# paths, studio/access.py): it raises ValueError with one sentence.
Confine = Callable[[Path], object]


def _folder_spec(
    entry,
    i: int,
    defaults: dict,
    config: Path,
    windows_per_video: int | None,
    confine: Confine | None = None,
    relative_paths: bool = True,
) -> FolderSpec:
    where, key = str(config), f"folders[{i}]"
    if isinstance(entry, str):
        entry = {"path": entry}
    if not isinstance(entry, dict) or "path" not in entry:
        raise _fail(where, key, "must be a folder path or a mapping with a `path`")
    unknown = sorted(set(entry) - _FOLDER_KEYS)
    if unknown:
        raise _fail(where, f"{key}.{unknown[0]}", f"is not a folder setting (known: {', '.join(sorted(_FOLDER_KEYS))})")
    values = {**defaults, **entry}
    if not relative_paths and not Path(str(values["path"])).expanduser().is_absolute():
        raise _fail(
            where,
            f"{key}.path",
            f"{values['path']!r} is relative, but this copy of the config has no folder "
            "of its own (an upload): give the folder's absolute path on this machine",
        )
    folder = (config.parent / Path(str(values["path"])).expanduser()).resolve()
    if confine is not None:
        try:  # before is_dir: a refused path is not even probed
            confine(folder)
        except ValueError as err:
            raise _fail(where, f"{key}.path", str(err)) from None
    if not folder.is_dir():
        raise _fail(where, f"{key}.path", f"{values['path']!r} is not a folder (paths are relative to the config file)")
    captions = values.get("captions", "auto")
    if not isinstance(captions, str) or not (captions in ("auto", "sidecar") or captions.endswith((".csv", ".jsonl"))):
        raise _fail(
            where, f"{key}.captions", f"must be auto, sidecar or a .csv/.jsonl file in the folder, got {captions!r}"
        )
    if captions not in ("auto", "sidecar") and not inside(folder, captions):
        raise _fail(
            where,
            f"{key}.captions",
            f"{captions!r} is outside the folder {folder}; name a table inside it (captions.csv or sub/captions.csv)",
        )
    caption = values.get("caption")
    if caption is not None and (not isinstance(caption, str) or not caption.strip()):
        raise _fail(where, f"{key}.caption", "must be non-empty text")
    repeats = _number(values.get("repeats", 1), where, f"{key}.repeats", True, 1)
    if repeats > MAX_REPEATS:
        raise _fail(where, f"{key}.repeats", f"must be at most {MAX_REPEATS}, got {repeats}")
    windows = values.get("windows_per_video", windows_per_video)
    windows = None if windows in ("all", None) else _number(windows, where, f"{key}.windows_per_video", True, 1)
    return FolderSpec(
        path=folder,
        captions=captions,
        caption=caption,
        repeats=repeats,
        fps=_number(values.get("fps"), where, f"{key}.fps", False, 0.1),
        source_fps=_number(values.get("source_fps"), where, f"{key}.source_fps", False, 0.1),
        windows_per_video=windows,
        label=str(values["path"]).rstrip("/") + "/",
    )


def read_data_config(
    path: str | Path, windows_per_video: int | None = 1, confine: Confine | None = None, relative_paths: bool = True
) -> DataSpec:
    """Parse a data-set config file; raises DataError naming the file and the field. windows_per_video:
    for the folders that set none (None: every whole window). confine: called on each folder's resolved
    path before it is looked at; relative_paths False: refuse paths relative to the file (an uploaded
    copy's folder is not the user's)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data-set config file")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".toml":
            values = tomllib.loads(text)
        else:
            values = yaml.safe_load(text)
    except Exception as err:  # the parsers' own errors, or bytes that are not UTF-8: one line naming the file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: not a valid {path.suffix.lstrip('.').upper()} data-set config ({first})") from None
    if not isinstance(values, dict) or "folders" not in values:
        raise DataError(f"{path}: folders is missing; a data-set config lists its folders under `folders:`")
    unknown = sorted(set(values) - _TOP_KEYS)
    if unknown:
        raise _fail(str(path), unknown[0], f"is not a data-set setting (known: {', '.join(sorted(_TOP_KEYS))})")
    folders = values["folders"]
    if not isinstance(folders, list) or not folders:
        raise _fail(str(path), "folders", "must be a non-empty list of folders")
    defaults = {k: v for k, v in values.items() if k != "folders"}
    specs = tuple(
        _folder_spec(e, i, defaults, path, windows_per_video, confine, relative_paths) for i, e in enumerate(folders)
    )
    return DataSpec(folders=specs, source=str(path))


def data_spec(
    spec: str | Path, windows_per_video: int = 1, confine: Confine | None = None, relative_paths: bool = True
) -> DataSpec:
    """A folder or a data-set config file as a DataSpec (not for 'shapes' / 'synthetic').
    windows_per_video: DistillConfig's (0: every whole window), for a folder and for the folders of a
    data-set config that set none of their own. confine, relative_paths: as read_data_config's, for the
    folders a config names (the spec itself is the caller's to confine)."""
    path = Path(spec).expanduser()
    windows = windows_per_video or None  # 0: every whole window
    if path.is_dir():
        return DataSpec(folders=(FolderSpec(path=path, windows_per_video=windows),), source=str(spec))
    if path.suffix.lower() in CONFIG_SUFFIXES:
        return read_data_config(path, windows, confine, relative_paths)
    raise DataError(
        f"{spec!r} is not 'shapes', a folder of videos with captions, or a data-set config "
        f"({', '.join(CONFIG_SUFFIXES)})"
    )


def check_data_spec(spec: str, confine: Confine | None = None, relative_paths: bool = True) -> DataSpec | None:
    """Raise DataError (a ValueError, one line naming the file and field) when `spec` names no usable
    data source; else its DataSpec (None for the built-in ones). The same check as `distill --data`;
    confine and relative_paths as read_data_config's (the studio's rules for visitors and uploads)."""
    if spec in BUILT_IN:
        return None
    return data_spec(spec, confine=confine, relative_paths=relative_paths)


@dataclass
class FolderScan:
    """A quick look at a data folder: each video's header is read, nothing is decoded."""

    videos: int = 0
    captioned: int = 0  # readable videos with a caption, long enough when a window size was given
    windows: int = 0  # the training windows they hold (as many as windows_per_video asks, when they fit)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    unprobed: int = 0  # captioned clips past max_probes: counted as one window each, their headers not read

    def summary(self, limit: int = 10) -> str:
        """'N usable clips; skipped: a.mp4 (reason), ...', naming the first `limit` skipped files, videos first."""
        line = f"{self.captioned} usable clip{'s' * (self.captioned != 1)} of {self.videos} videos"
        if self.windows != self.captioned:
            line += f" ({self.windows} training windows)"
        if self.skipped:
            videos_first = sorted(self.skipped, key=lambda s: not s[0].lower().endswith(VIDEO_SUFFIXES))
            named = ", ".join(f"{name} ({why})" for name, why in videos_first[:limit])
            more = len(self.skipped) - limit
            line += f"; skipped: {named}" + (f", and {more} more" if more > 0 else "")
        if self.unprobed:
            line += (
                f"; {self.unprobed} of them not opened here (counted as one window each; the job reads them "
                "when it runs)"
            )
        return line


def scan_folder(
    folder: str | Path,
    num_frames: int | None = None,
    fps: float | None = None,
    windows_per_video: int = 1,
    max_probes: int | None = None,
) -> FolderScan:
    """Which files of a data folder (or of every folder of a data-set config) would be used, and why
    each other file would be skipped. Reads each captioned video's header (one short ffmpeg call per
    video, no decoding), so it takes a moment on a large folder; with num_frames and fps, also counts
    the windows each video holds and skips those shorter than one. max_probes: read at most this many
    headers (a web request's bound); the captioned clips past it count as one window each, unread."""
    # numpy: only when a folder is scanned, so a config's check stays light
    from .video_windows import VideoReadError, probe, window_seconds, windows_in

    scan, probed = FolderScan(), 0
    specs = data_spec(folder, windows_per_video).folders
    for spec in specs:
        listing: Listing = list_folder(spec.path, spec.captions, spec.caption)
        label = spec.label if len(specs) > 1 else ""
        scan.videos += sum(
            1
            for p in spec.path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in VIDEO_SUFFIXES
        )
        scan.skipped += [(label + name, why) for name, why in listing.skipped]
        for clip in listing.clips:
            if max_probes is not None and probed >= max_probes:
                scan.unprobed += 1
                scan.captioned += 1
                scan.windows += 1
                continue
            probed += 1
            try:
                info = probe(clip.path, spec.source_fps)
            except VideoReadError as err:
                scan.skipped.append((label + clip.path.name, str(err)))
                continue
            rate, held = spec.fps or fps, 1
            if num_frames and rate and info.expected_frames():
                held = windows_in(info.expected_frames(), num_frames, rate, info.fps)
                if not held:
                    scan.skipped.append(
                        (
                            label + clip.path.name,
                            f"too short: {info.duration:.2f} s; a window is "
                            f"{num_frames} frames at {rate:g} fps ({window_seconds(num_frames, rate):.2f} s)",
                        )
                    )
                    continue
            scan.captioned += 1
            scan.windows += held if spec.windows_per_video is None else min(held, spec.windows_per_video)
    return scan
