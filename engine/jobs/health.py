"""Whether a data folder's worker is alive: the worker writes <data_dir>/worker.json (pid, the time of its last
beat, the last error its loop survived, and why it stopped), and `worker_health` reads it for the Jobs tab and
the app's supervisor. A file, not a database row: a worker whose database is locked or whose disk is full must
still be able to say so, and a reader must not wait on the database to learn that the worker is stuck."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import storage

HEALTH_FILE = "worker.json"
BEAT_EVERY_S = 5.0
STALE_AFTER_S = 30.0  # no beat for this long: the worker is hung or gone, whatever its file says


@dataclass(frozen=True)
class WorkerHealth:
    running: bool
    pid: int | None
    since: float | None  # running: when it started; stopped: its last sign of life
    reason: str | None  # why it stopped, or the last error its loop survived
    error_at: float | None = None

    def line(self) -> str:
        """'worker: running (pid 12, since 10:02:11)' or 'worker: stopped since 10:02:11 (database is locked)'."""
        if self.pid is None and self.since is None:
            return "worker: not started (queued jobs wait)" + (f" ({self.reason})" if self.reason else "")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since)) if self.since else "?"
        if self.running:
            line = f"worker: running (pid {self.pid}, since {when})"
            if self.reason and self.error_at and time.time() - self.error_at < 10 * 60:
                line += f"; last error {_ago(self.error_at)}: {self.reason}"
            return line
        return f"worker: stopped since {when}" + (f" ({self.reason})" if self.reason else "") + "; queued jobs wait"


def _ago(at: float) -> str:
    return f"{max(0, round(time.time() - at))} s ago"


def health_path(data_dir) -> Path:
    return storage.DataDir(data_dir).root / HEALTH_FILE


def _read(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write(path: Path, record: dict) -> None:
    """Replace the file atomically; a full disk or a read-only folder costs only the health line, never the loop."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def beat(data_dir, started_at: float, error: str | None = None) -> None:
    """The worker is alive now (called from its loop); `error`: an exception the loop just survived."""
    path = health_path(data_dir)
    record = _read(path) if error is None else {}
    if record.get("pid") != os.getpid():
        record = {}
    record.update(pid=os.getpid(), started_at=started_at, beat_at=time.time(), stopped=None)
    if error is not None:
        record.update(error=error, error_at=time.time())
    _write(path, record)


def stopped(data_dir, reason: str, pid: int | None = None) -> None:
    """Record that the worker (this process, or `pid` as seen by its supervisor) stopped, and why."""
    path = health_path(data_dir)
    record = _read(path)
    pid = os.getpid() if pid is None else pid
    if record.get("pid") not in (None, pid):  # a newer worker owns the file
        return
    record.update(pid=pid, stopped=reason, beat_at=record.get("beat_at") or time.time(), stopped_at=time.time())
    _write(path, record)


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_health(data_dir) -> WorkerHealth:
    """Whether the data folder's worker is running, read from its worker.json: running while its process
    exists and it beat within STALE_AFTER_S; otherwise stopped since its last beat, with the reason."""
    record = _read(health_path(data_dir))
    pid, beat_at = record.get("pid"), record.get("beat_at")
    if pid is None:
        return WorkerHealth(False, None, None, None)
    if record.get("stopped"):
        return WorkerHealth(False, pid, record.get("stopped_at") or beat_at, record["stopped"])
    if not _alive(pid):
        return WorkerHealth(False, pid, beat_at, f"its process {pid} is gone (killed or crashed); see worker.log")
    if beat_at is None or time.time() - beat_at > STALE_AFTER_S:
        return WorkerHealth(
            False,
            pid,
            beat_at,
            f"no sign of life for over {STALE_AFTER_S:.0f} s (stuck?); last error: {record.get('error') or 'none'}",
        )
    return WorkerHealth(True, pid, record.get("started_at"), record.get("error"), record.get("error_at"))
