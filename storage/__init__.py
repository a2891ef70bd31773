"""Storage of DFD Studio: SQLAlchemy over one SQLite file per data dir (jobs, checkpoints, artifacts,
metric points) and the data dir's folder layout. Imports nothing of ours and never torch or gradio, so the
web app, workers and job processes can all use it cheaply.

    db = storage.open_database("studio_data")
    job = storage.jobs.create_job(db, "sample", {"prompt": "a red circle"})
"""

from . import jobs, outputs, recovery, states
from .db import Database, close_all, open_database
from .errors import JobNotFound, JobNotRunning
from .layout import DATA_DIR_ENV, DataDir, resolve_data_dir
from .records import Artifact, Checkpoint, Job, JobEvent, MetricPoint
from .schema import LATEST_VERSION, SchemaTooNew
from .states import IllegalTransition

__all__ = [
    "Artifact",
    "Checkpoint",
    "DATA_DIR_ENV",
    "DataDir",
    "Database",
    "IllegalTransition",
    "Job",
    "JobEvent",
    "JobNotFound",
    "JobNotRunning",
    "LATEST_VERSION",
    "MetricPoint",
    "SchemaTooNew",
    "close_all",
    "jobs",
    "open_database",
    "outputs",
    "recovery",
    "resolve_data_dir",
    "states",
]
