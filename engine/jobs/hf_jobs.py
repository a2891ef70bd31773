"""Training on HF Jobs: a stored distillation run as an HF Job, on the Hub's pay-per-use GPUs under the
signed-in user's own account, with the same `python -m engine distill ...` command a local job runs.

The job sees the studio's Storage Bucket at the same mount path (default /data) as the Space does, so the
data, a DFD run's DMD2 student and the output folder are the same paths on both. A base named by its hub id
is mounted read-only as a model volume at BASE_MOUNT (at its diffusers revision: HUB_REVISIONS) and read there,
never downloaded, under its hub id (models.names.HUB_VOLUMES); a base folder must be on the bucket or on a model
volume the Space mounts, which the job mounts at the same path. The image is the Space's own (`hf.co/spaces/OWNER/NAME`:
the code, its requirements and the preloaded weights), or DFD_STUDIO_HF_JOBS_IMAGE.

    plan(...) -> HfJobPlan       refuses with what to do: no token, no bucket, a path no volume holds,
                                 an unknown flavor, a run whose timeout x price is over the owner's cap
    submit(api, plan, token)     HfApi.run_job
    status / logs / cancel       HfApi.inspect_job / fetch_job_logs / cancel_job, states as the job table's
    usage                        HfApi.fetch_job_metrics: the GPU's use and memory, in words

`api` is a huggingface_hub.HfApi (or a stand-in with the same methods): nothing here reaches the network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..config.distill import DistillConfig
from ..config.fields import flag, settings_of
from ..models.names import BUILTIN_MODELS, HUB_REVISIONS, HUB_VOLUMES, RANDOM_MODELS

BUCKET_MOUNT = "/data"  # where the Space mounts its bucket (docs/space.md); the job mounts it there too
BASE_MOUNT = "/base-model"  # where the job mounts a base given by hub id (read-only, at its diffusers revision)
DEFAULT_TIMEOUT_S = 6 * 3600
PATH_FIELDS = ("base", "data", "init", "cache_dir")  # DistillConfig fields that may name a folder
BUILT_IN_VALUES = {"data": ("shapes", "synthetic")}
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600}
TIME_LIMIT_S = 7 * 24 * 3600  # a week: a run longer than that is a mistyped timeout
STAGE_STATES = {
    "SCHEDULING": "queued",
    "RUNNING": "running",
    "COMPLETED": "succeeded",
    "ERROR": "failed",
    "CANCELED": "cancelled",
    "DELETED": "cancelled",
}


@dataclass(frozen=True)
class Mount:
    """A volume the job mounts: huggingface_hub.Volume's fields (type bucket/model/dataset/space)."""

    type: str
    source: str
    mount_path: str
    read_only: bool | None = None
    revision: str | None = None
    path: str | None = None  # a folder inside the repo or bucket

    def volume(self):
        from huggingface_hub import Volume  # the Hub client: engine/jobs stays light to import

        optional = {k: v for k, v in (("revision", self.revision), ("path", self.path)) if v is not None}
        return Volume(
            type=self.type, source=self.source, mount_path=self.mount_path, read_only=self.read_only, **optional
        )


@dataclass(frozen=True)
class HfJobPlan:
    """Everything HfApi.run_job is called with, and the price that was shown for it."""

    image: str
    command: list[str]
    flavor: str
    timeout: int
    namespace: str
    mounts: tuple[Mount, ...]
    env: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    usd_per_hour: float = 0.0

    @property
    def most_usd(self) -> float:
        """What the run costs if it uses its whole timeout."""
        return self.usd_per_hour * self.timeout / 3600

    def run_job_kwargs(self, token: str) -> dict:
        return {
            "image": self.image,
            "command": list(self.command),
            "env": dict(self.env),
            "secrets": {},
            "flavor": self.flavor,
            "timeout": self.timeout,
            "labels": dict(self.labels),
            "volumes": [m.volume() for m in self.mounts],
            "namespace": self.namespace,
            "token": token,
        }


def distill_command(config: DistillConfig, out: str) -> list[str]:
    """`python -m engine distill` with every setting of `config` as an option: parsed back by the engine's
    own parser it gives the same config (tests/test_hf_jobs.py)."""
    command = ["python", "-m", "engine", "distill"]
    for s in settings_of(DistillConfig):
        value = getattr(config, s.name)
        if s.name == "out" or value is None:
            continue
        if s.kind == "bool":
            command.append(flag(s.name) if value else "--no-" + flag(s.name)[2:])
        elif isinstance(value, (list, tuple)):
            command += [flag(s.name), ",".join(repr(v) if isinstance(v, float) else str(v) for v in value)]
        else:
            command += [flag(s.name), repr(value) if isinstance(value, float) else str(value)]
    return command + ["--out", out]


def _on_a_mount(path: str, mounts: tuple[Mount, ...], writable: bool = False) -> bool:
    p = PurePosixPath(path)
    return any(p.is_relative_to(m.mount_path) and not (writable and m.read_only) for m in mounts)


def check_paths(config: DistillConfig, out: str, mounts: tuple[Mount, ...]) -> None:
    """Raise ValueError naming the first folder of the run the job could not see (a hub id is fetched there)."""
    for name in PATH_FIELDS:
        value = getattr(config, name)
        if not value or value in BUILT_IN_VALUES.get(name, ()) or value.startswith("shapes-"):
            continue
        if name == "base" and (is_hub_id(value) or value in RANDOM_MODELS or value in BUILTIN_MODELS):
            continue  # a hub id is mounted at BASE_MOUNT; a built-in or random base needs no files
        if name == "base" and not _on_a_mount(value, mounts):
            raise ValueError(
                f"base {value} is a folder on this machine only; an HF Job reads a base by its hub id (mounted "
                f"read-only, never downloaded) or from a folder on the bucket at {BUCKET_MOUNT} or on a model "
                "volume the Space mounts: give its hub id, or put it on the bucket or a mounted volume"
            )
        if not _on_a_mount(value, mounts):
            raise ValueError(
                f"{name} {value} is on this machine only; an HF Job sees the bucket at "
                f"{BUCKET_MOUNT} and mounted volumes: put it in the bucket, or mount it as a volume"
            )
    if not _on_a_mount(out, mounts, writable=True):
        raise ValueError(
            f"the output folder {out} is not on the bucket mounted at {BUCKET_MOUNT}; the student "
            "would be lost when the job ends"
        )


def is_hub_id(base: str) -> bool:
    """Whether `base` names a Hub model repo (owner/name) rather than a folder or a built-in name."""
    base = (base or "").strip()
    return base.count("/") == 1 and not base.startswith(("/", ".", "~")) and all(base.split("/"))


def base_mount(base: str, mounts: tuple[Mount, ...]) -> Mount | None:
    """The read-only model volume a base given by hub id is read from: one of `mounts` that already holds the
    repo at the revision the engine reads (a Space's own model volume), else a new one at BASE_MOUNT; None for
    a folder or a built-in base. The revision is the repo's diffusers one (Cosmos-Predict2.5's branch)."""
    if not is_hub_id(base):
        return None
    base = base.strip()
    revision = HUB_REVISIONS.get(base)
    for m in mounts:
        if m.type == "model" and m.source == base and (m.revision or "main") == (revision or "main") and not m.path:
            return m
    taken = next((m for m in mounts if m.mount_path == BASE_MOUNT), None)
    if taken is not None:
        raise ValueError(
            f"the Space mounts {taken.source} at {BASE_MOUNT}, where an HF Job mounts the base {base}: "
            "mount that volume elsewhere, or give the base as a folder on a mounted volume"
        )
    return Mount("model", base, BASE_MOUNT, True, revision)


def price_per_hour(hardware, flavor: str) -> float:
    """The flavor's USD per hour from list_jobs_hardware's answer; ValueError naming the GPU flavors when unknown."""
    for info in hardware:
        if info.name == flavor:
            return info.unit_cost_usd * 3600 / UNIT_SECONDS.get(info.unit_label, 1)
    gpus = ", ".join(
        f"{h.name} (${h.unit_cost_usd * 3600 / UNIT_SECONDS.get(h.unit_label, 1):.2f}/h)"
        for h in hardware
        if getattr(h, "accelerator", None)
    )
    raise ValueError(f"HF Jobs has no flavor {flavor!r}; GPU flavors: {gpus or 'none listed'}")


def cost_cap(environ=None) -> float | None:
    """DFD_STUDIO_HF_JOBS_MAX_USD: the most one run may cost at its full timeout (the owner's cap; None: no cap)."""
    environ = os.environ if environ is None else environ
    raw = environ.get("DFD_STUDIO_HF_JOBS_MAX_USD", "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"DFD_STUDIO_HF_JOBS_MAX_USD must be a number of dollars, not {raw!r}") from None


def space_volumes(api, space_id: str | None, token: str | None) -> tuple[Mount, ...]:
    """The Space's read-only repo volumes (a model as a base, a dataset of clips), to mount at the same paths in
    the job; its bucket is mounted by `plan`. None without a Space; a Hub that does not answer: none (a run
    naming such a folder is then refused by check_paths with what to do)."""
    if not space_id:
        return ()
    try:
        volumes = api.get_space_runtime(space_id, token=token).volumes or []
    except Exception:  # the runtime unreadable with this token: the run may not need a mounted repo
        return ()
    return tuple(
        Mount(v.type, v.source, v.mount_path, True, getattr(v, "revision", None), getattr(v, "path", None))
        for v in volumes
        if v.type != "bucket"
    )


def job_image(environ=None) -> str:
    environ = os.environ if environ is None else environ
    if environ.get("DFD_STUDIO_HF_JOBS_IMAGE"):
        return environ["DFD_STUDIO_HF_JOBS_IMAGE"]
    if environ.get("SPACE_ID"):
        return f"hf.co/spaces/{environ['SPACE_ID']}"
    raise ValueError(
        "an HF Job runs in the Space's image: run the studio on a Space, or set "
        "DFD_STUDIO_HF_JOBS_IMAGE to an image holding this repository and its requirements"
    )


def plan(
    config: DistillConfig,
    out: str,
    *,
    flavor: str,
    hardware,
    namespace: str | None,
    bucket: str | None,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    volumes: tuple[Mount, ...] = (),
    job_id: str | None = None,
    environ=None,
    options: tuple[str, ...] = (),
) -> HfJobPlan:
    """The HF Job for one distillation, or ValueError saying what to do. `hardware`: list_jobs_hardware's
    answer; `namespace`: the signed-in user (None: nobody is); `bucket`: the Storage Bucket's id; `options`:
    more of `engine distill`'s own options (--lora-dir, --resume)."""
    environ = os.environ if environ is None else environ
    if not namespace:
        raise ValueError(
            "HF Jobs run under your own Hugging Face account: sign in with Hugging Face (on the "
            "Space) or log in with `hf auth login` / HF_TOKEN (command line)"
        )
    if not bucket:
        raise ValueError(
            "HF Jobs write the student to a Storage Bucket: attach one at /data (docs/space.md) "
            "and set DFD_STUDIO_BUCKET to its id (owner/name)"
        )
    if not 60 <= int(timeout_s) <= TIME_LIMIT_S:
        raise ValueError(f"the timeout must be between 60 s and {TIME_LIMIT_S // 3600} h, not {timeout_s} s")
    mounts = (Mount("bucket", bucket, BUCKET_MOUNT), *volumes)
    check_paths(config, out, mounts)
    env = {"PYTHONUNBUFFERED": "1"}
    base = base_mount(config.base, mounts)
    if base is not None:  # the engine reads the hub id's files from the volume and keeps the id as the name
        mounts += () if base in mounts else (base,)
        env[HUB_VOLUMES] = json.dumps({config.base.strip(): base.mount_path})
    per_hour = price_per_hour(hardware, flavor)
    made = HfJobPlan(
        image=job_image(environ),
        command=distill_command(config, out) + list(options),
        flavor=flavor,
        timeout=int(timeout_s),
        namespace=namespace,
        mounts=mounts,
        env=env,
        labels={"app": "dfd-studio", **({"job": job_id} if job_id else {})},
        usd_per_hour=per_hour,
    )
    cap = cost_cap(environ)
    if cap is not None and made.most_usd > cap:
        raise ValueError(
            f"{flavor} costs ${per_hour:.2f}/h: {timeout_s / 3600:g} h could cost ${made.most_usd:.2f}, "
            f"over this studio's cap of ${cap:.2f} (DFD_STUDIO_HF_JOBS_MAX_USD); choose a shorter "
            "timeout or a cheaper flavor"
        )
    return made


def submit(api, made: HfJobPlan, token: str) -> str:
    """Start the job; its id (inspect, logs and cancel take it with the plan's namespace)."""
    return api.run_job(**made.run_job_kwargs(token)).id


def hub_status(api, job_id: str, namespace: str, token: str) -> tuple[str, str | None]:
    """(the Hub's stage, e.g. SCHEDULING or RUNNING, its message) of an HF Job, from inspect_job."""
    info = api.inspect_job(job_id=job_id, namespace=namespace, token=token)
    return str(getattr(info.status.stage, "value", info.status.stage)), info.status.message


def status(api, job_id: str, namespace: str, token: str) -> tuple[str, str | None]:
    """(the job table's state, the Hub's message) of an HF Job."""
    stage, message = hub_status(api, job_id, namespace, token)
    return STAGE_STATES.get(stage, "running"), message


def job_url(namespace: str, job_id: str) -> str:
    """The job's page on huggingface.co (its logs, metrics and Cancel, for its owner)."""
    return f"https://huggingface.co/jobs/{namespace}/{job_id}"


def logs(api, job_id: str, namespace: str, token: str, tail: int | None = None) -> list[str]:
    return list(api.fetch_job_logs(job_id=job_id, namespace=namespace, tail=tail, token=token))


def usage(api, job_id: str, namespace: str, token: str) -> str | None:
    """The job's current GPU use from fetch_job_metrics, in words ("GPU 87%, 30.1 of 48.0 GB"); None when the Hub
    has no sample yet (a queued or finished job)."""
    for sample in api.fetch_job_metrics(job_id=job_id, namespace=namespace, follow=False, token=token):
        gpus = list((sample.get("gpus") or {}).values())
        if not gpus:
            return f"CPU {sample.get('cpu_usage_pct', 0):.0f}%, no GPU sample"
        return "; ".join(
            f"GPU {g.get('utilization', 0):.0f}%, {g.get('memory_used_bytes', 0) / 1e9:.1f} of "
            f"{g.get('memory_total_bytes', 0) / 1e9:.1f} GB"
            for g in gpus
        )
    return None


def cancel(api, job_id: str, namespace: str, token: str) -> None:
    api.cancel_job(job_id=job_id, namespace=namespace, token=token)
