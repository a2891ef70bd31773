"""Job rows: create, read, list, claim, and every state change (through the state machine, each one a
committed row in `jobs` plus one in `job_events`)."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import states
from .db import Database
from .errors import JobNotFound
from .models import CheckpointRow, JobEventRow, JobRow
from .records import Job, JobEvent, event_from_row, job_from_row
from .states import CANCELLED, LOCAL, QUEUED, RUNNING, TARGETS, IllegalTransition, check_transition

_ID_ATTEMPTS = 8


class _IdTaken(Exception):
    pass


def new_job_id(now: float | None = None) -> str:
    """A short, readable, practically unique id: "j-<UTC date>-<6 hex digits>", e.g. j-20261121-ab12cd."""
    day = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC).strftime("%Y%m%d")
    return f"j-{day}-{secrets.token_hex(3)}"


def _row(session: Session, db: Database, job_id: str) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None:
        raise JobNotFound(job_id, db.layout.root)
    return row


def _record_event(session: Session, job_id: str, from_state: str | None, to_state: str, reason: str | None, at: float):
    session.add(JobEventRow(job_id=job_id, from_state=from_state, to_state=to_state, reason=reason, at=at))


def create_job(
    db: Database,
    kind: str,
    config: dict,
    parent_id: str | None = None,
    submitted_by: str | None = None,
    target: str = LOCAL,
    remote: dict | None = None,
) -> Job:
    """Store a new queued job and create its folder with config.json. `config` must already be validated;
    `submitted_by`: the signed-in name of whoever queued it (None: the owner's own tools); `target`: who runs
    it (states.TARGETS; only LOCAL jobs are claimed by the worker), `remote`: a remote job's handle.

    The folder is made before the row is committed, so a worker never sees a job without its folder;
    if the row cannot be written the folder is removed again."""
    payload = json.dumps(config, sort_keys=True)  # fails here, before anything is written, if not JSON
    if target not in TARGETS:
        raise ValueError(f"unknown job target {target!r}; the targets are {', '.join(TARGETS)}")
    json.dumps(remote)
    if parent_id is not None:
        get_job(db, parent_id)
    for _ in range(_ID_ATTEMPTS):
        job_id = new_job_id()
        try:
            job_dir = db.layout.make_job_dir(job_id)
        except FileExistsError:
            continue
        try:
            described = {"id": job_id, "kind": kind, "parent_id": parent_id, "config": json.loads(payload)}
            (job_dir / "config.json").write_text(json.dumps(described, indent=2) + "\n")
            now = time.time()
            with db.write() as session:
                if session.get(JobRow, job_id) is not None:  # a row whose folder was deleted by hand
                    raise _IdTaken
                row = JobRow(
                    id=job_id,
                    kind=kind,
                    config=json.loads(payload),
                    state=QUEUED,
                    step=0,
                    created_at=now,
                    queued_at=now,
                    parent_id=parent_id,
                    submitted_by=submitted_by,
                    target=target,
                    remote=remote,
                )
                session.add(row)
                session.flush()  # the event row refers to it
                _record_event(session, job_id, None, QUEUED, "submitted", now)
                session.flush()
                return job_from_row(row, db.layout)
        except _IdTaken:
            shutil.rmtree(job_dir, ignore_errors=True)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
    raise RuntimeError(f"could not find a free job id after {_ID_ATTEMPTS} tries; check {db.layout.jobs_dir}")


def get_job(db: Database, job_id: str) -> Job:
    """The job with this id; raises JobNotFound."""
    with db.read() as session:
        return job_from_row(_row(session, db, job_id), db.layout)


def list_jobs(db: Database, states_: list[str] | tuple[str, ...] | None = None, limit: int = 100) -> list[Job]:
    """Jobs, newest first, optionally only those in the given states."""
    query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
    if states_:
        unknown = set(states_) - set(states.STATES)
        if unknown:
            raise ValueError(
                f"unknown job state(s) {', '.join(sorted(unknown))}; the states are {', '.join(states.STATES)}"
            )
        query = query.where(JobRow.state.in_(list(states_)))
    with db.read() as session:
        return [job_from_row(row, db.layout) for row in session.scalars(query)]


def latest_checkpoint_step(session: Session, job_id: str) -> int:
    """Step of the job's newest recorded checkpoint, 0 if it has none."""
    return session.scalar(select(func.coalesce(func.max(CheckpointRow.step), 0)).where(CheckpointRow.job_id == job_id))


def apply_transition(
    session: Session,
    row: JobRow,
    to_state: str,
    reason: str | None = None,
    error: str | None = None,
    hint: str = "",
    **fields,
) -> None:
    """Change `row`'s state inside the caller's write transaction and record the event. Raises
    IllegalTransition. For storage modules that must check and change in one transaction."""
    now = time.time()
    check_transition(row.id, row.state, to_state, hint)
    from_state = row.state
    row.state = to_state
    if to_state == QUEUED:  # resume: back of the queue, a clean slate for the next attempt
        row.queued_at, row.finished_at, row.pid, row.cancel_requested_at, row.error = now, None, None, None, None
    elif to_state == RUNNING:
        row.started_at, row.heartbeat_at, row.finished_at = now, now, None
    else:
        row.finished_at = now
        row.error = error
    for name, value in fields.items():
        setattr(row, name, value)
    _record_event(session, row.id, from_state, to_state, reason or error, now)


def transition(
    db: Database,
    job_id: str,
    to_state: str,
    reason: str | None = None,
    error: str | None = None,
    hint: str = "",
    **fields,
) -> Job:
    """Change a job's state (checked by the state machine) and record the event, in one transaction.

    `error` is stored for failed/interrupted jobs; `fields` sets other columns (e.g. step=...).
    Raises IllegalTransition or JobNotFound."""
    with db.write() as session:
        row = _row(session, db, job_id)
        apply_transition(session, row, to_state, reason, error, hint, **fields)
        session.flush()
        return job_from_row(row, db.layout)


def claim_next(db: Database, kinds: list[str] | None = None) -> Job | None:
    """Atomically take the oldest queued local job (of the given kinds, if any) and make it running (a remote
    job is started by its tracker, never by a worker).

    One UPDATE ... WHERE state = 'queued' inside BEGIN IMMEDIATE: two workers can never take the same job,
    because the second one's transaction starts only after the first one committed."""
    if kinds is not None and not kinds:
        return None
    now = time.time()
    oldest = (
        select(JobRow.id)
        .where(JobRow.state == QUEUED, JobRow.target == LOCAL)
        .order_by(JobRow.queued_at, JobRow.id)
        .limit(1)
    )
    if kinds is not None:
        oldest = oldest.where(JobRow.kind.in_(kinds))
    claim = (
        update(JobRow)
        .where(JobRow.id == oldest.scalar_subquery(), JobRow.state == QUEUED)
        .values(state=RUNNING, started_at=now, heartbeat_at=now, finished_at=None, pid=None)
        .returning(JobRow.id)
        .execution_options(synchronize_session=False)
    )
    with db.write() as session:
        job_id = session.execute(claim).scalar_one_or_none()
        if job_id is None:
            return None
        _record_event(session, job_id, QUEUED, RUNNING, "claimed by a worker", now)
        return job_from_row(session.get(JobRow, job_id), db.layout)


def count_queued(db: Database) -> int:
    """Queued jobs the worker will run (remote ones wait for their tracker)."""
    with db.read() as session:
        query = select(func.count()).select_from(JobRow).where(JobRow.state == QUEUED, JobRow.target == LOCAL)
        return session.scalar(query)


def remote_jobs(db: Database, target: str, states_: tuple[str, ...]) -> list[Job]:
    """The jobs of a remote target in the given states, oldest first: what its tracker follows."""
    query = select(JobRow).where(JobRow.target == target, JobRow.state.in_(list(states_))).order_by(JobRow.created_at)
    with db.read() as session:
        return [job_from_row(row, db.layout) for row in session.scalars(query)]


def set_remote(db: Database, job_id: str, remote: dict) -> Job:
    """Replace a job's remote handle (a resumed HF Job is a new job on the Hub) and mark it alive now."""
    json.dumps(remote)
    with db.write() as session:
        row = _row(session, db, job_id)
        row.remote, row.heartbeat_at = dict(remote), time.time()
        session.flush()
        return job_from_row(row, db.layout)


def request_cancel(db: Database, job_id: str) -> Job:
    """Cancel a job: a queued one at once; a running one is flagged and stops at its next progress report
    (the worker stops it harder if it does not). Raises IllegalTransition for jobs that are not active."""
    now = time.time()
    with db.write() as session:
        row = _row(session, db, job_id)
        if row.state == QUEUED:
            row.state, row.finished_at = CANCELLED, now
            _record_event(session, job_id, QUEUED, CANCELLED, "cancelled before it started", now)
        elif row.state == RUNNING:
            if row.cancel_requested_at is None:
                row.cancel_requested_at = now
        else:
            raise IllegalTransition(job_id, row.state, CANCELLED, "only a queued or running job can be cancelled")
        session.flush()
        return job_from_row(row, db.layout)


def set_pid(db: Database, job_id: str, pid: int) -> None:
    """Record the process running a job (no-op if the job already left `running`)."""
    with db.write() as session:
        session.execute(
            update(JobRow).where(JobRow.id == job_id, JobRow.state == RUNNING).values(pid=pid, heartbeat_at=time.time())
        )


def job_events(db: Database, job_id: str) -> list[JobEvent]:
    """The job's state changes, oldest first."""
    with db.read() as session:
        _row(session, db, job_id)
        query = select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
        return [event_from_row(row) for row in session.scalars(query)]
