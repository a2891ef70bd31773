"""Storage on a real SQLite file: WAL and BEGIN IMMEDIATE, the versioned schema and its upgrade, the job
state machine, atomic claiming, reconciliation, and concurrent writers from separate processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect

import storage
from storage import IllegalTransition, JobNotRunning, outputs, recovery, states
from storage import jobs as job_rows
from storage.db import make_engine
from storage.models import Base, JobRow
from storage.schema import LATEST_VERSION, STEPS, SchemaTooNew, upgrade

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


@pytest.fixture
def db(tmp_path):
    database = storage.open_database(tmp_path / "studio")
    yield database
    storage.close_all()


def running_job(db, kind="counter", config=None):
    job_rows.create_job(db, kind, config or {})
    return job_rows.claim_next(db)


def test_connections_use_wal_and_a_busy_timeout(db):
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_write_transaction_holds_the_write_lock_from_its_first_statement(db):
    job = job_rows.create_job(db, "counter", {})
    other = sqlite3.connect(db.layout.db_path, timeout=0.1, isolation_level=None)
    try:
        with db.write() as session:
            session.get(JobRow, job.id)  # only a read so far: BEGIN IMMEDIATE already took the lock
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
        with db.read() as session:  # reads do not take it
            session.get(JobRow, job.id)
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_write_transaction_that_raises_leaves_nothing_behind(db):
    job = job_rows.create_job(db, "counter", {})
    with pytest.raises(RuntimeError, match="boom"):
        with db.write() as session:
            session.get(JobRow, job.id).state = "running"
            session.flush()
            raise RuntimeError("boom")
    assert job_rows.get_job(db, job.id).state == "queued"
    with pytest.raises(TypeError):
        job_rows.create_job(db, "counter", {"not json": object()})
    assert [j.id for j in job_rows.list_jobs(db)] == [job.id]
    assert [p.name for p in db.layout.jobs_dir.iterdir()] == [job.id]


def test_new_database_is_at_the_latest_schema_and_matches_the_models(db):
    with db.engine.connect() as connection:
        assert storage.schema.current_version(connection) == LATEST_VERSION
    inspector = inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        in_file = {column["name"] for column in inspector.get_columns(table.name)}
        assert in_file == set(table.columns.keys()), table.name


def test_old_version_database_is_upgraded_with_its_rows_kept(tmp_path):
    data_dir = tmp_path / "studio"
    data_dir.mkdir()
    old = make_engine(data_dir / "studio.db")
    upgrade(old.execution_options(dfd_sqlite_begin="IMMEDIATE"), target=1)
    with old.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO jobs (id, kind, config, state, step, total, created_at, queued_at, finished_at, error)"
            " VALUES ('j-20250101-aaaaaa', 'sample', '{\"prompt\": \"a red circle\"}', 'failed', 7, 10, 1.0, 1.0, 5.0,"
            " 'disk full')"
        )
        connection.exec_driver_sql(
            "INSERT INTO metric_points (job_id, step, name, value, time)"
            " VALUES ('j-20250101-aaaaaa', 7, 'loss', 0.5, 4.0)"
        )
    old.dispose()

    db = storage.open_database(data_dir)
    try:
        with db.engine.connect() as connection:
            assert storage.schema.current_version(connection) == LATEST_VERSION
            applied = connection.exec_driver_sql("SELECT version FROM schema_version ORDER BY version").scalars().all()
        assert applied == [step.version for step in STEPS]
        job = job_rows.get_job(db, "j-20250101-aaaaaa")
        assert (job.state, job.step, job.total, job.error) == ("failed", 7, 10, "disk full")
        assert (job.target, job.remote) == ("local", None)  # version 4: older jobs ran on the local worker
        assert job.config == {"prompt": "a red circle"}
        assert [(p.step, p.name, p.value) for p in outputs.metric_points(db, job.id)] == [(7, "loss", 0.5)]
        [event] = job_rows.job_events(db, job.id)  # version 2 backfilled the history
        assert (event.to_state, event.at) == ("failed", 5.0)
    finally:
        storage.close_all()


def test_database_from_a_newer_studio_is_refused_with_a_clear_error(tmp_path):
    data_dir = tmp_path / "studio"
    storage.open_database(data_dir)
    storage.close_all()
    with sqlite3.connect(data_dir / "studio.db") as connection:
        connection.execute("INSERT INTO schema_version VALUES (99, 'from the future', 0)")
    with pytest.raises(SchemaTooNew, match="schema version 99 .* update DFD Studio"):
        storage.open_database(data_dir)
    storage.close_all()


def test_state_machine_allows_exactly_the_documented_transitions():
    allowed = {(a, b) for a in states.STATES for b in states.STATES if b in states.ALLOWED[a]}
    assert allowed == {
        ("queued", "running"),
        ("queued", "cancelled"),
        ("running", "succeeded"),
        ("running", "failed"),
        ("running", "cancelled"),
        ("running", "interrupted"),
        ("interrupted", "queued"),
        ("cancelled", "queued"),
        ("failed", "queued"),
    }
    with pytest.raises(IllegalTransition, match="job j-x is succeeded and cannot become queued .*final"):
        states.check_transition("j-x", "succeeded", "queued")
    with pytest.raises(ValueError, match="unknown job state 'paused'"):
        states.check_transition("j-x", "running", "paused")


def test_every_state_change_is_a_committed_event_and_illegal_ones_change_nothing(db):
    job = running_job(db)
    job_rows.transition(db, job.id, "interrupted", error="the job process (pid 1) is gone")
    job_rows.transition(db, job.id, "queued", reason="resumed")
    assert job_rows.claim_next(db).id == job.id
    job_rows.transition(db, job.id, "succeeded")
    assert [(e.from_state, e.to_state) for e in job_rows.job_events(db, job.id)] == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "interrupted"),
        ("interrupted", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
    ]
    with pytest.raises(IllegalTransition, match="is succeeded and cannot become running"):
        job_rows.transition(db, job.id, "running")
    assert job_rows.get_job(db, job.id).state == "succeeded"
    assert len(job_rows.job_events(db, job.id)) == 6


def test_created_job_has_a_short_readable_id_and_its_folder(db):
    # 24 random bits: ids can collide (500 draws collide ~0.7% of the time), which create_job retries;
    # see the next test. Here only their form.
    ids = [job_rows.new_job_id() for _ in range(50)]
    assert all(re.fullmatch(r"j-\d{8}-[0-9a-f]{6}", job_id) for job_id in ids)
    assert len(set(ids)) > 1
    job = job_rows.create_job(db, "counter", {"steps": 3})
    assert job.dir == db.layout.root / "jobs" / job.id
    assert sorted(p.name for p in job.dir.iterdir()) == ["checkpoints", "config.json", "lora", "samples"]
    assert json.loads((job.dir / "config.json").read_text())["config"] == {"steps": 3}


def test_an_id_already_taken_by_a_folder_or_a_row_is_skipped(db, monkeypatch):
    first = job_rows.create_job(db, "counter", {})
    shutil.rmtree(first.dir)  # its row remains: the id is still taken
    (db.layout.jobs_dir / "j-20261130-aaaaaa").mkdir()  # a folder with no row
    drawn = iter([first.id, "j-20261130-aaaaaa", "j-20261130-bbbbbb"])
    monkeypatch.setattr(job_rows, "new_job_id", lambda: next(drawn))
    job = job_rows.create_job(db, "counter", {"steps": 1})
    assert job.id == "j-20261130-bbbbbb"
    assert not first.dir.exists()  # the folder made for the taken id was removed again
    assert [j.id for j in job_rows.list_jobs(db)] == [job.id, first.id]
    monkeypatch.setattr(job_rows, "new_job_id", lambda: "j-20261130-aaaaaa")
    with pytest.raises(RuntimeError, match="could not find a free job id after 8 tries"):
        job_rows.create_job(db, "counter", {})


def test_claim_takes_the_oldest_queued_job_of_the_allowed_kinds_once(db):
    first = job_rows.create_job(db, "sample", {})
    second = job_rows.create_job(db, "counter", {})
    assert job_rows.claim_next(db, kinds=["counter"]).id == second.id
    assert job_rows.claim_next(db, kinds=["counter"]) is None
    claimed = job_rows.claim_next(db)
    assert (claimed.id, claimed.state) == (first.id, "running")
    assert job_rows.claim_next(db) is None


CLAIM_SCRIPT = """
import sys, storage
db = storage.open_database(sys.argv[1])
taken = []
while (job := storage.jobs.claim_next(db)) is not None:
    taken.append(job.id)
print(" ".join(taken))
"""


def test_two_processes_never_claim_the_same_job(db):
    created = {job_rows.create_job(db, "counter", {}).id for _ in range(40)}
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM_SCRIPT, str(db.layout.root)],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [claimer.communicate(timeout=60) for claimer in claimers]
    assert all(claimer.returncode == 0 for claimer in claimers), [err for _, err in results]
    taken = [out.split() for out, _ in results]
    assert not set(taken[0]) & set(taken[1])
    assert set(taken[0]) | set(taken[1]) == created


WRITER_SCRIPT = """
import sys, time, storage
from sqlalchemy.exc import OperationalError
db = storage.open_database(sys.argv[1])
job_id, seconds = sys.argv[2], float(sys.argv[3])
writes = locked = 0
step = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    step += 1
    try:
        storage.outputs.record_progress(db, job_id, step, None, {"loss": 1.0 / step, "loss_fake": 2.0})
        storage.outputs.record_heartbeat(db, job_id)
        storage.jobs.list_jobs(db)
        writes += 1
    except OperationalError as error:
        locked += 1
        print(error, file=sys.stderr)
print(writes, locked)
"""


def test_two_processes_writing_progress_concurrently_never_see_database_is_locked(db):
    jobs = [running_job(db) for _ in range(2)]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, str(db.layout.root), job.id, "10"],
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    try:
        results = [writer.communicate(timeout=60) for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
    for (out, err), writer in zip(results, writers):
        assert writer.returncode == 0, err
        writes, locked = map(int, out.split())
        assert locked == 0 and "locked" not in err, err
        assert writes > 50
    for job in jobs:
        points = outputs.metric_points(db, job.id, ["loss"])
        assert [p.step for p in points] == list(range(1, len(points) + 1))  # every write committed, in order


def test_cancel_is_immediate_for_a_queued_job_and_a_flag_for_a_running_one(db):
    queued = job_rows.create_job(db, "counter", {})
    assert job_rows.request_cancel(db, queued.id).state == "cancelled"
    running = running_job(db)
    flagged = job_rows.request_cancel(db, running.id)
    assert (flagged.state, flagged.cancel_requested) == ("running", True)
    assert outputs.record_progress(db, running.id, 1, 10, {"loss": 0.1}) is True
    with pytest.raises(IllegalTransition, match="only a queued or running job can be cancelled"):
        job_rows.request_cancel(db, queued.id)
    resumed = job_rows.transition(db, queued.id, "queued")
    assert (resumed.state, resumed.cancel_requested) == ("queued", False)


def test_reports_for_a_job_that_is_not_running_raise(db, tmp_path):
    job = job_rows.create_job(db, "counter", {})
    with pytest.raises(JobNotRunning, match="is queued, not running"):
        outputs.record_progress(db, job.id, 1, 10, {"loss": 0.1})
    with pytest.raises(storage.JobNotFound, match="no job 'j-nope'"):
        job_rows.get_job(db, "j-nope")


def test_progress_stores_metric_points_and_a_resume_forgets_the_repeated_steps(db):
    job = running_job(db)
    for step in range(1, 7):
        outputs.record_progress(db, job.id, step, 6, {"loss": step / 10, "loss_fake": 1.0})
    with pytest.raises(ValueError, match="non-finite"):
        outputs.record_progress(db, job.id, 7, 6, {"loss": float("nan")})
    assert job_rows.get_job(db, job.id).loss_terms == {"loss": 0.6, "loss_fake": 1.0}
    outputs.record_progress(db, job.id, 7, 8, {"loss_fake": 0.5})  # alternating terms keep their latest values
    assert job_rows.get_job(db, job.id).loss_terms == {"loss": 0.6, "loss_fake": 0.5}
    assert outputs.forget_metrics_after(db, job.id, 4) == 5  # steps 5-6 (two terms each) and 7
    assert [p.step for p in outputs.metric_points(db, job.id, ["loss"])] == [1, 2, 3, 4]


def test_reconcile_interrupts_running_jobs_whose_process_is_dead_or_silent(db):
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    dead, silent, alive = (running_job(db) for _ in range(3))
    checkpoint = dead.dir / "checkpoints" / "step-5"
    checkpoint.write_text("weights")
    outputs.add_checkpoint(db, dead.id, 5, checkpoint)
    job_rows.set_pid(db, dead.id, dead_pid.pid)
    job_rows.set_pid(db, alive.id, os.getpid())
    job_rows.set_pid(db, silent.id, os.getpid())
    with db.write() as session:
        session.get(JobRow, silent.id).heartbeat_at = time.time() - 45

    changed = {job.id: job for job in recovery.reconcile(db)}

    assert set(changed) == {dead.id, silent.id}
    assert changed[dead.id].error == f"the job process (pid {dead_pid.pid}) is gone; resume to continue from step 5"
    assert re.fullmatch(
        r"the job process sent no heartbeat for 4\d s; resume to continue from step 0", changed[silent.id].error
    )
    assert job_rows.get_job(db, alive.id).state == "running"
    assert recovery.reconcile(db) == []


def test_storage_imports_neither_torch_nor_gradio_nor_our_other_packages():
    check = (
        "import sys, storage, storage.db, storage.jobs, storage.outputs, storage.recovery, storage.schema\n"
        "heavy = [m for m in ('torch', 'gradio', 'diffusers', 'numpy', 'engine', 'studio') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], env=ENV, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_metric_points_after_an_id_are_only_those_stored_since(db):
    job = job_rows.create_job(db, "sample", {})
    job_rows.claim_next(db)
    for step in (1, 2):
        outputs.record_progress(db, job.id, step, 5, {"loss_student": 1.0 / step, "loss_fake": 0.5})
    held = outputs.metric_points(db, job.id)
    last = max(point.id for point in held)
    assert outputs.metric_points(db, job.id, after_id=last) == []

    outputs.record_progress(db, job.id, 3, 5, {"loss_student": 0.3, "loss_fake": 0.4})
    new = outputs.metric_points(db, job.id, after_id=last)
    assert [(p.step, p.name, p.value) for p in new] == [(3, "loss_fake", 0.4), (3, "loss_student", 0.3)]
    assert all(p.id > last for p in new)
    assert [p.step for p in outputs.metric_points(db, job.id, ["loss_fake"], after_id=0)] == [1, 2, 3]
