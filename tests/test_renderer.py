"""engine.render and its per-process cache of base models (engine/generation/renderer.py), with the real
mini shapes teacher and a real student of it: the same clips as sampling a freshly loaded model, one
model shared by the teacher and its students, and a reload when the teacher's or a student's weights
change on disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.config.sample import SampleConfig
from engine.generation import renderer
from engine.generation.generate import sample_frames
from engine.models.base import load_base_model
from engine.models.students import LORA_FILE


def _bump_mtime(path, seconds: int = 10) -> None:
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + seconds))


@pytest.fixture
def own_copies(mini_teacher_dir, mini_students, tmp_path):
    """A teacher and a student folder this test may rewrite (the fixtures' are shared)."""
    base, student = tmp_path / "teacher", tmp_path / "student"
    shutil.copytree(mini_teacher_dir, base)
    shutil.copytree(mini_students / "dmd2", student)
    yield str(base), student
    renderer._models.pop(str(base), None)


def test_render_gives_the_clips_of_a_freshly_loaded_model_and_shares_one_model(mini_teacher_dir, mini_students):
    base, student = str(mini_teacher_dir), mini_students / "dmd2"
    teacher = engine.render(base, "a red circle", [1, 2], steps=2, guidance=5.0)
    assert teacher.clips.dtype == np.uint8 and teacher.clips.shape[0] == 2 and teacher.nfe == 4
    model = renderer.loaded_model(base)
    distilled = engine.render(base, "a red circle", [1, 2], lora_dir=student)
    assert renderer.loaded_model(base) is model and distilled.fps == model.fps and distilled.seconds > 0

    fresh = load_base_model(base)
    for rendered, cfg in (
        (teacher, SampleConfig(base=base, prompt="a red circle", seeds=[1, 2], steps=2)),
        (distilled, SampleConfig(base=base, prompt="a red circle", seeds=[1, 2], lora=str(student))),
    ):
        clips, nfe = sample_frames(fresh, cfg)
        assert nfe == rendered.nfe and np.array_equal(clips, rendered.clips)
    assert engine.world_of(base) == "shapes"


def test_a_retrained_teacher_or_a_rewritten_student_is_loaded_afresh(own_copies):
    base, student = own_copies
    before = engine.weights_version(base, student)
    first = renderer.loaded_model(base)
    assert renderer.loaded_model(base) is first

    for weights in (Path(base) / "transformer").glob("*.safetensors"):  # the teacher retrained
        _bump_mtime(weights)
    assert engine.weights_version(base, student)[0] != before[0]
    second = renderer.loaded_model(base)
    assert second is not first

    engine.render(base, "a shape", [1], lora_dir=student)
    assert renderer.loaded_model(base) is second  # the student's file is as it was when first loaded
    _bump_mtime(student / LORA_FILE)
    assert engine.weights_version(base, student)[1] != before[1]
    engine.render(base, "a shape", [1], lora_dir=student)
    assert renderer.loaded_model(base) is not second


def test_weights_version_of_a_hub_id_or_a_missing_student_is_empty(tmp_path):
    assert engine.weights_version("someone/some-model", tmp_path / "no-student") == ((), (), ())
    assert engine.weights_version("someone/some-model") == ((), ())


def test_a_two_expert_students_low_noise_file_rewritten_alone_is_a_new_version(tmp_path):
    from engine.core.files import LOW_NOISE_LORA_FILE
    from engine.evaluation.resume import lora_version

    (tmp_path / LORA_FILE).write_bytes(b"high")
    one_expert = (engine.weights_version("someone/some-model", tmp_path), lora_version(str(tmp_path)))
    assert len(one_expert[1]) == 2  # a one-expert student's version, as recorded before two-expert students
    (tmp_path / LOW_NOISE_LORA_FILE).write_bytes(b"low")
    first = (engine.weights_version("someone/some-model", tmp_path), lora_version(str(tmp_path)))
    assert first != one_expert
    _bump_mtime(tmp_path / LOW_NOISE_LORA_FILE)  # only the low-noise expert's LoRA rewritten
    second = (engine.weights_version("someone/some-model", tmp_path), lora_version(str(tmp_path)))
    assert second[0] != first[0] and second[1] != first[1]
    with pytest.raises(ValueError, match="steps"):
        engine.render("shapes-tiny", "a shape", [1], steps=0)
