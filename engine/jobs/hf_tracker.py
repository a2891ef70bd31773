"""An HF Job as a row of the job table, followed like a local job: the studio starts it (`start`), and a tracker
in the app's process (`Tracker`, one thread) refreshes every running or resumed HF Job row every few seconds.

The job writes into its own job folder <data_dir>/jobs/<id>/ exactly as a local distill job does (metrics.jsonl,
checkpoints/step-N, samples/*.mp4, the student in lora/), because the data dir is on the Storage Bucket that
the Space mounts at DFD_STUDIO_PERSISTENT_DIR and the job mounts at /data. A refresh reads those files into the
row (progress and metric points, checkpoints, preview artifacts), the state from inspect_job, the log from
fetch_job_logs into log.txt; a cancel request goes to cancel_job, a resumed row is started again with
`--resume` from its newest checkpoint on the bucket. Compare and Publish read a finished one as a local one.

Tokens: the Hub answers about a job only to a token of its namespace. The visitor's sign-in token is kept in
this process's memory (never on disk) when they launch or open the studio signed in; after a restart, until
they come back, the owner's HF_TOKEN is tried, and the bucket still shows progress and a finished student.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import asdict
from pathlib import Path, PurePosixPath

import storage
from storage.states import CANCELLED, FAILED, HF_JOBS, INTERRUPTED, QUEUED, RUNNING, SUCCEEDED

from ..core.files import LORA_FILE, PREVIEWS_FILE
from . import hf_jobs

REFRESH_EVERY_S = 10.0
LOG_LINES = 2000  # the log.txt of an HF Job: its newest lines as fetch_job_logs gives them
OVERDUE_S = 15 * 60  # past its timeout by this much, with no answer from the Hub: the job is gone
_PREVIEW = re.compile(r"^step(\d+)-prompt(\d+)-seed(\d+)\.mp4$")
_tokens: dict[str, str] = {}  # namespace -> the newest sign-in token seen for it (memory only)
_lock = threading.Lock()


def remember_token(namespace: str | None, token: str | None) -> None:
    """Keep a signed-in user's token in memory so their HF Jobs can be followed, cancelled and resumed."""
    if namespace and token:
        with _lock:
            _tokens[namespace] = token


def token_for(namespace: str, environ=None) -> str | None:
    """The namespace's remembered sign-in token, else the owner's HF_TOKEN (their own jobs), else None."""
    environ = os.environ if environ is None else environ
    with _lock:
        return _tokens.get(namespace) or environ.get("HF_TOKEN") or None


def bucket_root(environ=None) -> Path:
    """Where this machine sees the Storage Bucket the job mounts at /data (app.py's DFD_STUDIO_PERSISTENT_DIR)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("DFD_STUDIO_PERSISTENT_DIR") or hf_jobs.BUCKET_MOUNT).resolve()


def on_job(path, root: Path) -> str:
    """A path of this machine as the job sees it: under the bucket's mount, /data/...; elsewhere unchanged
    (hf_jobs.check_paths then refuses it with what to do)."""
    resolved = Path(path).expanduser().resolve()
    if resolved.is_relative_to(root):
        return str(PurePosixPath(hf_jobs.BUCKET_MOUNT) / resolved.relative_to(root).as_posix())
    return str(path)


def job_config(config, data_dir: Path, root: Path):
    """The run's config with every folder as the job sees it; encodings in the data dir's cache/ as a local job's."""
    values = config.to_dict()
    values["cache_dir"] = values.get("cache_dir") or str(Path(data_dir).resolve() / "cache")
    for name in hf_jobs.PATH_FIELDS:
        value = values.get(name)
        built_in = value in hf_jobs.BUILT_IN_VALUES.get(name, ()) or value in hf_jobs.BUILTIN_MODELS
        if value and not built_in and not Path(str(value)).expanduser().is_absolute() and Path(str(value)).is_dir():
            value = str(Path(value).resolve())  # a relative folder, which an owner/name would pass for a hub id
        if value and Path(str(value)).expanduser().is_absolute():  # a hub id or built-in name stays as it is
            values[name] = on_job(value, root)
    values["out"] = None
    return type(config).from_dict(values)


def _plan(api, config, job: storage.Job, root: Path, token: str, environ, resume: bool) -> hf_jobs.HfJobPlan:
    remote = job.remote or {}
    out = on_job(job.dir, root)
    return hf_jobs.plan(
        config,
        out,
        flavor=remote["flavor"],
        hardware=api.list_jobs_hardware(token=token),
        namespace=remote["namespace"],
        bucket=remote["bucket"],
        timeout_s=remote["timeout"],
        volumes=tuple(hf_jobs.Mount(**m) for m in remote.get("volumes", [])),
        job_id=job.id,
        environ=environ,
        options=("--lora-dir", f"{out}/lora", *(("--resume",) if resume else ())),
    )


def start(
    data_dir,
    api,
    config,
    *,
    flavor: str,
    timeout_s: int,
    namespace: str | None,
    token: str | None,
    bucket: str | None,
    submitted_by: str | None = None,
    parent: str | None = None,
    environ=None,
) -> tuple[storage.Job, hf_jobs.HfJobPlan]:
    """Store the run as an `hf-jobs` row and start it as an HF Job: (the row, running, and what was asked of
    the Hub). Every refusal (hf_jobs.plan's) comes before anything is stored; a Hub that refuses the start
    leaves the row failed with its answer. `parent`: the finished job a DFD run starts from, as for a local job."""
    environ = os.environ if environ is None else environ
    db = storage.open_database(data_dir)
    root = bucket_root(environ)
    cfg = job_config(config, db.layout.root, root)
    hardware = api.list_jobs_hardware(token=token) if namespace else []
    volumes = hf_jobs.space_volumes(api, environ.get("SPACE_ID"), token) if namespace else ()
    hf_jobs.plan(  # the refusals first: the row is stored only for a run the Hub may start
        cfg,
        on_job(db.layout.jobs_dir / "new", root),
        flavor=flavor,
        hardware=hardware,
        namespace=namespace,
        bucket=bucket,
        timeout_s=timeout_s,
        volumes=volumes,
        environ=environ,
    )
    remote = {"flavor": flavor, "timeout": int(timeout_s), "namespace": namespace, "bucket": bucket}
    remote["volumes"] = [asdict(m) for m in volumes]  # the Space's model and dataset volumes, at the same paths
    job = storage.jobs.create_job(db, "distill", cfg.to_dict(), parent, submitted_by, target=HF_JOBS, remote=remote)
    remember_token(namespace, token)
    return _submit(db, api, job, cfg, root, token, environ, resume=False)


def _submit(db, api, job, cfg, root, token, environ, resume: bool, step: int = 0):
    reason = f"resuming it on HF Jobs from step {step}" if resume else "starting it on HF Jobs"
    storage.jobs.transition(db, job.id, RUNNING, reason=reason, step=step)
    try:
        made = _plan(api, cfg, job, root, token, environ, resume)
        hf_id = hf_jobs.submit(api, made, token)
    except Exception as error:  # a refusal (cap, flavor gone) or the Hub's answer: the row says which
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        storage.jobs.transition(db, job.id, FAILED, error=f"HF Jobs did not start it: {reason}")
        raise ValueError(f"HF Jobs did not start it: {reason}") from None
    before = job.remote or {}
    earlier = [*before.get("earlier", []), *([before["id"]] if before.get("id") else [])]
    remote = {**before, "id": hf_id, "usd_per_hour": made.usd_per_hour, "earlier": earlier, "waiting": False}
    remote.update(spent_usd=spent_usd(before), started_at=time.time(), ended_at=None, stage=None, message=None)
    remote["metrics_at"] = _size(Path(job.dir) / "metrics.jsonl")  # a resumed run appends; what was read stays
    _say(job, f"started HF Job {hf_id} on {made.flavor} (${made.usd_per_hour:.2f}/h) as {remote['namespace']}")
    return storage.jobs.set_remote(db, job.id, remote), made


def spent_usd(remote: dict, now: float | None = None) -> float:
    """About what the run's HF Jobs have cost: the earlier ones' and this one's price x time since it started
    (until it ended); the Hub bills the time it ran, so queueing makes this an upper bound."""
    spent = float(remote.get("spent_usd") or 0.0)
    if remote.get("started_at"):
        end = remote.get("ended_at") or (time.time() if now is None else now)
        spent += float(remote.get("usd_per_hour") or 0.0) * max(0.0, end - remote["started_at"]) / 3600
    return spent


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _say(job: storage.Job, line: str) -> None:
    """A line of the studio's own in log.txt (an HF Job's log replaces the rest as it is fetched)."""
    log = Path(job.dir) / "log.txt"
    with open(log, "a") as f:
        f.write(f"[{time.strftime('%H:%M:%S')}] studio: {line}\n")


def sync_outputs(db, job: storage.Job) -> storage.Job:
    """Read what the job wrote to its folder on the bucket into its row: new metrics.jsonl lines as progress,
    complete checkpoints, preview videos. Only while the row is running (storage's rule for outputs)."""
    folder = Path(job.dir)
    remote = dict(job.remote or {})
    total = job.config.get("steps")
    at, new = _new_lines(folder / "metrics.jsonl", int(remote.get("metrics_at", 0)))
    for record in new:
        terms = {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
        finite = {k: v for k, v in terms.items() if v == v and abs(v) != float("inf")}
        storage.outputs.record_progress(db, job.id, int(record["step"]), total, finite)
    if new or at != remote.get("metrics_at"):
        job = storage.jobs.set_remote(db, job.id, {**remote, "metrics_at": at})
    known = {c.step for c in storage.outputs.list_checkpoints(db, job.id)}
    for done in sorted((folder / "checkpoints").glob("step-*/COMPLETE")):
        step = int(done.parent.name.split("-")[1])
        if step not in known:
            storage.outputs.add_checkpoint(db, job.id, step, done.parent)
    shown = {a.path.name for a in storage.outputs.list_artifacts(db, job.id, "video")}
    prompts = _preview_prompts(folder / "samples" / PREVIEWS_FILE)
    for path in sorted((folder / "samples").glob("step*.mp4"), key=lambda p: p.stat().st_mtime):
        match = _PREVIEW.match(path.name)
        if match and path.name not in shown:
            step, prompt, seed = (int(g) for g in match.groups())
            caption = prompts[prompt] if prompt < len(prompts) else f"prompt {prompt}"
            storage.outputs.add_artifact(db, job.id, "video", path, f"step {step}: {caption} (seed {seed})")
    return storage.jobs.get_job(db, job.id)


def _new_lines(path: Path, at: int) -> tuple[int, list[dict]]:
    """The complete JSON lines of `path` after byte `at`, and where the next read starts."""
    try:
        with open(path, "rb") as f:
            f.seek(at)
            data = f.read()
    except OSError:
        return at, []
    end = data.rfind(b"\n") + 1  # a line still being written is read next time
    records = []
    for line in data[:end].splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return at + end, records


def _preview_prompts(path: Path) -> list[str]:
    try:
        return list(json.loads(path.read_text()).get("prompts", []))
    except (OSError, ValueError, AttributeError):
        return []


def _fetch_log(api, job: storage.Job, token: str) -> None:
    """The HF Job's newest log lines into log.txt under a line with its GPU use now, written whole (temp file, then
    rename)."""
    remote = job.remote
    lines = hf_jobs.logs(api, remote["id"], remote["namespace"], token, tail=LOG_LINES)
    used = hf_jobs.usage(api, remote["id"], remote["namespace"], token)
    head = f"--- HF Job {remote['id']} ({remote['flavor']}, {remote['namespace']})" + (f": {used}" if used else "")
    log = Path(job.dir) / "log.txt"
    tmp = log.with_name(f".log.txt.{os.getpid()}.tmp")
    tmp.write_text(head + "\n" + "\n".join(lines) + "\n")
    os.replace(tmp, log)


def refresh(db, api, job: storage.Job, environ=None) -> storage.Job:
    """One look at an HF Job row: outputs from the bucket, then the Hub's state, log and cancel. Returns the row."""
    environ = os.environ if environ is None else environ
    remote = job.remote or {}
    if not remote.get("id"):
        return job  # being started right now by `start`
    token = token_for(remote["namespace"], environ)
    if job.state == QUEUED:  # resumed in the Jobs tab: a new HF Job continues from the newest checkpoint
        if token is None:  # started once its owner signs in again; said once in its log
            if not remote.get("waiting"):
                _say(job, f"resumed; it starts on HF Jobs once {remote['namespace']} opens the studio signed in")
                job = storage.jobs.set_remote(db, job.id, {**remote, "waiting": True})
            return job
        checkpoint = storage.outputs.latest_checkpoint(db, job.id)
        step = checkpoint.step if checkpoint else 0
        storage.outputs.forget_metrics_after(db, job.id, step)  # the new job repeats the steps after it
        return _submit(db, api, job, storage_config(job), bucket_root(environ), token, environ, True, step)[0]
    job = sync_outputs(db, job)
    student = Path(job.dir) / "lora" / LORA_FILE
    state, message = None, None
    if token is not None:
        try:
            stage, message = hf_jobs.hub_status(api, remote["id"], remote["namespace"], token)
            state = hf_jobs.STAGE_STATES.get(stage, "running")
            if (stage, message) != (remote.get("stage"), remote.get("message")):  # for the Jobs tab
                job = storage.jobs.set_remote(db, job.id, {**job.remote, "stage": stage, "message": message})
            _fetch_log(api, job, token)
        except Exception as error:  # the Hub unreachable or refusing this token: the bucket still tells
            state, message = None, f"{type(error).__name__}: {error}"
    if job.cancel_requested and state in (None, "queued", "running") and token is not None:
        hf_jobs.cancel(api, remote["id"], remote["namespace"], token)
        return _settle(db, job, CANCELLED, None, "cancelled through HF Jobs")
    if state == "succeeded" or (state is None and student.is_file() and (Path(job.dir) / "summary.json").is_file()):
        if not student.is_file():
            return _settle(db, job, FAILED, "the HF Job ended without writing a student; see its log", "ended")
        storage.outputs.add_artifact(db, job.id, "lora", student, f"{job.config.get('method', '?')} student")
        return _settle(db, job, SUCCEEDED, None, "the HF Job finished")
    if state in ("failed", "cancelled"):
        checkpoint = storage.outputs.latest_checkpoint(db, job.id)
        hint = f"resume to continue from step {checkpoint.step if checkpoint else 0}"
        error = f"the HF Job {'was cancelled on the Hub' if state == 'cancelled' else 'failed'}"
        return _settle(db, job, state, f"{error}: {message or 'see its log'}; {hint}", f"HF Job {state}")
    overdue = (job.started_at or time.time()) + remote.get("timeout", 0) + OVERDUE_S
    if state is None and time.time() > overdue:
        why = "its time limit passed without a student in the bucket"
        return _settle(db, job, INTERRUPTED, f"HF Job {remote['id']}: {why} ({message or 'no token to ask'})", why)
    storage.outputs.record_heartbeat(db, job.id)
    return job


def storage_config(job: storage.Job):
    from ..config.build import build_distill_config  # the config dataclass: only to resume a stored run

    return build_distill_config(values=dict(job.config), check=False)


def _settle(db, job, state, error, reason):
    if job.remote and job.remote.get("started_at") and not job.remote.get("ended_at"):  # the cost stops growing
        job = storage.jobs.set_remote(db, job.id, {**job.remote, "ended_at": time.time()})
    try:
        return storage.jobs.transition(db, job.id, state, reason=reason, error=error)
    except storage.IllegalTransition:  # settled meanwhile (another refresh)
        return storage.jobs.get_job(db, job.id)


def refresh_all(data_dir, api, environ=None) -> list[storage.Job]:
    """Refresh every running or resumed HF Job row of the data dir; one failing row does not stop the others."""
    db = storage.open_database(data_dir)
    done = []
    for job in storage.jobs.remote_jobs(db, HF_JOBS, (QUEUED, RUNNING)):
        try:
            done.append(refresh(db, api, job, environ))
        except Exception as error:  # noted in its log; the next round tries again
            _say(job, f"could not refresh: {type(error).__name__}: {error}".splitlines()[0][:300])
    return done


class Tracker(threading.Thread):
    """The app's thread that follows the data dir's HF Jobs; started at once, so a restart re-attaches."""

    def __init__(self, data_dir, api=None, every_s: float = REFRESH_EVERY_S):
        super().__init__(name="hf-jobs-tracker", daemon=True)
        self.data_dir, self.api, self.every_s = data_dir, api, every_s
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.api is None and storage.jobs.remote_jobs(
                    storage.open_database(self.data_dir), HF_JOBS, (QUEUED, RUNNING)
                ):
                    from huggingface_hub import HfApi  # the Hub client: only once there is an HF Job to follow

                    self.api = HfApi()
                if self.api is not None:
                    refresh_all(self.data_dir, self.api)
            except Exception as error:  # a locked database: the next round tries again
                print(f"[hf-jobs tracker] {type(error).__name__}: {error}", flush=True)
            self.stopping.wait(self.every_s)


def follow(data_dir, api=None, every_s: float = REFRESH_EVERY_S) -> Tracker:
    """Start the tracker thread for `data_dir` (app.py does at start)."""
    tracker = Tracker(data_dir, api, every_s)
    tracker.start()
    return tracker
