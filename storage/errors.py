"""Errors of the storage layer that callers handle; each message says what was wrong and what to do."""

from __future__ import annotations


class JobNotFound(LookupError):
    """No job with that id in this data dir."""

    def __init__(self, job_id: str, data_dir: object):
        super().__init__(f"no job {job_id!r} in {data_dir}; `python -m engine jobs list` shows the jobs there")
        self.job_id = job_id


class JobNotRunning(RuntimeError):
    """A job process tried to report for a job that is no longer running (cancelled, reconciled...)."""

    def __init__(self, job_id: str, state: str):
        super().__init__(f"job {job_id} is {state}, not running; this process stops reporting for it")
        self.job_id, self.state = job_id, state
