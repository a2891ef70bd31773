"""An HF Job's base given by hub id (engine/jobs/hf_jobs.py base_mount): its model repo mounted read-only as a
volume and read there, never downloaded, while the run's records keep the hub id as the base's name. Against
the stand-in at huggingface_hub's boundary (tests/hf_jobs_stand_in.py), offline, with the repo's volume a local
folder holding a real diffusers pipeline."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import engine
from engine.hub.card import public_base
from engine.jobs import hf_tracker
from engine.jobs.hf_jobs import Mount
from engine.models.names import HUB_VOLUMES, ModelError, resolve_model
from studio.job_remote import remote_line
from test_hf_jobs import config, make_plan
from test_hf_jobs_tracking import refresh_until, space, start  # noqa: F401 (space: the fixture)

WAN = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
COSMOS = "nvidia/Cosmos-Predict2.5-2B"


def volumes(made) -> list[dict]:
    return [v.to_dict() for v in made.run_job_kwargs("t")["volumes"]]


def test_a_hub_id_base_is_mounted_read_only_and_named_by_its_id():
    made = make_plan(replace(config(), base=WAN))
    assert volumes(made)[1] == {"type": "model", "source": WAN, "mountPath": "/base-model", "readOnly": True}
    assert made.command[made.command.index("--base") + 1] == WAN  # the run's records name the hub id
    assert json.loads(made.env[HUB_VOLUMES]) == {WAN: "/base-model"}  # ... and the engine reads it there
    resumed = make_plan(replace(config(), base=WAN), options=("--resume",))
    assert volumes(resumed) == volumes(made)  # a resumed job is planned the same way: mounted again


def test_cosmos_is_mounted_at_its_diffusers_revision():
    [_, model] = volumes(make_plan(replace(config(), base=COSMOS)))
    assert model["revision"] == "diffusers/base/post-trained" and model["mountPath"] == "/base-model"


def test_a_repo_the_space_already_mounts_is_not_mounted_twice():
    space_wan = Mount("model", WAN, "/models/wan", True)
    made = make_plan(replace(config(), base=WAN), volumes=(space_wan,))
    assert [v["mountPath"] for v in volumes(made)] == ["/data", "/models/wan"]
    assert json.loads(made.env[HUB_VOLUMES]) == {WAN: "/models/wan"}
    other = Mount("model", "alice/other", "/base-model", True)
    with pytest.raises(ValueError, match="the Space mounts alice/other at /base-model.*mount that volume elsewhere"):
        make_plan(replace(config(), base=WAN), volumes=(other,))


@pytest.mark.parametrize("base", ["shapes-tiny", "wan2.1-1.3b-random"])
def test_a_built_in_or_random_base_mounts_nothing(base):
    made = make_plan(replace(config(), base=base))
    assert [v["type"] for v in volumes(made)] == ["bucket"] and HUB_VOLUMES not in made.env


def test_a_local_base_folder_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ValueError) as refused:
        make_plan(replace(config(), base=str(tmp_path / "wan")))
    said = str(refused.value)
    assert "\n" not in said and said.startswith(f"base {tmp_path / 'wan'} is a folder on this machine only")
    assert "give its hub id, or put it on the bucket or a mounted volume" in said


def test_the_engine_reads_a_mounted_hub_id_from_its_folder(tmp_path, monkeypatch, mini_teacher_dir):
    monkeypatch.setenv(HUB_VOLUMES, json.dumps({"alice/tiny-teacher": str(mini_teacher_dir)}))
    assert resolve_model("alice/tiny-teacher") == ("folder", mini_teacher_dir)
    assert resolve_model("alice/another")[0] == "hub"  # not mounted: a hub id as ever
    monkeypatch.setenv(HUB_VOLUMES, json.dumps({"alice/tiny-teacher": str(tmp_path)}))
    with pytest.raises(ModelError, match="mounted at .* has no model_index.json"):
        resolve_model("alice/tiny-teacher")
    monkeypatch.setenv(HUB_VOLUMES, "not json")
    with pytest.raises(ModelError, match="must be JSON"):
        resolve_model("alice/tiny-teacher")


def test_an_hf_job_trains_on_the_mounted_repo_and_its_student_names_the_hub_id(space, mini_teacher_dir):  # noqa: F811
    bucket, data_dir, env, api = space
    api.models["alice/tiny-teacher"] = mini_teacher_dir  # the repo's volume, wherever the job mounts it
    job, _ = start(data_dir, api, env, replace(config(steps=2), base="alice/tiny-teacher"))
    run = next(kwargs for name, kwargs in api.calls if name == "run_job")
    assert run["volumes"][1].to_dict() == {
        "type": "model",
        "source": "alice/tiny-teacher",
        "mountPath": "/base-model",
        "readOnly": True,
    }
    done = refresh_until(data_dir, api, env, job.id, lambda j: j.state != "running")
    assert done.state == "succeeded", done.error  # offline (HF_HUB_OFFLINE=1): nothing was downloaded
    assert done.config["base"] == "alice/tiny-teacher"
    folder = Path(done.dir)
    assert json.loads((folder / "distill_config.json").read_text())["base"] == "alice/tiny-teacher"
    lora = json.loads((folder / "lora" / "lora_config.json").read_text())
    assert lora["base"] == "alice/tiny-teacher" and public_base(lora["base"]) == "alice/tiny-teacher"  # the card's
    assert [s.name for s in engine.job_students(data_dir)] == [job.id]
    assert done.remote["stage"] == "COMPLETED" and done.remote["ended_at"] >= done.remote["started_at"]
    shown = remote_line(done)  # the Jobs tab: the Hub's last word and a cost that stopped growing
    assert "HF Job [job0](https://huggingface.co/jobs/alice/job0) under alice · Hub: completed" in shown
    assert remote_line(done, now=done.remote["ended_at"] + 3600) == shown

    again = hf_tracker._plan(api, hf_tracker.storage_config(done), done, bucket, "hf_alice", env, resume=True)
    assert [m.mount_path for m in again.mounts] == ["/data", "/base-model"] and again.command[-1] == "--resume"
