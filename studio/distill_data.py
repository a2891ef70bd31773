"""The Distill tab's data: the shapes world, a folder of videos or a data-set config (a YAML/TOML file
naming folders: typed as a path on the server, or uploaded), or an uploaded zip of videos. Each choice
becomes the run's `data` setting through the engine's own checks, the ones `distill --data` makes, so a
bad config is refused in the same one line naming the file and the field. Under a public studio every
path is confined (studio/access.py) before it is looked at: the typed folder or config file, and each
folder a config names. What a scan finds is studio/data_check.py's."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine import UploadError, check_data_spec, count_captioned, extract_dataset, save_data_config_upload

from . import data_check
from .access import LOCAL, Access
from .files import uploads_folder
from .lineup import DEFAULT_BASE

DATA_SOURCES = [
    ("the shapes world (built in)", "shapes"),
    ("a local folder or data-set config", "folder"),
    ("an uploaded zip", "upload"),
]
FOLDER_INFO = (
    "a folder of videos (.mp4, .webm, .mov, .mkv, .avi) with a .txt caption each or a captions.csv / "
    "captions.jsonl; or a data-set config (.yaml/.toml) naming such folders, as `distill --data` takes"
)
CONFIG_TYPES = [".yaml", ".yml", ".toml"]


def _confine(access: Access):
    """The check each folder a data-set config names must pass before the engine looks at it."""
    return lambda path: access.check_path(str(path), "data folder")


def _sentence(text: str) -> str:
    text = text.strip()
    return text + ("" if text.endswith((".", "!", "?")) else ".")


def data_setting(form: dict, uploaded_data: str | None, access: Access = LOCAL) -> str:
    """The run's `data` for the form's data choice; raises ValueError with one sentence."""
    source = form.get("data_source") or "shapes"
    if source == "shapes":
        return "shapes"
    if source == "upload":
        if not uploaded_data:
            raise ValueError("no zip uploaded yet; upload a zip of videos with captions, or pick another data source")
        return uploaded_data
    typed = (form.get("data_folder") or "").strip()
    if not typed:
        raise ValueError(
            "no data folder given; type the path of a folder of videos with captions, or of a "
            "data-set config (.yaml/.toml)"
        )
    path = access.check_path(typed, "data folder")  # before the path is looked at: a refused one is not probed
    if path.is_dir():
        videos, captioned = count_captioned(path)
        if not captioned:
            raise ValueError(
                f"{typed} holds {videos} videos and none with a caption; add a .txt per video or a captions.csv"
            )
    elif path.is_file():  # DataError: the file and field, as on the command line
        access.check_repeats(check_data_spec(str(path), confine=_confine(access)))
    else:
        raise ValueError(
            f"{typed} is not a folder on this machine; give a folder of videos with captions, or a "
            "data-set config (.yaml/.toml)"
        )
    return str(path.resolve())


def folder_note(folder: str | None, base: str, num_frames=None, windows_per_video=1, access: Access = LOCAL) -> str:
    """The line under the data box once it is left or submitted: usable clips and skipped files (of every
    folder, for a data-set config), or why the folder or config is refused."""
    folder = (folder or "").strip()
    if not folder:
        return ""
    try:
        path = access.check_path(folder, "data folder")
        if path.is_file():  # confined before the scan reads anything
            access.check_repeats(check_data_spec(str(path), confine=_confine(access)))
    except ValueError as err:
        return "**Data refused:** " + _sentence(str(err))
    return data_check.note(path, base, num_frames, windows_per_video, access.max_probes)


def upload_data(
    data_dir: Path,
    path: str | None,
    base: str = DEFAULT_BASE,
    num_frames=None,
    windows_per_video=1,
    access: Access = LOCAL,
) -> tuple[str | None, str]:
    """An uploaded zip -> (its data folder, a line naming the usable clips and every file skipped, and why).
    The scan reads at most access.max_probes video headers: this runs in the web request."""
    if not path:
        return None, ""
    try:
        summary = extract_dataset(path, uploads_folder(data_dir))
    except UploadError as err:
        return None, "**Upload refused:** " + _sentence(str(err))
    left = f" ({len(summary.skipped)} files of the zip left out: not videos or captions)" if summary.skipped else ""
    try:
        found = data_check.scan(summary.folder, base, num_frames, windows_per_video, access.max_probes).summary()
    except ValueError as err:
        found = f"{summary.captioned} of {summary.videos} videos have captions (not scanned: {err})"
    return str(summary.folder), f"**Received:** {found}{left}."


def upload_data_config(
    data_dir: Path,
    path: str | None,
    base: str = DEFAULT_BASE,
    num_frames=None,
    windows_per_video=1,
    access: Access = LOCAL,
) -> tuple[str | None, str]:
    """An uploaded data-set config -> (where its copy is kept, for the data box; a line saying what its
    folders hold, or why it is refused). Its folders must be absolute paths on the server (an upload has
    no folder of its own to be relative to), each confined like a typed folder."""
    if not path:
        return None, ""
    try:
        saved = save_data_config_upload(path, uploads_folder(data_dir), confine=_confine(access))
    except UploadError as err:
        return None, "**Config refused:** " + _sentence(str(err))
    try:
        access.check_repeats(check_data_spec(str(saved)))
    except ValueError as err:
        shutil.rmtree(saved.parent, ignore_errors=True)  # the kept copy's own folder: nothing of a refusal stays
        return None, "**Config refused:** " + _sentence(str(err).replace(str(saved), saved.name))
    try:
        found = data_check.scan(saved, base, num_frames, windows_per_video, access.max_probes).summary()
    except ValueError as err:
        found = f"not scanned: {err}"
    return str(saved), f"**Received** {saved.name}: {found}."
