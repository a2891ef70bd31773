"""What users already hold keeps working: the shipped students sample bit for bit as they did before the
engine was grouped into subpackages, and a studio data folder and a teacher folder written before it
still load.

tests/data holds the evidence, made by the engine before the grouping: shipped_sampling_digests.json (the
sha256 of the uint8 frames sample_frames returned) and jobs_before_grouping/ (a studio data folder with a
queued distill job and a queued sample job)."""

from __future__ import annotations

import hashlib
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
PROMPT = "a red circle moving left on a dark background"
SEEDS = [1, 2]
DIGESTS = json.loads((DATA / "shipped_sampling_digests.json").read_text())["videos"]


@pytest.fixture(scope="module")
def shipped_base():
    from engine.models.base import load_base_model

    return load_base_model("shapes-tiny")


def _sample_configs() -> dict:
    from engine.config.sample import SampleConfig
    from engine.models.students import shipped_students

    configs = {"teacher@8": SampleConfig(prompt=PROMPT, seeds=SEEDS, steps=8)}
    for student in shipped_students():
        if student.base != "shapes-tiny" or student.info.get("causal"):  # shipped after the grouping (I2V and
            continue                                                      # causal students): nothing to compare
        configs[student.name] = SampleConfig(prompt=PROMPT, seeds=SEEDS, lora=str(student.lora_dir))
    return configs


def test_every_shipped_student_has_a_stored_digest():
    assert sorted(_sample_configs()) == sorted(DIGESTS) == ["dfd", "dmd2", "dmd2-continued", "teacher@8"]


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_the_shipped_base_and_students_sample_bit_identically(shipped_base, name):
    from engine.generation.generate import sample_frames

    frames, nfe = sample_frames(shipped_base, _sample_configs()[name].validate())
    assert frames.dtype == np.uint8 and frames.shape[0] == len(SEEDS)
    digest = hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()
    assert (digest, nfe) == (DIGESTS[name]["sha256"], DIGESTS[name]["nfe"]), f"{name} no longer samples as it did"


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
    script = ("import sys\nfrom engine.models.base import load_base_model\n"
              "model = load_base_model(sys.argv[1])\nprint(type(model.pipe.vae).__name__)")
    result = subprocess.run([sys.executable, "-c", script, str(teacher)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "PatchPCAAutoencoder"
