"""Shared fixtures: environment for offline, quiet runs; a tiny random Wan2.1 pipeline folder built
from the real diffusers/transformers classes; a helper that runs `python -m engine` for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # one of several test processes sharing the cores: one thread each
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # read when torch loads, here and in every subprocess
# ATEN_CPU_CAPABILITY below the CPU's own stands in for an older CPU, but leaves oneDNN free to use AMX, and its bf16
# attention then calls an ATen packing routine the lower level lacks ("pack_vnni2 is only supported when avx512 is
# supported", torch 2.13 on an AMX Xeon): cap oneDNN at the same level, as on the older CPU itself.
_ONEDNN_ISA = {"default": "SSE41", "avx2": "AVX2"}.get(os.environ.get("ATEN_CPU_CAPABILITY", ""))
if _ONEDNN_ISA:
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", _ONEDNN_ISA)
sys.path.insert(0, str(ROOT))


def run_engine(*args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m engine ARGS` in a fresh process from the repo root."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def copy_student(src: Path, dest: Path, method: str | None = None) -> Path:
    """A student folder copied as a LoRA (without its checkpoints and previews), its lora_config.json naming
    `method` when given: how tests make a "DFD" student or a finished job's LoRA without training one."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("checkpoints", "samples"), dirs_exist_ok=True)
    if method:
        config = json.loads((Path(dest) / "lora_config.json").read_text())
        (Path(dest) / "lora_config.json").write_text(json.dumps({**config, "method": method}))
    return Path(dest)


def wait_for(condition, timeout: float, what: str, every: float = 0.1):
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory) -> Path:
    """A randomly initialised Wan2.1-T2V pipeline of the real classes (AutoencoderKLWan included),
    saved as a diffusers folder: the stand-in for Wan-AI/Wan2.1-T2V-1.3B-Diffusers."""
    from tiny_wan import save_tiny_wan

    return save_tiny_wan(tmp_path_factory.mktemp("tiny-wan") / "pipe")


@pytest.fixture(scope="session")
def mini_teacher_dir(tmp_path_factory) -> Path:
    """A shapes-world teacher of the real pipeline classes, 2 layers, trained 2 steps: the fast base
    for trainer tests (its quality does not matter there, only the code paths)."""
    from engine.config.teacher import TeacherConfig
    from engine.pretrain.teacher import pretrain_teacher

    out = tmp_path_factory.mktemp("mini-teacher") / "pipe"
    cfg = TeacherConfig(steps=2, batch_size=4, pool_clips=8, ae_fit_clips=32, num_layers=2, ffn_dim=128)
    pretrain_teacher(cfg, out, command="tests/conftest.py mini_teacher_dir")
    return out


@pytest.fixture(scope="session")
def mini_i2v_teacher(mini_teacher_dir, tmp_path_factory) -> Path:
    """The mini teacher widened to image-to-video by `pretrain-teacher --task i2v` (one step): a shapes-world
    I2V base for the paths that need the world's frames, not a trained model's quality."""
    from engine.config.teacher import TeacherConfig
    from engine.pretrain.teacher import pretrain_teacher

    out = tmp_path_factory.mktemp("mini-i2v") / "pipe"
    cfg = TeacherConfig(task="i2v", init=str(mini_teacher_dir), steps=1, batch_size=2, pool_clips=4, warmup_steps=1)
    pretrain_teacher(cfg.validate(), out, "tests/conftest.py mini_i2v_teacher")
    return out


@pytest.fixture
def data_dir(tmp_path):
    """A studio data folder (SQLite database and files) that is closed after the test."""
    import storage

    yield tmp_path / "studio_data"
    storage.close_all()


@pytest.fixture(scope="module")
def mini_students(mini_teacher_dir, tmp_path_factory):
    """A DMD2 student and a 'DFD' copy of it (same weights, method dfd) of the mini teacher, shown as the
    shipped students."""
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller

    shipped = tmp_path_factory.mktemp("shipped")
    Distiller(
        DistillConfig(
            base=str(mini_teacher_dir), steps=2, batch_size=2, student_update_freq=2, lora_rank=4, shapes_pool_clips=64
        ),
        shipped / "dmd2",
    ).train()
    copy_student(shipped / "dmd2", shipped / "dfd", "dfd")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("engine.models.students.SHIPPED_DIR", shipped)
        yield shipped
