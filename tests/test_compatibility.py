"""What users already hold keeps working: the shipped students sample as they did before the engine was
grouped into subpackages, and a studio data folder and a teacher folder written before it still load.

tests/data holds the evidence: shipped_sampling_frames.npz, the uint8 videos sample_frames returns for the shipped
base (teacher, 8 steps, CFG 5) and its three students of then, with the NFE of each (written by
`OMP_NUM_THREADS=1 python scripts/compat_frames.py write`; bit for bit the frames the engine made before the
grouping, whose sha256 digests it replaced), and jobs_before_grouping/ (a studio data folder with a queued distill
job and a queued sample job).

Portability: frames are compared within a bound, not bit for bit. The same code gives float results that differ
between CPUs (BLAS, oneDNN and vectorised ATen kernels), so a digest of sampled frames holds only on the machine
that wrote it. The NFE, the LoRA files and the configs stay exact. The bound (MAX_LEVELS, MEAN_LEVELS) sits
between two groups measured with `scripts/compat_frames.py compare` (2026-12-04, a 2-core Xeon with AVX-512,
torch 2.13.0+cpu; levels of 0-255, over the two seeds' 17 frames of 64x64x3):

- float noise, each against the stored frames: OMP_NUM_THREADS 1 or 2 under ATEN_CPU_CAPABILITY default, avx2
  and avx512; MKL_ENABLE_INSTRUCTIONS=AVX2 or SSE4_2; MKL_CBWR=COMPATIBLE; ONEDNN_MAX_CPU_ISA=AVX2 or SSE41;
  all of those lowest at once at 1 and 2 threads; and the whole pipeline in float64. Every one: max |diff| 1
  level (0 at 2 threads and under avx512, the defaults here), mean |diff| at most 0.00015 (at most 61 of the
  417,792 values changed, by one level), PSNR at least 86.4 dB. That float64 moves the frames no further than
  another kernel does suggests fp32 rounding as a whole is worth one level on a few values, whichever CPU.
- real changes (sample_frames on the configs above, changed as named): dmd2 on its t_list with each inner time
  0.001 lower: max 5, mean 0.12, 56.6 dB (0.01 lower: max 47, mean 0.98); dmd2 one student update further
  (`distill --init dmd2 --steps 5`): max 127, mean 2.0, 34.4 dB; dmd2 moved 1/40 of the way to dmd2-continued (one
  update's share of its 40): max 10, mean 0.25, 52.2 dB, and 1/200 (one distill step's share): max 2, mean 0.050,
  61.1 dB; dmd2-continued: mean 9.9; teacher at 7 steps: max 53, mean 1.3, 39.9 dB; teacher at CFG 4.9: max 10,
  mean 0.17, 54.6 dB.

MEAN_LEVELS = 0.04 is 270 times the largest noise measured, under the smallest real change (the 1/200 share,
finer than any step a run takes) and 3 times under the 0.001 time shift. MAX_LEVELS = 6 is six times the noise's
largest difference (another CPU may flip a few values near a rounding edge by more than one level over 8 steps);
it catches a change confined to a few values that the mean would miss (CFG 4.9: 10, 1/40 of an update: 10).
Another CPU's noise may exceed what this one shows: the margin is on that side."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT

DATA = Path(__file__).parent / "data"
MAX_LEVELS = 6  # largest |diff| of any value, in levels of 0-255 (float noise measured: 1)
MEAN_LEVELS = 0.04  # mean |diff| over all values (float noise measured: <= 0.00015; smallest real change: 0.05)


def _compat_frames():
    spec = importlib.util.spec_from_file_location("compat_frames", ROOT / "scripts" / "compat_frames.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compat_frames = _compat_frames()
PROMPT, SEEDS = compat_frames.PROMPT, compat_frames.SEEDS
REFERENCE, REFERENCE_META = compat_frames.load(compat_frames.FRAMES)


@pytest.fixture(scope="module")
def shipped_base():
    from engine.models.base import load_base_model

    return load_base_model("shapes-tiny")


def _within_bound(reference: np.ndarray, frames: np.ndarray) -> tuple[bool, dict]:
    deviation = compat_frames.deviation(reference, frames)
    return deviation["max"] <= MAX_LEVELS and deviation["mean"] <= MEAN_LEVELS, deviation


def test_every_shipped_student_has_reference_frames():
    assert REFERENCE_META["made_by"] == compat_frames.MADE_BY
    expected = ["dfd", "dmd2", "dmd2-continued", "teacher@8"]
    assert sorted(compat_frames.sample_configs()) == sorted(REFERENCE) == sorted(REFERENCE_META["videos"]) == expected


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_the_shipped_base_and_students_sample_as_before(shipped_base, name):
    from engine.generation.generate import sample_frames

    frames, nfe = sample_frames(shipped_base, compat_frames.sample_configs()[name].validate())
    reference = REFERENCE[name]
    assert (frames.dtype, frames.shape) == (reference.dtype, reference.shape)
    assert nfe == REFERENCE_META["videos"][name]
    ok, deviation = _within_bound(reference, frames)
    assert ok, (
        f"{name} no longer samples as it did: max |diff| {deviation['max']} levels (bound {MAX_LEVELS}), "
        f"mean {deviation['mean']:.5f} (bound {MEAN_LEVELS}), PSNR {deviation['psnr']:.1f} dB"
    )


def test_the_bound_tells_the_smallest_measured_real_change_from_float_noise(shipped_base):
    """dmd2 with each inner time of its t_list 0.001 lower (a real change, mean 0.12 levels when measured) must
    fall outside the bound, or the bound has grown too loose to protect anything."""
    from engine.generation.generate import sample_frames
    from engine.models.students import student_t_list

    config = compat_frames.sample_configs()["dmd2"]
    t_list = student_t_list(config.lora)
    config.t_list = [t_list[0], *(t - 0.001 for t in t_list[1:-1]), t_list[-1]]
    frames, _ = sample_frames(shipped_base, config.validate())
    ok, deviation = _within_bound(REFERENCE["dmd2"], frames)
    assert not ok, f"a shifted t_list passes the bound: {deviation}"


def test_job_rows_written_before_the_grouping_still_load(tmp_path):
    import engine.jobs as jobs
    from engine.config.distill import DistillConfig
    from engine.config.sample import SampleConfig
    from engine.jobs.kinds import build_config, get_kind

    data_dir = tmp_path / "studio_data"
    shutil.copytree(DATA / "jobs_before_grouping", data_dir)
    listed = jobs.list_jobs(data_dir)
    assert sorted((job.kind, job.state) for job in listed) == [("distill", "queued"), ("sample", "queued")]
    expected = {"distill": DistillConfig, "sample": SampleConfig}
    for row in listed:
        job = jobs.get(data_dir, row.id)
        config = build_config(get_kind(job.kind), job.config)
        assert type(config) is expected[job.kind]
        if job.kind == "sample":
            assert (config.prompt, config.seeds, config.steps) == (PROMPT, SEEDS, 4)
        else:
            assert (config.method, config.steps, config.data) == ("dmd2", 10, "shapes")


def test_config_classes_named_by_their_old_module_path_still_load():
    from engine.config.distill import DistillConfig
    from engine.config.sample import SampleConfig
    from engine.jobs.kinds import JobKind

    for path, cls in [("engine.config:SampleConfig", SampleConfig), ("engine.config:DistillConfig", DistillConfig)]:
        assert JobKind(name="old", config_class=path, run=lambda *a: None).load_config_class() is cls


def test_a_teacher_folder_naming_the_old_autoencoder_module_still_loads(tmp_path):
    teacher = tmp_path / "old-teacher"
    shutil.copytree(ROOT / "engine" / "assets" / "shapes-tiny", teacher)
    index = json.loads((teacher / "model_index.json").read_text())
    assert index["vae"] == ["engine.shapes.autoencoder", "PatchPCAAutoencoder"]
    index["vae"] = ["engine.autoencoder", "PatchPCAAutoencoder"]
    (teacher / "model_index.json").write_text(json.dumps(index, indent=2))
    # a fresh interpreter: nothing of engine imported yet, as when a user's script loads the folder
    script = (
        "import sys\nfrom engine.models.base import load_base_model\n"
        "model = load_base_model(sys.argv[1])\nprint(type(model.pipe.vae).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(teacher)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "PatchPCAAutoencoder"
