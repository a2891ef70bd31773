"""The Distill tab's second run target: training on HF Jobs under the signed-in visitor's own account (the
studio's own worker being the first). What the tab shows and checks before engine.hf_tracker starts the job
(studio/distill_target.py lays it out): the GPU flavors with their price per hour, and the refusals that say
what to do (nobody signed in, a token without the `jobs` scope, no Storage Bucket set)."""

from __future__ import annotations

import os

import engine

from .auth import JOBS_SCOPE, missing_scope


def flavor_choices(hardware) -> list[tuple[str, str]]:
    """(label, flavor) for each GPU flavor of list_jobs_hardware's answer, cheapest first, its price per hour shown."""
    gpus = [h for h in hardware if getattr(h, "accelerator", None)]
    priced = sorted((engine.hf_jobs.price_per_hour(hardware, h.name), h) for h in gpus)
    return [(f"{h.name}: {h.pretty_name}, ${per_hour:.2f}/h", h.name) for per_hour, h in priced]


def check_ready(username: str | None, scope: str | None, environ=None) -> str:
    """The bucket to mount, or ValueError with the one thing to do first."""
    environ = os.environ if environ is None else environ
    if not username:
        raise ValueError("HF Jobs run under your own Hugging Face account, at your cost: sign in with Hugging Face")
    lacking = missing_scope(scope, JOBS_SCOPE)
    if lacking:
        raise ValueError(lacking)
    bucket = environ.get("DFD_STUDIO_BUCKET", "").strip()
    if not bucket:
        raise ValueError(
            "HF Jobs write the student to the Space's Storage Bucket: the owner must attach one at "
            "/data and set DFD_STUDIO_BUCKET to its id (docs/space.md)"
        )
    return bucket
