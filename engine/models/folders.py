"""Writing a folder all at once: fill a temp folder beside it, then swap it in. A crash or a full disk
while writing leaves the previous folder (a model, a checkpoint) as it was. `written_files` does the same for
files that join a folder holding other things (a run's student LoRA beside its checkpoints and samples)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_folder(final: str | Path) -> Iterator[Path]:
    """Yield an empty temp folder; when the block ends normally it replaces `final`, else it is deleted."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)  # two renames: `final` is never missing for longer than between them
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def written_files(folder: str | Path, last: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield an empty temp folder inside `folder`; when the block ends normally each file written there is
    flushed to disk and renamed into `folder` (those named in `last` after the others: the file that marks
    the set as complete), else the temp folder is deleted. No file of `folder` is ever half-written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".writing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        order = {name: rank for rank, name in enumerate(last, start=1)}
        written = sorted((p for p in tmp.iterdir() if p.is_file()), key=lambda p: (order.get(p.name, 0), p.name))
        for path in written:
            with open(path, "rb+") as file:
                os.fsync(file.fileno())
        for path in written:
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
