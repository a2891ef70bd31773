"""Training on HF Jobs (engine/jobs/hf_jobs.py) against a stand-in at the huggingface_hub boundary: each call
is bound to huggingface_hub 2.4's own HfApi signature, answered with its own JobInfo and JobHardwareInfo,
and run_job runs the job's exact command in a local subprocess with the volumes as local folders."""

from __future__ import annotations

import argparse
import inspect
import time
from dataclasses import replace

import huggingface_hub
import pytest

from engine.cli.distill import add_parsers, distill_config_from_args
from engine.config.build import build_distill_config
from engine.jobs import hf_jobs
from engine.jobs.hf_jobs import Mount
from hf_jobs_stand_in import HARDWARE, LocalHfJobs


def config(**values):
    settings = {"steps": 2, "student_update_freq": 2, "batch_size": 2, "lora_rank": 4, "shapes_pool_clips": 16}
    return build_distill_config(config_file=None, values={**settings, **values})


def hardware():
    return [huggingface_hub.JobHardwareInfo(**h) for h in HARDWARE]


ENV = {"SPACE_ID": "alice/dfd-studio"}


def make_plan(cfg=None, out="/data/studio_data/hf/run1", **kwargs):
    options = {
        "flavor": "l40sx1",
        "hardware": hardware(),
        "namespace": "alice",
        "bucket": "alice/dfd-data",
        "timeout_s": 3600,
        "environ": ENV,
    }
    return hf_jobs.plan(cfg or config(), out, **{**options, **kwargs})


def test_the_command_is_the_engines_own_distill_and_parses_back_to_the_same_run():
    cfg = config(data_forcing_prob=0.3, lr_student=1e-5, method="dmd2")
    command = hf_jobs.distill_command(cfg, "/data/out")
    assert command[:4] == ["python", "-m", "engine", "distill"] and command[-2:] == ["--out", "/data/out"]
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers())
    back = distill_config_from_args(parser.parse_args(command[3:]))
    assert back.to_dict() == {**cfg.to_dict(), "out": "/data/out"}


def test_the_run_job_call_matches_huggingface_hubs_signature():
    made = make_plan(job_id="7")
    kwargs = made.run_job_kwargs("hf_token")
    bound = inspect.signature(huggingface_hub.HfApi.run_job).bind(None, **kwargs).arguments
    assert bound["image"] == "hf.co/spaces/alice/dfd-studio" and bound["flavor"] == "l40sx1"
    assert bound["timeout"] == 3600 and bound["namespace"] == "alice" and bound["token"] == "hf_token"
    assert bound["secrets"] == {}  # the user's token authenticates the call; the job itself needs none
    (bucket,) = bound["volumes"]
    assert bucket.to_dict() == {"type": "bucket", "source": "alice/dfd-data", "mountPath": "/data"}
    assert made.usd_per_hour == pytest.approx(1.8) and made.most_usd == pytest.approx(1.8)  # $0.03/min, 1 h
    for name in ("inspect_job", "fetch_job_logs", "cancel_job"):
        params = inspect.signature(getattr(huggingface_hub.HfApi, name)).parameters
        assert {"job_id", "namespace", "token"} <= set(params)
        assert params["job_id"].kind is inspect.Parameter.KEYWORD_ONLY


def test_a_model_volume_base_and_bucket_paths_are_accepted_and_local_paths_refused(tmp_path):
    wan = Mount("model", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "/models/wan", read_only=True)
    on_bucket = replace(
        config(),
        data="/data/studio_data/uploads/clips",
        cache_dir="/data/studio_data/cache",
        base="/models/wan",
        init="/data/studio_data/jobs/1/out",
    )  # as stored: no files read here
    made = make_plan(on_bucket, volumes=(wan,))
    assert [v.to_dict()["type"] for v in made.run_job_kwargs("t")["volumes"]] == ["bucket", "model"]
    with pytest.raises(ValueError, match=r"data /home/me/clips is on this machine only.*bucket"):
        make_plan(replace(config(), data="/home/me/clips"))
    with pytest.raises(ValueError, match="base ./wan is a folder on this machine only.*give its hub id"):
        make_plan(replace(config(), base="./wan"))
    with pytest.raises(ValueError, match="output folder /models/wan/out is not on the bucket"):
        make_plan(out="/models/wan/out", volumes=(wan,))  # a read-only volume cannot hold the student


@pytest.mark.parametrize(
    "change, says",
    [
        ({"namespace": None}, "sign in with Hugging Face"),
        ({"bucket": None}, "attach one at /data"),
        ({"flavor": "a100-huge"}, r"no flavor 'a100-huge'; GPU flavors: l40sx1 \(\$1.80/h\), h200 \(\$5.00/h\)"),
        ({"timeout_s": 10}, "between 60 s"),
        ({"environ": {}}, "DFD_STUDIO_HF_JOBS_IMAGE"),
        (
            {"environ": {**ENV, "DFD_STUDIO_HF_JOBS_MAX_USD": "1"}},
            r"could cost \$1.80, over this studio's cap of \$1.00",
        ),
        ({"environ": {**ENV, "DFD_STUDIO_HF_JOBS_MAX_USD": "lots"}}, "must be a number of dollars"),
    ],
)
def test_refusals_say_what_to_do(change, says):
    with pytest.raises(ValueError, match=says):
        make_plan(**change)


def test_under_the_cap_and_with_an_image_set_it_plans():
    made = make_plan(environ={"DFD_STUDIO_HF_JOBS_IMAGE": "me/dfd:1", "DFD_STUDIO_HF_JOBS_MAX_USD": "2"})
    assert made.image == "me/dfd:1"


def wait_for(api, job_id, states, seconds=240):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state, _ = hf_jobs.status(api, job_id, "alice", "t")
        if state in states:
            return state
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {state} after {seconds} s")


def test_a_job_runs_its_exact_command_with_the_bucket_as_a_local_folder(tmp_path):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    api = LocalHfJobs({"/data": bucket})
    made = make_plan(hardware=api.list_jobs_hardware(token="t"))
    job_id = hf_jobs.submit(api, made, "t")
    ended = wait_for(api, job_id, {"succeeded", "failed"})
    assert ended == "succeeded", "\n".join(hf_jobs.logs(api, job_id, "alice", "t"))
    assert (bucket / "studio_data" / "hf" / "run1" / "pytorch_lora_weights.safetensors").is_file()
    assert hf_jobs.logs(api, job_id, "alice", "t", tail=1)[-1].endswith("pytorch_lora_weights.safetensors")
    names = [name for name, _ in api.calls]
    assert names[:2] == ["list_jobs_hardware", "run_job"] and set(names[2:-1]) == {"inspect_job"}


def test_a_cancelled_job_stops_and_reads_cancelled(tmp_path):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    api = LocalHfJobs({"/data": bucket})
    job_id = hf_jobs.submit(api, make_plan(config(steps=100000)), "t")
    assert wait_for(api, job_id, {"running"}) == "running"
    hf_jobs.cancel(api, job_id, "alice", "t")
    assert hf_jobs.status(api, job_id, "alice", "t")[0] == "cancelled"


def test_the_command_line_starts_it_on_hf_jobs_with_the_logged_in_users_token(tmp_path, monkeypatch, capsys):
    from engine.cli.jobs import main

    bucket = tmp_path / "bucket"
    bucket.mkdir()
    api = LocalHfJobs({"/data": bucket})
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: api)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_user")
    monkeypatch.setenv("SPACE_ID", "alice/dfd-studio")
    common = [
        "jobs",
        "--data-dir",
        str(tmp_path / "d"),
        "submit",
        "--steps",
        "2",
        "--student-update-freq",
        "2",
        "--batch-size",
        "2",
        "--lora-rank",
        "4",
        "--shapes-pool-clips",
        "16",
    ]
    assert main([*common, "--on", "hf-jobs"]) == 2
    assert "needs --flavor" in capsys.readouterr().err
    assert main([*common, "--on", "hf-jobs", "--flavor", "a100-huge", "--bucket", "alice/b"]) == 2
    assert "GPU flavors: l40sx1 ($1.80/h), h200 ($5.00/h)" in capsys.readouterr().err
    assert main([*common, "--flavor", "l40sx1"]) == 2  # a local job has no flavor
    assert "--flavor only apply with --on hf-jobs" in capsys.readouterr().err

    assert (
        main(
            [
                *common,
                "--on",
                "hf-jobs",
                "--flavor",
                "l40sx1",
                "--bucket",
                "alice/b",
                "--timeout",
                "90m",
                "--out",
                "/data/hf/one",
            ]
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "started HF Job job0 on l40sx1 ($1.80/h, at most $2.70 in 1.5 h) as alice" in said
    run = next(kwargs for name, kwargs in api.calls if name == "run_job")
    assert run["token"] == "hf_user" and run["namespace"] == "alice" and run["timeout"] == 5400
    assert wait_for(api, "job0", {"succeeded", "failed"}) == "succeeded"
    assert (bucket / "hf" / "one" / "pytorch_lora_weights.safetensors").is_file()


def test_the_studio_target_lists_priced_gpus_and_refuses_with_what_to_do():
    from studio import hf_jobs as target

    assert target.flavor_choices(hardware()) == [
        ("l40sx1: Nvidia L40S - 1x, $1.80/h", "l40sx1"),
        ("h200: Nvidia H200, $5.00/h", "h200"),
    ]  # no CPU flavor
    env = {**ENV, "DFD_STUDIO_BUCKET": "alice/dfd-data"}
    with pytest.raises(ValueError, match="sign in with Hugging Face"):
        target.check_ready(None, "openid jobs", env)
    with pytest.raises(ValueError, match="needs the `jobs` scope: add it under hf_oauth_scopes"):
        target.check_ready("alice", "openid profile contribute-repos", env)
    with pytest.raises(ValueError, match="set DFD_STUDIO_BUCKET"):
        target.check_ready("alice", "openid jobs", ENV)
    assert target.check_ready("alice", "openid contribute-repos jobs", env) == "alice/dfd-data"


def test_the_doc_says_the_front_matter_line_that_turns_hf_jobs_on():
    import re
    from pathlib import Path

    import yaml

    from conftest import ROOT
    from studio.auth import JOBS_SCOPE, missing_scope

    doc = (Path(ROOT) / "docs" / "space.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", doc, re.S) if "hf_oauth_scopes" in b]
    readme = (Path(ROOT) / "README.md").read_text().split("---\n")[1]
    asked = yaml.safe_load(readme)["hf_oauth_scopes"]
    assert yaml.safe_load(block)["hf_oauth_scopes"] == [*asked, JOBS_SCOPE]  # the README's, plus jobs
    said = missing_scope(" ".join(["openid", *asked]), JOBS_SCOPE)
    assert "\n" not in said and "`jobs` scope: add it under hf_oauth_scopes" in said
    assert missing_scope(" ".join(["openid", *yaml.safe_load(block)["hf_oauth_scopes"]]), JOBS_SCOPE) is None
