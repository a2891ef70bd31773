"""Which files the studio may show, and where they live.

Only `<data_dir>/public` is served. Job folders hold config.json and the database sits beside them, so a
file a job made (a preview video) is linked or copied into the public folder before the page shows it.
Uploads and staged publish folders live in folders that are never served.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

SHOWABLE = (".mp4", ".png", ".jpg", ".webp", ".zip", ".md", ".yaml")  # what may be exposed in the public folder


def public_folder(data_dir: str | Path) -> Path:
    folder = Path(data_dir).resolve() / "public"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def uploads_folder(data_dir: str | Path) -> Path:
    return Path(data_dir).resolve() / "uploads"


def staging_folder(data_dir: str | Path) -> Path:
    return Path(data_dir).resolve() / "publish"


def blocked_paths(data_dir: str | Path) -> list[str]:
    """Everything private in the data folder: gradio refuses to serve these even by mistake."""
    root = Path(data_dir).resolve()
    return [
        str(root / name)
        for name in (
            "studio.db",
            "studio.db-wal",
            "studio.db-shm",
            "jobs",
            "uploads",
            "publish",
            "gpu.lock",
            "cache",
            "worker.log",
        )
    ]


def expose(source: str | Path, public_dir: Path, relative: str) -> Path:
    """Make `source` visible as public_dir/relative (a hard link, or a copy across file systems); an
    up-to-date one is reused. Only media, zips and cards may be exposed."""
    source = Path(source)
    if source.suffix.lower() not in SHOWABLE:
        raise ValueError(f"{source.name} is not a media file and cannot be shown")
    target = (public_dir / relative).resolve()
    if not target.is_relative_to(public_dir.resolve()):
        raise ValueError(f"{relative!r} leaves the public folder")
    if target.is_file():
        s, t = source.stat(), target.stat()
        if (s.st_ino == t.st_ino and s.st_dev == t.st_dev) or (s.st_size == t.st_size and t.st_mtime >= s.st_mtime):
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return target


def cache_key(*parts) -> str:
    """A short stable name for a combination of settings (and file versions) to cache results under."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:16]
