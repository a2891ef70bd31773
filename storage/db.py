"""Opening the studio database: one SQLAlchemy engine per data dir and process, set up so that many
processes (the web app, workers, job processes) can share one SQLite file without "database is locked".

Why each setting:
- WAL journal: readers never block the writer and the writer never blocks readers.
- busy timeout: a writer waits (up to BUSY_TIMEOUT_S) for another writer instead of failing at once.
- BEGIN IMMEDIATE for writes: the write lock is taken when the transaction starts, where SQLite's busy
  handler can wait for it. A deferred transaction that reads and then writes must upgrade its lock
  mid-transaction, and SQLite fails that upgrade immediately (no waiting) when another writer is active.
  This uses the documented pysqlite recipe: stop the driver from emitting BEGIN, emit our own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .layout import DataDir
from .schema import upgrade

BUSY_TIMEOUT_S = 30.0
_BEGIN_OPTION = "dfd_sqlite_begin"  # execution option read by the "begin" hook


def _install_transaction_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # The driver must not emit BEGIN itself (it would use a plain deferred BEGIN and skip reads).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL is safe in WAL mode against process crashes; only an OS crash can lose the last commits.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(db_path: str | os.PathLike) -> Engine:
    """A SQLAlchemy engine on one SQLite file with WAL, busy timeout and our BEGIN hooks."""
    engine = create_engine(
        f"sqlite:///{os.fspath(db_path)}",
        # check_same_thread off: the pool hands a connection to one thread at a time, and the job
        # process's heartbeat thread shares the engine with the training thread.
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    _install_transaction_hooks(engine)
    return engine


class Database:
    """The studio database of one data dir: read sessions (snapshot) and write sessions (BEGIN IMMEDIATE)."""

    def __init__(self, layout: DataDir, engine: Engine):
        self.layout = layout
        self.engine = engine
        self.write_engine = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        self._readers = sessionmaker(engine, expire_on_commit=False)
        self._writers = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; its transaction (a consistent snapshot) ends with the block."""
        with self._readers() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction holds the write lock from the start; commits at the end of the
        block, rolls back if it raises."""
        with self._writers() as session, session.begin():
            yield session

    def close(self) -> None:
        self.engine.dispose()


_open: dict[tuple[str, int], Database] = {}
_open_lock = threading.Lock()


def open_database(data_dir: str | os.PathLike | None = None) -> Database:
    """The database of a data dir (created and upgraded to the current schema if needed).

    Cached per data dir and process: the web app calls this on every request. The process id is part of
    the key because a forked child must not reuse its parent's connections."""
    layout = DataDir(data_dir)
    key = (str(layout.root), os.getpid())
    with _open_lock:
        database = _open.get(key)
        if database is None:
            layout.root.mkdir(parents=True, exist_ok=True)
            layout.jobs_dir.mkdir(exist_ok=True)
            database = Database(layout, make_engine(layout.db_path))
            upgrade(database.write_engine)
            _open[key] = database
        return database


def close_all() -> None:
    """Dispose every cached engine of this process (tests use it to release files)."""
    with _open_lock:
        for database in _open.values():
            database.close()
        _open.clear()
