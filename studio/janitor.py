"""Keeps what visitors leave on disk bounded by age and size: uploads, gradio's temporary files, the public
folder's copies and renders, and the encoded-clip cache.

Every hour (on a public studio, started by app.py) a sweep removes each item (an upload's folder, a job's
public copies, a cached render, a cache entry, a gradio temp folder) untouched for DFD_STUDIO_KEEP_DAYS
(default 7), then the oldest items while all of them together hold more than DFD_STUDIO_KEEP_MB (default
20480). An item a job may still read is kept: the data, data-set config, starting student and first frame of
every job that is queued, running or resumable, and the whole cache while a job is queued or running. What
is removed can be made again (public copies and renders on the next look) or was the visitor's upload.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import engine

from .files import uploads_folder

KEEP_DAYS, KEEP_MB, EVERY_S = 7.0, 20480.0, 3600.0
UPLOAD_KINDS = ("data", "lora", "dataset-config", "frames")
LIVE = ("queued", "running", "interrupted", "cancelled", "failed")  # jobs that may still read their inputs


@dataclass
class Swept:
    removed: list[Path] = field(default_factory=list)
    freed_bytes: int = 0
    kept_bytes: int = 0


def gradio_temp_dir(environ=None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def _items(data_dir: Path, busy: bool, environ) -> list[Path]:
    """Everything the sweep may remove, one entry per upload, copy, render, cache entry or temp folder."""
    public = data_dir / "public"
    areas = [uploads_folder(data_dir) / kind for kind in UPLOAD_KINDS] + [public / "jobs", gradio_temp_dir(environ)]
    if not busy:
        areas.append(data_dir / "cache")
    items = [p for area in areas if area.is_dir() for p in area.iterdir()]
    return items + [p for p in public.iterdir() if p.name != "jobs"] if public.is_dir() else items


def _age_and_size(item: Path) -> tuple[float, int]:
    """(newest modification time of anything in it, bytes it holds); links are not followed."""
    if item.is_symlink() or item.is_file():
        st = item.lstat()
        return st.st_mtime, st.st_size
    newest, size = item.lstat().st_mtime, 0
    for root, dirs, files in os.walk(item):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            newest = max(newest, st.st_mtime)
            size += st.st_size if name in files else 0
    return newest, size


def _in_use(data_dir: Path) -> tuple[set[Path], bool]:
    """(the paths live jobs name, is a job queued or running)."""
    jobs = engine.jobs.list_jobs(data_dir, states=list(LIVE), limit=10_000)
    named: set[Path] = set()
    for job in jobs:
        for key in ("data", "init", "image"):
            value = job.config.get(key)
            if not value or value in ("shapes", "synthetic"):
                continue
            named.add(Path(value).resolve())
            if key == "data" and Path(value).is_file():  # a data-set config: the folders it names too
                try:
                    named.update(spec.path.resolve() for spec in engine.check_data_spec(value).folders)
                except ValueError:
                    pass
    return named, any(job.state in ("queued", "running") for job in jobs)


def _remove(item: Path) -> None:
    if item.is_dir() and not item.is_symlink():
        shutil.rmtree(item, ignore_errors=True)
    else:
        item.unlink(missing_ok=True)


def sweep(
    data_dir: str | Path, keep_days: float = KEEP_DAYS, keep_mb: float = KEEP_MB, now: float | None = None, environ=None
) -> Swept:
    """Remove the items older than keep_days, then the oldest until the rest hold at most keep_mb."""
    environ = os.environ if environ is None else environ
    data_dir, now = Path(data_dir).resolve(), time.time() if now is None else now
    named, busy = _in_use(data_dir)
    swept, left = Swept(), []
    for item in _items(data_dir, busy, environ):
        resolved = item.resolve()
        if any(path == resolved or path.is_relative_to(resolved) for path in named):
            continue
        mtime, size = _age_and_size(item)
        if now - mtime > keep_days * 86400:
            _remove(item)
            swept.removed.append(item)
            swept.freed_bytes += size
        else:
            left.append((mtime, size, item))
    total = sum(size for _, size, _ in left)
    for _mtime, size, item in sorted(left, key=lambda entry: entry[0]):  # oldest first
        if total <= keep_mb * 1024**2:
            break
        _remove(item)
        swept.removed.append(item)
        swept.freed_bytes += size
        total -= size
    swept.kept_bytes = total
    return swept


def settings_from_env(environ=None) -> tuple[float, float]:
    """(keep_days, keep_mb) from DFD_STUDIO_KEEP_DAYS and DFD_STUDIO_KEEP_MB."""
    environ = os.environ if environ is None else environ
    try:
        return (
            float(environ.get("DFD_STUDIO_KEEP_DAYS") or KEEP_DAYS),
            float(environ.get("DFD_STUDIO_KEEP_MB") or KEEP_MB),
        )
    except ValueError:
        raise ValueError("DFD_STUDIO_KEEP_DAYS and DFD_STUDIO_KEEP_MB must be numbers (days, megabytes)") from None


def start(data_dir: str | Path, every_s: float = EVERY_S) -> threading.Thread:
    """Sweep now and then every `every_s` seconds in a daemon thread, with the owner's settings."""
    keep_days, keep_mb = settings_from_env()

    def loop():
        while True:
            try:
                done = sweep(data_dir, keep_days, keep_mb)
                if done.removed:
                    print(
                        f"DFD Studio: janitor removed {len(done.removed)} old files and folders "
                        f"({done.freed_bytes // 1024**2} MB)",
                        flush=True,
                    )
            except Exception as err:  # a sweep that fails (a file in use, a locked database) tries again later
                print(f"DFD Studio: janitor sweep failed: {err}", flush=True)
            time.sleep(every_s)

    thread = threading.Thread(target=loop, name="dfd-janitor", daemon=True)
    thread.start()
    return thread
