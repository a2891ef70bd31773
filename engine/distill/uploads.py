"""Turning files a user uploaded into folders the engine can use, safely: a zip of videos with captions
becomes a data folder, a LoRA file (or a zip holding one) becomes a student folder, a data-set config
file is kept where a job can read it.

A zip is checked before anything is written and again while it is written: its size, the number of
entries, the total uncompressed size, each entry's and the whole zip's compression ratio (zip bombs: many
small entries that each compress well add up), the free disk it leaves, entries that leave the folder
(absolute paths, '..', drive letters), links and special files. Names are sanitized to a safe alphabet.
Extraction goes to a temporary folder that is renamed into place only when complete. A captions table
in the zip that names a file outside the zip's folder refuses the upload (engine/datasets/sources.py).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from safetensors import safe_open

from ..datasets.dataset_config import CONFIG_SUFFIXES, check_data_spec
from ..datasets.sources import VIDEO_SUFFIXES, list_folder  # VIDEO_SUFFIXES: what training reads
from ..models.students import LORA_FILE

CAPTION_SUFFIXES = (".txt", ".csv", ".jsonl", ".json")


class UploadError(ValueError):
    """The upload cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 2 * 1024**3  # the zip file itself
    max_total_bytes: int = 8 * 1024**3  # everything it unpacks to
    max_entries: int = 20_000
    max_ratio: float = 200.0  # uncompressed / compressed, per entry (videos barely compress)
    ratio_min_bytes: int = 1024**2  # small entries may compress well (caption files)
    max_overall_ratio: float = 20.0  # everything unpacked / the zip file, once that is over ratio_min_bytes
    min_free_bytes: int = 1024**3  # disk left free after the upload is unpacked

    @classmethod
    def from_env(cls, environ=None) -> Limits:
        """DFD_STUDIO_MAX_UPLOAD_MB, DFD_STUDIO_MAX_UNPACKED_MB and DFD_STUDIO_MIN_FREE_MB override the
        size limits, DFD_STUDIO_MAX_ZIP_ENTRIES the entry count, DFD_STUDIO_MAX_ZIP_RATIO the whole zip's
        compression ratio and DFD_STUDIO_MAX_ENTRY_RATIO one entry's."""
        environ = os.environ if environ is None else environ
        limits = cls()

        def mb(name: str, default: int) -> int:
            value = environ.get(name)
            return int(float(value) * 1024**2) if value else default

        ratio = environ.get("DFD_STUDIO_MAX_ZIP_RATIO")
        entries, entry_ratio = environ.get("DFD_STUDIO_MAX_ZIP_ENTRIES"), environ.get("DFD_STUDIO_MAX_ENTRY_RATIO")
        return cls(
            max_upload_bytes=mb("DFD_STUDIO_MAX_UPLOAD_MB", limits.max_upload_bytes),
            max_total_bytes=mb("DFD_STUDIO_MAX_UNPACKED_MB", limits.max_total_bytes),
            min_free_bytes=mb("DFD_STUDIO_MIN_FREE_MB", limits.min_free_bytes),
            max_overall_ratio=float(ratio) if ratio else limits.max_overall_ratio,
            max_entries=int(entries) if entries else limits.max_entries,
            max_ratio=float(entry_ratio) if entry_ratio else limits.max_ratio,
        )


@dataclass
class DatasetSummary:
    folder: Path
    videos: int
    captioned: int  # videos with a caption (sidecar .txt, or a row in captions.csv / captions.jsonl)
    skipped: list[str] = field(default_factory=list)  # entries not extracted (other file types)


def _size(n: float) -> str:
    return f"{n / 1024**2:.0f} MB" if n >= 1024**2 else f"{n / 1024:.0f} KB"


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize_name(name: str) -> str:
    """One path component reduced to letters, digits, '.', '_' and '-' (accents dropped, the rest '_');
    never empty, never hidden, never '.' or '..'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = _SAFE.sub("_", ascii_name).strip("._") or "file"
    return cleaned[:120]


def _entry_parts(info: zipfile.ZipInfo) -> list[str]:
    """The entry's path components; raises UploadError for any entry that would leave the folder."""
    raw = info.filename.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw) or "\x00" in raw:
        raise UploadError(f"the zip holds an absolute path ({info.filename!r}); refusing it, zip the folder's contents")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if ".." in parts:
        raise UploadError(f"the zip holds a path that leaves its folder ({info.filename!r}); refusing it")
    return parts


def _is_link_or_special(info: zipfile.ZipInfo) -> bool:
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip tool recorded no Unix file type
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def check_free_disk(folder: Path, needed: int, limits: Limits, what: str) -> None:
    """Refuse before writing when `needed` bytes would leave less than limits.min_free_bytes free."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free - needed < limits.min_free_bytes:
        raise UploadError(
            f"{what} needs {_size(needed)} and this machine's disk has {_size(free)} free, which would "
            f"leave less than the {_size(limits.min_free_bytes)} it keeps free; try again later or "
            "upload less (the owner can change it with DFD_STUDIO_MIN_FREE_MB)"
        )


def _plan(
    archive: zipfile.ZipFile, limits: Limits, keep_suffixes: tuple[str, ...], zip_size: int
) -> tuple[list, list[str]]:
    """Check every entry; return [(info, safe relative path)] to extract and the names skipped."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise UploadError(
            f"the zip has {len(infos)} entries; at most {limits.max_entries} are accepted (the owner can change it "
            "with DFD_STUDIO_MAX_ZIP_ENTRIES)"
        )
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise UploadError(
            f"the zip unpacks to {_size(total)}, over the {_size(limits.max_total_bytes)} limit; "
            "upload a smaller data set or give a local folder (the owner can change it with "
            "DFD_STUDIO_MAX_UNPACKED_MB)"
        )
    if total > limits.ratio_min_bytes and total > limits.max_overall_ratio * max(zip_size, 1):
        raise UploadError(
            f"the zip unpacks to {total / max(zip_size, 1):.0f}x its size (more than "
            f"{limits.max_overall_ratio:.0f}x; videos barely compress): it looks like a zip bomb, refusing it (the "
            "owner can change it with DFD_STUDIO_MAX_ZIP_RATIO)"
        )
    plan, skipped, seen = [], [], set()
    for info in infos:
        parts = _entry_parts(info)
        if info.is_dir() or not parts:
            continue
        if _is_link_or_special(info):
            raise UploadError(f"the zip holds a link or special file ({info.filename!r}); zip plain files only")
        if info.flag_bits & 0x1:
            raise UploadError(f"the zip entry {info.filename!r} is encrypted; upload an unencrypted zip")
        if (
            parts[0] == "__MACOSX"
            or any(p.startswith(".") for p in parts)
            or not parts[-1].lower().endswith(keep_suffixes)
        ):
            skipped.append(info.filename)
            continue
        if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UploadError(
                f"the zip entry {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}x "
                f"(more than {limits.max_ratio:.0f}x): it looks like a zip bomb, refusing it (the owner can change "
                "it with DFD_STUDIO_MAX_ENTRY_RATIO)"
            )
        safe = "/".join(sanitize_name(p) for p in parts)
        if safe.lower() in seen:
            raise UploadError(
                f"two zip entries become the same file {safe!r} once their names are made safe; rename one"
            )
        seen.add(safe.lower())
        plan.append((info, safe))
    return plan, skipped


def _copy_limited(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Extract one entry, stopping if it writes more than it declared or than the budget left (a zip's
    headers can lie). Returns the bytes written."""
    written = 0
    limit = min(info.file_size, budget)
    with archive.open(info) as source, open(target, "xb") as out:
        while chunk := source.read(1024 * 1024):
            written += len(chunk)
            if written > limit:
                raise UploadError(
                    f"the zip entry {info.filename!r} unpacks to more than it declares or than the size limit; "
                    "refusing it"
                )
            out.write(chunk)
    return written


def _unwrap(folder: Path) -> Path:
    """A zip of a folder holds one top-level folder: use it as the root."""
    entries = [p for p in folder.iterdir()]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


@dataclass
class Extracted:
    folder: Path  # the new folder under dest_parent (remove it to undo the extraction)
    root: Path  # the folder itself, or its one top-level folder when the zip held a folder
    skipped: list[str]  # entries not extracted (unwanted types, hidden files)


def safe_extract_zip(
    zip_path: str | Path, dest_parent: str | Path, keep_suffixes: tuple[str, ...], limits: Limits | None = None
) -> Extracted:
    """Extract the wanted files of a zip into a new folder under dest_parent, after checking it.
    Raises UploadError and leaves nothing behind."""
    limits = limits or Limits.from_env()
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise UploadError("the upload is missing; upload the file again")
    size = zip_path.stat().st_size
    if size > limits.max_upload_bytes:
        raise UploadError(
            f"the upload is {_size(size)}, over the {_size(limits.max_upload_bytes)} limit; give a local folder "
            "instead (the owner can change it with DFD_STUDIO_MAX_UPLOAD_MB)"
        )
    if not zipfile.is_zipfile(zip_path):
        raise UploadError(f"{sanitize_name(zip_path.name)} is not a zip file; upload a .zip")
    dest_parent = Path(dest_parent)
    dest_parent.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    tmp = dest_parent / f".{name}.partial"
    try:
        with zipfile.ZipFile(zip_path) as archive:
            plan, skipped = _plan(archive, limits, keep_suffixes, size)
            check_free_disk(dest_parent, sum(info.file_size for info, _ in plan), limits, "unpacking the zip")
            budget = limits.max_total_bytes
            for info, safe in plan:
                target = tmp / safe
                target.parent.mkdir(parents=True, exist_ok=True)
                budget -= _copy_limited(archive, info, target, budget)
        tmp.mkdir(parents=True, exist_ok=True)
        final = dest_parent / name
        os.replace(tmp, final)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UploadError(f"the zip cannot be read ({err}); create it again and upload it") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Extracted(folder=final, root=_unwrap(final), skipped=skipped)


def count_captioned(folder: Path) -> tuple[int, int]:
    """(videos, videos with a caption) in a data folder, by the rules training uses
    (engine/datasets/sources.py): captions.jsonl, else captions.csv (rows naming files relative to the
    folder), else a sidecar .txt per top-level video; a caption file that is not UTF-8 captions nothing.
    `engine.scan_folder` also names each file that would be skipped, and why."""
    folder = Path(folder)
    videos = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    captioned = len(list_folder(folder).clips)
    return max(len(videos), captioned), captioned


def extract_dataset(zip_path: str | Path, uploads_dir: str | Path, limits: Limits | None = None) -> DatasetSummary:
    """An uploaded zip of videos with captions -> a data folder under uploads_dir. Raises UploadError when
    it is unsafe or holds no captioned video."""
    extracted = safe_extract_zip(zip_path, Path(uploads_dir) / "data", VIDEO_SUFFIXES + CAPTION_SUFFIXES, limits)
    folder = extracted.root
    try:
        videos, captioned = count_captioned(folder)
    except ValueError as err:  # a captions table naming a file outside the zip's folder, say
        shutil.rmtree(extracted.folder, ignore_errors=True)
        raise UploadError(str(err).replace(f"{folder}: ", "in the zip, ")) from None
    if captioned == 0:
        shutil.rmtree(extracted.folder, ignore_errors=True)
        what = "no videos" if videos == 0 else f"{videos} videos but no captions"
        raise UploadError(
            f"the zip holds {what}; put .mp4 files with a .txt caption each (or a captions.csv / captions.jsonl) in it"
        )
    return DatasetSummary(folder=folder, videos=videos, captioned=captioned, skipped=extracted.skipped)


def save_lora_upload(upload: str | Path, uploads_dir: str | Path, limits: Limits | None = None) -> Path:
    """An uploaded student LoRA (the .safetensors file, or a zip of the student folder) -> a student folder
    under uploads_dir with LORA_FILE in it. Raises UploadError."""
    limits = limits or Limits.from_env()
    upload = Path(upload)
    if not upload.is_file():
        raise UploadError("the upload is missing; upload the file again")
    if upload.stat().st_size > limits.max_upload_bytes:
        raise UploadError(
            f"the LoRA file is over the {_size(limits.max_upload_bytes)} limit; upload the student's {LORA_FILE}"
        )
    parent = Path(uploads_dir) / "lora"
    if upload.suffix.lower() == ".safetensors":
        _check_safetensors(upload)
        check_free_disk(parent, upload.stat().st_size, limits, "keeping the LoRA file")
        folder = parent / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        folder.mkdir(parents=True)
        shutil.copyfile(upload, folder / LORA_FILE)
        return folder
    if upload.suffix.lower() != ".zip":
        raise UploadError(f"{sanitize_name(upload.name)} is neither a .safetensors LoRA nor a .zip of a student folder")
    extracted = safe_extract_zip(upload, parent, (".safetensors", ".json"), limits)
    found = list(extracted.folder.rglob(LORA_FILE))
    if len(found) != 1:
        shutil.rmtree(extracted.folder, ignore_errors=True)
        raise UploadError(f"the zip must hold exactly one {LORA_FILE}; it holds {len(found)}")
    try:
        _check_safetensors(found[0])
    except UploadError:
        shutil.rmtree(extracted.folder, ignore_errors=True)
        raise
    return found[0].parent


MAX_DATA_CONFIG_BYTES = 1024**2  # a data-set config names folders: a few lines


def save_data_config_upload(upload: str | Path, uploads_dir: str | Path, confine=None) -> Path:
    """An uploaded data-set config (YAML/TOML) -> a copy under uploads_dir that a job can read later (the
    upload's own temporary file goes away), checked as `distill --data` checks one. Its folders must be
    absolute paths (the copy's folder is not the user's), each passed to `confine` before it is looked
    at. Raises UploadError in one line naming the uploaded file and the field; nothing is kept then."""
    upload = Path(upload)
    name = sanitize_name(upload.name)
    if not upload.is_file():
        raise UploadError("the upload is missing; upload the file again")
    if upload.suffix.lower() not in CONFIG_SUFFIXES:
        raise UploadError(f"{name} is not a data-set config; upload a {', '.join(CONFIG_SUFFIXES)} file")
    if upload.stat().st_size > MAX_DATA_CONFIG_BYTES:
        raise UploadError(
            f"{name} is over {_size(MAX_DATA_CONFIG_BYTES)}; a data-set config lists folders in a few lines"
        )
    folder = Path(uploads_dir) / "dataset-config" / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    folder.mkdir(parents=True)
    copy = folder / name
    shutil.copyfile(upload, copy)
    try:
        check_data_spec(str(copy), confine=confine, relative_paths=False)
    except ValueError as err:
        shutil.rmtree(folder, ignore_errors=True)
        raise UploadError(str(err).replace(str(copy), name)) from None
    return copy


def _check_safetensors(path: Path) -> None:
    """The file must parse as safetensors (a header, tensors only: nothing executable)."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            keys = list(f.keys())
    except Exception as err:  # safetensors raises its own error types for any malformed file
        raise UploadError(
            f"the LoRA file is not a valid safetensors file ({type(err).__name__}); upload "
            f"{LORA_FILE} from a student folder"
        ) from None
    if not any("lora" in k for k in keys):
        raise UploadError("the safetensors file holds no LoRA weights; upload a student's " + LORA_FILE)
