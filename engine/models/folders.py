"""Writing a folder all at once: fill a temp folder beside it, then swap it in. A crash or a full disk
while writing leaves the previous folder (a model, a checkpoint) as it was."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


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
