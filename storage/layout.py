"""Where the studio keeps things on disk: one data dir holding the database and a folder per job.

<data_dir>/studio.db                  SQLite (WAL)
<data_dir>/gpu.lock                   held while a job uses the accelerator slot
<data_dir>/jobs/<job-id>/config.json  what the job was asked to do
<data_dir>/jobs/<job-id>/log.txt      the job process's stdout and stderr
<data_dir>/jobs/<job-id>/checkpoints/ samples/ lora/
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "DFD_STUDIO_DATA"
DEFAULT_DATA_DIR = "studio_data"
JOB_SUBDIRS = ("checkpoints", "samples", "lora")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data dir to use: the given one, else $DFD_STUDIO_DATA, else ./studio_data (absolute)."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().resolve()


class DataDir:
    """Paths inside one data dir. Creating the object touches nothing on disk."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = resolve_data_dir(root)

    @property
    def db_path(self) -> Path:
        return self.root / "studio.db"

    @property
    def gpu_lock_path(self) -> Path:
        return self.root / "gpu.lock"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def config_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "config.json"

    def log_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "log.txt"

    def make_job_dir(self, job_id: str) -> Path:
        """Create the job's folder and its sub-folders; fails if the folder already exists."""
        job_dir = self.job_dir(job_id)
        job_dir.mkdir(parents=True, exist_ok=False)
        for name in JOB_SUBDIRS:
            (job_dir / name).mkdir()
        return job_dir

    def __repr__(self) -> str:
        return f"DataDir({str(self.root)!r})"
