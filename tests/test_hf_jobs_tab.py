"""What the Jobs tab says about an HF Job (studio/job_remote.py), from a real job row's remote handle as
engine.hf_tracker writes it: the HF Job's link, the Hub's stage, flavor, price, time limit, time run and cost."""

from __future__ import annotations

import storage
from storage.states import HF_JOBS, RUNNING
from studio.job_detail import detail
from studio.job_remote import remote_line

REMOTE = {"flavor": "a100-large", "timeout": 6 * 3600, "namespace": "alice", "bucket": "alice/dfd-data"}


def hf_job(tmp_path, **remote):
    db = storage.open_database(tmp_path / "data")
    job = storage.jobs.create_job(db, "distill", {"method": "dmd2", "base": "x/y", "steps": 10}, target=HF_JOBS)
    storage.jobs.transition(db, job.id, RUNNING, reason="starting it on HF Jobs")
    return storage.jobs.set_remote(db, job.id, {**REMOTE, **remote})


def test_a_running_hf_job_shows_its_link_stage_price_limit_time_and_cost(tmp_path):
    started = 1_000_000.0
    job = hf_job(
        tmp_path, id="68a1b2", usd_per_hour=2.5, started_at=started, stage="RUNNING", message=None, spent_usd=1.25
    )
    said = remote_line(job, now=started + 90 * 60)
    assert said.splitlines()[0] == (
        "HF Job [68a1b2](https://huggingface.co/jobs/alice/68a1b2) under alice · Hub: running"
    )
    assert "a100-large at $2.50/h · time limit 6 h 00 min · ran 1 h 30 min · about $5.00 so far" in said
    # 1.25 spent by an earlier HF Job of the run + 2.50/h x 1.5 h


def test_a_finished_hf_job_stops_costing_and_the_hubs_message_is_shown_plain(tmp_path):
    started = 1_000_000.0
    job = hf_job(
        tmp_path,
        id="68a1b2",
        usd_per_hour=3.6,
        started_at=started,
        ended_at=started + 600,
        stage="ERROR",
        message="CUDA *out* of memory",
        earlier=["5f00aa"],
    )
    said = remote_line(job, now=started + 10 * 3600)
    assert "Hub: ended with an error (CUDA \\*out\\* of memory)" in said
    assert "ran 10 min 00 s · about $0.60 so far" in said and "continues HF Job 5f00aa" in said


def test_the_header_of_an_hf_job_has_its_line_and_a_local_job_none(tmp_path):
    job = hf_job(tmp_path, id="68a1b2", usd_per_hour=2.5, started_at=1.0, stage="SCHEDULING")
    header = detail(tmp_path / "data", tmp_path / "public", job.id).header
    assert "HF Job [68a1b2](https://huggingface.co/jobs/alice/68a1b2) under alice · Hub: waiting for a GPU" in header
    db = storage.open_database(tmp_path / "data")
    local = storage.jobs.create_job(db, "distill", {"method": "dmd2", "base": "x/y", "steps": 10})
    assert remote_line(local) is None
    assert "HF Job" not in detail(tmp_path / "data", tmp_path / "public", local.id).header
    storage.close_all()
