"""`python -m engine jobs submit --on hf-jobs --flavor F`: the distillation the options describe, started as an
HF Job under the logged-in user's token and namespace (engine/jobs/hf_jobs.py builds the call). When the data
dir is on the Storage Bucket (under DFD_STUDIO_PERSISTENT_DIR, as on a Space) and no --out is given, the run is
stored as a job row the studio's tracker follows (engine/jobs/hf_tracker.py); else it writes to --out only."""

from __future__ import annotations

import os
import re
import time

import storage

from ..jobs import hf_jobs, hf_tracker

TARGETS = ("local", "hf-jobs")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_arguments(submit) -> None:
    where = submit.add_argument_group("where it runs")
    where.add_argument(
        "--on",
        choices=TARGETS,
        default="local",
        help="local: the queue's worker (default); hf-jobs: an HF Job on your own account",
    )
    where.add_argument("--flavor", help="--on hf-jobs: the hardware, one of `hf jobs hardware` (e.g. l40sx1)")
    where.add_argument("--timeout", default="6h", help="--on hf-jobs: the job's time limit, e.g. 90m or 6h")
    where.add_argument(
        "--bucket",
        default=os.environ.get("DFD_STUDIO_BUCKET"),
        help="--on hf-jobs: the Storage Bucket (owner/name) at /data (default DFD_STUDIO_BUCKET)",
    )
    where.add_argument("--out", help="--on hf-jobs: the output folder on the bucket (default /data/hf_jobs/TIME)")


def check_local(args) -> None:
    given = [
        f"--{name}"
        for name in ("flavor", "bucket", "out")
        if getattr(args, name, None) and not (name == "bucket" and args.bucket == os.environ.get("DFD_STUDIO_BUCKET"))
    ]
    if given:
        raise ValueError(f"{', '.join(given)} only apply with --on hf-jobs; a local job runs in the data dir's queue")


def seconds(text: str) -> int:
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"--timeout {text!r} is not a duration; give seconds or e.g. 90m, 6h")
    return int(float(match[1]) * _UNIT_S[match[2]])


def submit(args, config, api=None, token: str | None = None) -> int:
    """Start the HF Job and say where to follow it; ValueError (one line) when it is refused."""
    if args.kind != "distill":
        raise ValueError(f"--on hf-jobs runs distillations; {args.kind} jobs run on the local worker")
    if not args.flavor:
        raise ValueError("--on hf-jobs needs --flavor (e.g. l40sx1, a100-large, h200; `hf jobs hardware` lists them)")
    if api is None:
        from huggingface_hub import HfApi, get_token  # the Hub client: only when a job is started

        api, token = HfApi(), token or get_token()
    namespace = api.whoami(token=token)["name"] if token else None
    data_dir, root = storage.resolve_data_dir(args.data_dir), hf_tracker.bucket_root()
    if not args.out and root.is_dir() and data_dir.is_relative_to(root):
        job, made = hf_tracker.start(
            data_dir,
            api,
            config,
            flavor=args.flavor,
            timeout_s=seconds(args.timeout),
            namespace=namespace,
            token=token,
            bucket=args.bucket,
        )
        print(
            f"started HF Job {job.remote['id']} on {made.flavor} (${made.usd_per_hour:.2f}/h, at most "
            f"${made.most_usd:.2f} in {made.timeout / 3600:g} h) as {namespace}: job {job.id} of {data_dir}, "
            "followed by the studio serving that data folder"
        )
        return 0
    out = args.out or f"{hf_jobs.BUCKET_MOUNT}/hf_jobs/{time.strftime('%Y%m%d-%H%M%S')}"
    hardware = api.list_jobs_hardware(token=token) if namespace else []
    made = hf_jobs.plan(
        config,
        out,
        flavor=args.flavor,
        hardware=hardware,
        namespace=namespace,
        bucket=args.bucket,
        timeout_s=seconds(args.timeout),
    )
    job_id = hf_jobs.submit(api, made, token)
    print(
        f"started HF Job {job_id} on {made.flavor} (${made.usd_per_hour:.2f}/h, at most ${made.most_usd:.2f} in "
        f"{made.timeout / 3600:g} h) as {namespace}; its student goes to {out} on {args.bucket}"
    )
    return 0
