"""Two CPU processes (gloo, started by torchrun) train one model through accelerate's DDP, and again with the
frozen base sharded between them (FSDP2, shard_base): the same update as one process with the same global
batch, an exact resume, and one LoRA written.

gloo's teardown sometimes aborts a rank after its work is done; the tests judge what the processes wrote
and accept a non-zero exit only when it is that abort."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT
from engine.config.distill import DistillConfig
from engine.distill.trainer import Distiller, latest_checkpoint

LORA = "pytorch_lora_weights.safetensors"
SETTINGS = dict(
    steps=4,
    student_update_freq=2,
    lora_rank=4,
    lr_student=1e-3,
    lr_fake=1e-3,
    checkpoint_every=2,
    guidance=3.0,
    seed=3,
    shapes_pool_clips=64,
)
# Each process computes half the batch, so sums run in another order: fp32 round-off, carried through four
# Adam steps (measured: 1.5e-6 at most over the student's LoRA weights).
TOLERANCE = 1e-5


def _flags(**settings) -> list[str]:
    return [part for k, v in settings.items() for part in (f"--{k.replace('_', '-')}", str(v))]


def _torchrun(base, out, port, *extra, launcher: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    launcher = launcher or ("torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port))
    cmd = [
        sys.executable,
        "-m",
        *launcher,
        "-m",
        "engine",
        "distill",
        "--base",
        str(base),
        *_flags(batch_size=2, **SETTINGS),
        "--out",
        str(out),
        *extra,
    ]
    result = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    teardown_abort = "exitcode  : -6" in result.stderr or "SIGABRT" in result.stderr
    assert result.returncode == 0 or (teardown_abort and (out / "summary.json").is_file()), result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def single(mini_teacher_dir, tmp_path_factory):
    """One process, the global batch of the two-process runs."""
    out = tmp_path_factory.mktemp("one")
    return Distiller(DistillConfig(base=str(mini_teacher_dir), batch_size=4, **SETTINGS), out).train()


def test_two_processes_make_the_one_process_update_resume_exactly_and_write_one_lora(
    mini_teacher_dir, single, tmp_path
):
    two = tmp_path / "two"
    result = _torchrun(mini_teacher_dir, two, 29531)
    summary = json.loads((two / "summary.json").read_text())
    assert summary["processes"] == 2 and len(set(summary["student_fingerprints"])) == 1
    assert summary["base_sharded"] is False
    assert sorted(p.name for p in two.rglob("*.safetensors") if p.name == LORA) == [LORA]
    assert result.stdout.count(LORA) == 1  # only rank 0 reports

    a, b = load_file(single / LORA), load_file(two / LORA)
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert 0 < max(float(a[k].abs().max()) for k in a if "lora_B" in k)  # the student moved
    assert worst < TOLERANCE, worst

    # the logged terms are the global batch's, as one process logs them
    def rows(folder):
        return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]

    for r1, r2 in zip(rows(single), rows(two), strict=True):
        assert r1.keys() == r2.keys() and all(abs(r1[k] - r2[k]) < 1e-4 for k in r1), (r1, r2)

    # a crash after step 2: the newest checkpoint and the outputs gone, then --resume
    crashed = tmp_path / "crashed"
    shutil.copytree(two, crashed)
    shutil.rmtree(latest_checkpoint(crashed))
    for name in (LORA, "summary.json"):
        (crashed / name).unlink()
    _torchrun(mini_teacher_dir, crashed, 29532, "--resume")
    c = load_file(crashed / LORA)
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_a_sharded_base_makes_the_one_process_update_resumes_exactly_and_writes_the_whole_lora(
    mini_teacher_dir, single, tmp_path
):
    two = tmp_path / "fsdp"
    _torchrun(mini_teacher_dir, two, 29533, "--shard-base")
    summary = json.loads((two / "summary.json").read_text())
    assert summary["base_sharded"] is True and len(set(summary["student_fingerprints"])) == 1
    a, b = load_file(single / LORA), load_file(two / LORA)
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)  # whole tensors, not shards
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < TOLERANCE, worst
    # the checkpoint holds whole adapters too: a sharded run resumes from it exactly, here sharded by the
    # FSDP config file through accelerate launch
    crashed = tmp_path / "crashed"
    shutil.copytree(two, crashed)
    shutil.rmtree(latest_checkpoint(crashed))
    for name in (LORA, "summary.json"):
        (crashed / name).unlink()
    _torchrun(
        mini_teacher_dir,
        crashed,
        29534,
        "--resume",
        launcher=(
            "accelerate.commands.launch",
            "--config_file",
            str(ROOT / "configs" / "fsdp.yaml"),
            "--num_processes",
            "2",
            "--main_process_port",
            "29534",
        ),
    )
    assert json.loads((crashed / "summary.json").read_text())["base_sharded"] is True
    c = load_file(crashed / LORA)
    assert all(torch.equal(b[k], c[k]) for k in b)


def test_a_causal_student_in_two_processes_makes_the_one_process_update(mini_teacher_dir, tmp_path):
    """Task ar: every chunk's forward with gradient runs through the student's DDP view before one backward."""
    one = Distiller(
        DistillConfig(base=str(mini_teacher_dir), task="ar", batch_size=4, **SETTINGS), tmp_path / "one"
    ).train()
    two = tmp_path / "two"
    _torchrun(mini_teacher_dir, two, 29535, "--task", "ar")
    summary = json.loads((two / "summary.json").read_text())
    assert summary["processes"] == 2 and len(set(summary["student_fingerprints"])) == 1
    assert json.loads((two / "lora_config.json").read_text())["causal"] is True
    a, b = load_file(one / LORA), load_file(two / LORA)
    assert 0 < max(float(a[k].abs().max()) for k in a if "lora_B" in k)  # the student moved
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < TOLERANCE, worst
