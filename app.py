"""DFD Studio: `python app.py` serves the studio and starts a job worker beside it.

    python app.py [--host H] [--port P] [--data-dir D] [--no-worker] [--share]

Follows Hugging Face Space conventions: PORT and GRADIO_SERVER_NAME / GRADIO_SERVER_PORT from the
environment; on a Space with a Storage Bucket mounted as a volume (at /data, or DFD_STUDIO_PERSISTENT_DIR)
the data folder lives on it and survives a restart. The Hugging Face cache (HF_HOME) is left where it is:
the README's preload_from_hub puts Wan's weights there at build time and does not follow a moved HF_HOME.
Logins and what visitors may read are set by environment variables (docs/studio.md, docs/space.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent


def persistent_root(environ=None) -> Path | None:
    """Where a Space's Storage Bucket is mounted (DFD_STUDIO_PERSISTENT_DIR, default /data) when that folder
    exists and is writable; None elsewhere (a Space with no bucket forgets everything on restart)."""
    environ = os.environ if environ is None else environ
    root = Path(environ.get("DFD_STUDIO_PERSISTENT_DIR") or "/data")
    return root if root.is_dir() and os.access(root, os.W_OK) else None


def default_data_dir(environ=None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("DFD_STUDIO_DATA"):
        return Path(environ["DFD_STUDIO_DATA"])
    root = persistent_root(environ)
    return root / "studio_data" if root is not None else Path("studio_data")


def storage_line(data_dir: Path, environ=None) -> str:
    """What the studio says on start about its data: where it lives and whether it outlives a restart."""
    environ = os.environ if environ is None else environ
    root = persistent_root(environ)
    if root is not None and data_dir.resolve().is_relative_to(root.resolve()):
        return f"data in {data_dir} (on the volume mounted at {root}: it persists across restarts)"
    if environ.get("SPACE_ID"):
        return (
            f"data in {data_dir} (NOT persistent: this Space has no Storage Bucket mounted at {root or '/data'}; "
            "jobs and students are lost on restart; docs/space.md says how to attach one)"
        )
    return f"data in {data_dir}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="DFD Studio web app")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", os.environ.get("PORT", "7860")))
    )
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--no-worker", action="store_true", help="do not start a background job worker")
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link")
    return parser.parse_args(argv)


def start_worker(data_dir: Path) -> subprocess.Popen:
    """`python -m engine worker` for this data folder, its output in <data_dir>/worker.log."""
    log = open(data_dir / "worker.log", "ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "engine", "worker", "--data-dir", str(data_dir)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    finally:
        log.close()  # the child holds its own copy


def stop_worker(worker: subprocess.Popen | None, grace: float = 15.0) -> None:
    """SIGTERM (the worker interrupts its running job, which stays resumable), SIGKILL after `grace`."""
    if worker is None or worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


class WorkerSupervisor:
    """Keeps one worker process running beside the studio: a worker that exits or is killed is started
    again after a pause that doubles (first_backoff_s up to max_backoff_s) while it keeps dying, and goes
    back to first_backoff_s once a worker has lived healthy_after_s. Why it died is recorded in worker.json,
    which the Jobs tab shows (engine.worker_health)."""

    def __init__(
        self,
        data_dir: Path,
        first_backoff_s: float = 2.0,
        max_backoff_s: float = 120.0,
        healthy_after_s: float = 60.0,
        check_every_s: float = 1.0,
    ):
        self.data_dir = data_dir
        self.first_backoff_s, self.max_backoff_s = first_backoff_s, max_backoff_s
        self.healthy_after_s, self.check_every_s = healthy_after_s, check_every_s
        self.worker: subprocess.Popen | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> WorkerSupervisor:
        self.worker = start_worker(self.data_dir)
        self._thread.start()
        return self

    def _watch(self) -> None:
        import engine

        backoff, started = self.first_backoff_s, time.monotonic()
        while not self._stopping.wait(self.check_every_s):
            code = self.worker.poll()
            if code is None:
                if time.monotonic() - started > self.healthy_after_s:
                    backoff = self.first_backoff_s
                continue
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            reason = f"the worker {how}; restarting in {backoff:g} s"
            print(f"DFD Studio: {reason} (its log: {self.data_dir / 'worker.log'})", file=sys.stderr, flush=True)
            engine.worker_stopped(self.data_dir, reason, pid=self.worker.pid)
            if self._stopping.wait(backoff):
                return
            backoff = min(self.max_backoff_s, backoff * 2)
            self.worker, started = start_worker(self.data_dir), time.monotonic()
            self.restarts += 1

    def stop(self, grace: float = 15.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        stop_worker(self.worker, grace)


def main(argv=None) -> None:
    args = parse_args(argv)
    data_dir = args.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    import engine.jobs
    from studio import access_from_env, build_studio, identity_from_env, is_public, launch_auth, launch_options

    public = is_public(args.host, args.share)
    try:
        login = launch_auth(public=public)
        identity = identity_from_env(public)
    except ValueError as err:
        raise SystemExit(f"DFD Studio: {err}") from None

    engine.jobs.reconcile(data_dir)  # jobs left running by a previous server become interrupted (resumable)
    engine.hf_tracker.follow(data_dir)  # its HF Jobs, running or resumed, followed again (after a restart too)
    supervisor = None if args.no_worker else WorkerSupervisor(data_dir).start()

    def stop(*_):  # SIGTERM (a Space stopping, `kill`) ends like Ctrl-C: the worker is stopped too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        demo = build_studio(data_dir, access=access_from_env(data_dir, public), identity=identity)
        if public:  # visitors' uploads, temp files and renders are swept by age and size (studio/janitor.py)
            from studio import janitor

            janitor.start(data_dir)
        print(
            f"DFD Studio: {storage_line(data_dir)}, serving on http://{args.host}:{args.port}"
            f"{'' if supervisor else ' (no worker: queued jobs wait)'}",
            flush=True,
        )
        waiting = int(os.environ.get("DFD_STUDIO_QUEUE_SIZE") or 64) if public else None  # requests waiting at once
        demo.queue(default_concurrency_limit=1, max_size=waiting).launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            **login,
            **launch_options(data_dir),
        )
    except KeyboardInterrupt:
        pass
    finally:
        if supervisor is not None:
            supervisor.stop()


if __name__ == "__main__":
    main()
