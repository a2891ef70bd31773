"""The job system end to end with real parts, through its command line: a real SQLite file, real worker and
job processes (`python -m engine.cli.jobs`): submit, run and show a job; errors and invalid settings queue
nothing; rows from older databases load. Stopping and resuming jobs is tests/test_jobs_stopping.py, jobs that
fail tests/test_jobs_failures.py. The job kinds are the fixtures in tests/jobkinds_for_tests.py (a seeded
counter with checkpoints, a sleeper), never the shipped ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine.jobs as api
from jobs_helpers import (  # noqa: F401 (data_dir: fixture)
    REPO,
    data_dir,
    jobs_cli,
    run_worker_until_idle,
)


def test_cli_submits_runs_and_shows_a_job_end_to_end(data_dir):
    submitted = jobs_cli(
        data_dir,
        "submit",
        "--kind",
        "counter",
        "--steps",
        "6",
        "--checkpoint-every",
        "3",
        "--step-seconds",
        "0.01",
        "--json",
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]

    worker = run_worker_until_idle(data_dir)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    shown = jobs_cli(data_dir, "show", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    job = json.loads(shown.stdout)
    assert (job["id"], job["kind"], job["state"], job["step"], job["total"], job["error"]) == (
        job_id,
        "counter",
        "succeeded",
        6,
        6,
        None,
    )
    assert isinstance(job["pid"], int) and job["config"]["steps"] == 6
    assert job["checkpoint_steps"] == [3, 6]
    assert [(a["kind"], Path(a["path"]).name) for a in job["artifacts"]] == [("lora", "weights.npy")]
    log = (data_dir / "jobs" / job_id / "log.txt").read_text()
    assert "step 6/6" in log and f"job {job_id} succeeded" in log
    assert [j["id"] for j in json.loads(jobs_cli(data_dir, "list", "--json").stdout)] == [job_id]


def test_cli_errors_are_one_line_with_exit_code_2_and_queue_nothing(data_dir):
    for args in (
        ("show", "j-20250101-000000"),
        ("submit", "--kind", "counter", "--steps", "0"),
        ("resume", "j-20250101-000000"),
        ("submit", "--kind", "distill", "--base", "no-such-user/no-such-model"),
    ):
        result = jobs_cli(data_dir, *args)
        assert result.returncode == 2, args
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr
    assert "steps must be at least 1" in jobs_cli(data_dir, "submit", "--kind", "counter", "--steps", "0").stderr
    assert "could not fetch 'no-such-user/no-such-model'" in result.stderr  # the last: the base is checked at submit
    assert api.list_jobs(data_dir) == []


def test_validation_error_at_submit_writes_no_row_and_no_folder(data_dir):
    with pytest.raises(ValueError, match="steps must be at least 1, got 0"):
        api.submit(data_dir, "counter", {"steps": 0})
    with pytest.raises(ValueError, match="unknown setting.* learning_rate .* the settings are: steps"):
        api.submit(data_dir, "counter", {"learning_rate": 1e-4})
    with pytest.raises(ValueError, match="unknown job kind 'teleport'; the known kinds are: .*counter.*distill"):
        api.submit(data_dir, "teleport", {})
    with pytest.raises(ValueError, match="DFD is a post-training stage"):
        api.submit(data_dir, "distill", {"method": "dfd"})
    assert not (data_dir / "studio.db").exists()  # not even the database was created
    job = api.submit(data_dir, "counter", {"steps": 3})
    with pytest.raises(ValueError, match="steps must be at least 1"):
        api.submit(data_dir, "counter", {"steps": -1})
    assert [j.id for j in api.list_jobs(data_dir)] == [job.id]
    assert [p.name for p in (data_dir / "jobs").iterdir()] == [job.id]


def test_sample_kind_is_validated_by_sample_config_and_its_options_map_to_it(data_dir):
    from engine.cli.jobs import _JobsParser  # the submit parser, as `jobs submit` builds it

    parser = _JobsParser(kind_options=True)
    parser.add_argument("--kind")
    args = parser.parse_args(
        ["--kind", "sample", "--prompt", "a red circle", "--seeds", "1-3", "--steps", "4", "--cfg", "3.5"]
    )
    settings = api.get_kind("sample").config_from_args(args)
    assert settings == {"prompt": "a red circle", "seeds": [1, 2, 3], "steps": 4, "guidance": 3.5}
    with pytest.raises(ValueError, match="the prompt is empty"):
        api.submit(data_dir, "sample", {**settings, "prompt": " "})
    assert api.list_jobs(data_dir) == []
    job = api.submit(data_dir, "sample", settings)
    assert job.config["seeds"] == [1, 2, 3] and job.config["base"] == "shapes-tiny"  # SampleConfig's default


def test_rows_queued_before_the_grouping_load_as_the_job_process_loads_them(tmp_path):
    import shutil

    from engine.config.distill import DistillConfig
    from engine.config.sample import SampleConfig
    from engine.jobs.kinds import get_kind, load_config

    shutil.copytree(REPO / "tests" / "data" / "jobs_before_grouping", tmp_path / "studio_data")
    loaded = {
        job.kind: load_config(get_kind(job.kind), api.get(tmp_path / "studio_data", job.id).config)
        for job in api.list_jobs(tmp_path / "studio_data")
    }
    assert (type(loaded["distill"]), type(loaded["sample"])) == (DistillConfig, SampleConfig)
    assert (loaded["distill"].method, loaded["distill"].steps, loaded["sample"].steps) == ("dmd2", 10, 4)
