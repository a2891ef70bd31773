"""Jobs that fail, with real parts: a non-finite loss and a full disk fail the job with a readable error and the
last checkpoint intact, a checkpoint that would run code is refused, and written files land together or not at
all. The job kinds are tests/jobkinds_for_tests.py's."""

from __future__ import annotations

import json
import os

import pytest

import engine.jobs as api
from jobs_helpers import (  # noqa: F401 (data_dir: fixture)
    ENV,
    FAST_COUNTER,
    data_dir,
    run_worker_until_idle,
)


def test_nan_loss_fails_the_job_with_a_readable_error(data_dir):
    job = api.submit(data_dir, "counter", {**FAST_COUNTER, "nan_at_step": 4})
    run_worker_until_idle(data_dir)
    failed = api.get(data_dir, job.id)
    assert failed.state == "failed"
    assert failed.error == (
        "training diverged at step 4: loss=nan; lower the learning rate, then resume or start again"
    )
    assert failed.step == 3


def test_disk_full_while_saving_fails_the_job_with_the_previous_checkpoint_intact(data_dir):
    job = api.submit(
        data_dir, "counter", {"steps": 20, "checkpoint_every": 4, "step_seconds": 0.01, "disk_full_at_save": 2}
    )
    run_worker_until_idle(data_dir)
    failed = api.get(data_dir, job.id)
    assert (failed.state, failed.error) == (
        "failed",
        "disk full while saving the checkpoint at step 8; free space and resume",
    )
    assert failed.step == 4  # not advanced past the last good checkpoint
    assert [c.step for c in api.checkpoints(data_dir, job.id)] == [4]
    files = sorted(p.name for p in (data_dir / "jobs" / job.id / "checkpoints").iterdir())
    assert files == ["step-000004.json"]
    assert json.loads((data_dir / "jobs" / job.id / "checkpoints" / files[0]).read_text())["step"] == 4
    assert api.resume(data_dir, job.id).state == "queued"


def test_disk_full_in_torch_save_is_told_as_disk_full_not_as_a_crash(data_dir):
    """torch.save reports a full disk as RuntimeError ("unexpected pos", "file write failed"), not OSError."""
    env = {**ENV, "DFD_STUDIO_EXTRA_KINDS": "tests.jobkinds_for_tests,tests.jobkinds_torch_save"}
    import tests.jobkinds_torch_save  # noqa: F401  (registers torch_saver here, for submit)

    job = api.submit(data_dir, "torch_saver", {"steps": 4, "full_at_step": 3})
    worker = run_worker_until_idle(data_dir, timeout=120, env=env)
    failed = api.get(data_dir, job.id)
    assert (failed.state, failed.error) == (
        "failed",
        "disk full while saving the checkpoint at step 3; free space and resume",
    ), worker.stderr
    assert failed.step == 2 and [c.step for c in api.checkpoints(data_dir, job.id)] == [1, 2]


def test_a_checkpoint_that_would_run_code_is_refused_with_what_to_do(tmp_path):
    import torch

    from engine.distill.checkpoints import read_checkpoint, write_checkpoint

    good = write_checkpoint(
        tmp_path,
        3,
        {
            "step": 3,
            "opt": {"state": {0: {"exp_avg": torch.ones(2)}}},
            "gen": torch.Generator().get_state(),
            "coin": {"state": {"inc": 2**100}},
        },
    )
    assert read_checkpoint(good)["coin"]["state"]["inc"] == 2**100  # what the trainer stores loads weights-only

    planted = tmp_path / "checkpoints" / "step-0000004"
    planted.mkdir()
    torch.save({"step": 4, "payload": Planted()}, planted / "state.pt")
    with pytest.raises(
        ValueError,
        match=r"holds more than tensors and plain values \(it asks for .*system\); "
        r"DFD Studio did not write it: delete step-0000004",
    ):
        read_checkpoint(planted)
    assert not (tmp_path / "ran").exists()


class Planted:
    def __reduce__(self):
        return os.system, ("touch ran",)


def test_written_files_land_together_or_not_at_all(tmp_path):
    from engine.models.folders import written_files

    student = tmp_path / "lora"
    student.mkdir()
    (student / "adapter.safetensors").write_bytes(b"old weights")
    (student / "checkpoints").mkdir()  # what else the folder holds stays
    with pytest.raises(OSError):
        with written_files(student, last=("adapter.safetensors",)) as tmp:
            (tmp / "adapter.safetensors").write_bytes(b"new wei")
            raise OSError(28, "No space left on device")
    assert (student / "adapter.safetensors").read_bytes() == b"old weights"
    assert sorted(p.name for p in student.iterdir()) == ["adapter.safetensors", "checkpoints"]

    with written_files(student, last=("adapter.safetensors",)) as tmp:
        (tmp / "adapter.safetensors").write_bytes(b"new weights")
        (tmp / "lora_config.json").write_text("{}")
    assert (student / "adapter.safetensors").read_bytes() == b"new weights"
    assert sorted(p.name for p in student.iterdir()) == ["adapter.safetensors", "checkpoints", "lora_config.json"]
