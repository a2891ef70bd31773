"""Which videos of a folder are training data and under which caption; every other file in it is
reported with the reason it is not used. Torch-free (the studio's upload check calls it through
`scan_folder` in engine/datasets/dataset_config.py).

A folder's captions come from one source:
- sidecar: a .txt file beside each video with the same stem (a.mp4 + a.txt);
- a table: captions.jsonl ({"file": "a.mp4", "caption": "..."} per line) or captions.csv (a header
  with the columns file,caption), naming files relative to the folder;
- a fixed caption for every video (a data-set config's `caption:`).
"auto" takes captions.jsonl if present, else captions.csv, else sidecars. Caption text is read as
UTF-8 and its runs of white space become single spaces.

A table and every file it names must lie inside the folder once symlinks are resolved (a bare name or a
relative path such as clips/a.mp4): a row naming /etc/hostname or ../other/b.mp4 refuses the whole folder
with its row named, before that file is even looked at, so no table (an uploaded zip's, a visitor's) can make
training, a scan or its note read or reveal a file elsewhere on the machine.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".avi")
TABLES = ("captions.jsonl", "captions.csv")
CACHE_DIR = ".dfd_cache"


class DataError(ValueError):
    """The data cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Clip:
    path: Path  # the video
    caption: str
    caption_source: str  # the file the caption came from (named in warnings), or "caption:" for a fixed one


@dataclass
class Listing:
    clips: list[Clip] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason), names relative to the folder


def _utf8(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason) for a caption file."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        return None, (
            f"{path.name} is not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start}); save it as UTF-8"
        )


def _clean(text: str) -> str:
    return " ".join(text.split())


def inside(folder: Path, name: str | Path) -> bool:
    """Does `name` (relative to `folder`) stay inside it once symlinks are resolved? An absolute name never does.
    Decided without asking whether the file exists, so a refusal says nothing about what is on disk."""
    if Path(name).is_absolute() or Path(name).drive:
        return False
    return (folder / name).resolve().is_relative_to(folder.resolve())


def outside_error(folder: Path, where: str, name: str) -> DataError:
    return DataError(
        f"{folder}: {where} names {name!r}, which is outside the folder; name each file by its path "
        "inside the folder (a.mp4 or clips/a.mp4), and move files from elsewhere into it"
    )


def _read_jsonl(text: str, name: str, skipped: list) -> dict[str, tuple[str, int]]:
    rows = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows[str(row["file"])] = (str(row["caption"]), n)
        except (json.JSONDecodeError, KeyError, TypeError):
            skipped.append((f"{name} line {n}", 'not a JSON object with "file" and "caption"'))
    return rows


def _read_csv(text: str, name: str, skipped: list) -> dict[str, tuple[str, int]] | None:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or not {"file", "caption"} <= set(reader.fieldnames):
        skipped.append((name, "needs a header line with the columns file,caption"))
        return None
    return {row["file"]: (row["caption"] or "", reader.line_num) for row in reader if row.get("file")}


def _table_source(folder: Path, captions: str) -> str | None:
    """The caption table to read (a file name in the folder), or None for sidecars."""
    if captions == "sidecar":
        return None
    if captions != "auto":
        return captions
    return next((name for name in TABLES if (folder / name).is_file()), None)


def _from_table(folder: Path, table: str, videos: list[Path], listing: Listing) -> set[str]:
    """Clips captioned by a table; returns the names the table accounts for (used or skipped)."""
    if not inside(folder, table):  # before it is looked at: a table elsewhere is neither read nor probed
        raise outside_error(folder, "the captions setting", table)
    path = folder / table
    if not path.is_file():
        raise DataError(f"{folder}: the captions file {table} named for it does not exist")
    text, bad = _utf8(path)
    rows = None
    if bad:
        listing.skipped.append((table, bad))
    elif table.lower().endswith(".csv"):
        rows = _read_csv(text, table, listing.skipped)
    else:
        rows = _read_jsonl(text, table, listing.skipped)
    for name, (_, line) in (rows or {}).items():  # every row first: nothing outside is probed, not even the first
        if not inside(folder, name):
            raise outside_error(folder, f"{table} line {line}", name)
    on_disk = {v.name for v in videos}
    for name, (caption, _) in sorted((rows or {}).items()):
        if (folder / name).is_file():
            if _clean(caption):
                listing.clips.append(Clip(folder / name, _clean(caption), table))
            else:
                listing.skipped.append((name, f"empty caption in {table}"))
        elif name not in on_disk:
            listing.skipped.append((name, f"listed in {table} but there is no such file"))
    named = set(rows or {})
    reason = f"not listed in {table}" if rows is not None else f"no caption ({table} could not be read)"
    for video in videos:
        if video.name not in named:
            listing.skipped.append((video.name, reason))
    return {table}


def _from_sidecars(videos: list[Path], listing: Listing) -> set[str]:
    used = set()
    for video in videos:
        txt = video.with_suffix(".txt")
        if not txt.is_file():
            listing.skipped.append((video.name, f"no caption (no {txt.name} beside it)"))
            continue
        used.add(txt.name)
        text, bad = _utf8(txt)
        if bad:
            listing.skipped.append((video.name, bad))
        elif not _clean(text):
            listing.skipped.append((video.name, f"empty caption in {txt.name}"))
        else:
            listing.clips.append(Clip(video, _clean(text), txt.name))
    return used


def list_folder(folder: str | Path, captions: str = "auto", caption: str | None = None) -> Listing:
    """The folder's captioned videos and every file skipped, with its reason. Raises DataError when the
    folder itself is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; give a folder of videos with captions or a data-set config")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX")
    videos = [p for p in entries if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    listing = Listing()
    if caption is not None:
        listing.clips = [Clip(v, _clean(caption), "caption:") for v in videos]
        accounted: set[str] = set()
    else:
        table = _table_source(folder, captions)
        accounted = _from_table(folder, table, videos, listing) if table else _from_sidecars(videos, listing)
    sidecars = caption is None and _table_source(folder, captions) is None
    for path in entries:
        if path in videos or path.name in accounted or path.name in TABLES:
            continue
        if path.is_dir():
            listing.skipped.append(
                (
                    path.name + "/",
                    "a subfolder: only the folder's own files are read (name it in a data-set config to use it)",
                )
            )
        elif path.suffix.lower() == ".txt" and sidecars:
            listing.skipped.append((path.name, "a caption with no video of the same name"))
        elif path.suffix.lower() not in (".txt", ".csv", ".jsonl", ".json", ".yaml", ".yml", ".toml"):
            listing.skipped.append((path.name, f"not a video ({', '.join(VIDEO_SUFFIXES)})"))
    return listing
