"""A Wan2.2-TI2V base (one base for text- and image-to-video) in the studio, on a tiny pipeline of the real
classes: the Distill tab's task box keeps either task for it, and the Publish tab shows an i2v student of
it by its training previews (its base alone would say text-to-video)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiny_wan import save_tiny_wan, save_tiny_wan22_ti2v


@pytest.fixture(scope="module")
def ti2v_dir(tmp_path_factory) -> Path:
    return save_tiny_wan22_ti2v(tmp_path_factory.mktemp("tiny_wan22_ti2v"))


def test_the_task_box_keeps_either_task_for_a_ti2v_base_and_follows_a_one_task_base(ti2v_dir, tmp_path):
    from studio.distill_request import task_for_base

    assert [task_for_base(str(ti2v_dir), t) for t in ("t2v", "i2v")] == ["t2v", "i2v"]
    assert task_for_base(str(save_tiny_wan(tmp_path / "wan21")), "i2v") == "t2v"
    assert task_for_base("shapes-tiny-i2v", "t2v") == "i2v"
    assert task_for_base("shapes-tiny", "ar") == "ar"  # a causal student generates from text: a t2v base takes it
    assert task_for_base(str(tmp_path / "not-yet-there"), "i2v") == "i2v"  # left to the check at launch


def _student(folder: Path, base: Path, task: str):
    from studio import lineup

    samples = folder / "samples"
    samples.mkdir(parents=True)
    for prompt in (0, 1):
        (samples / f"step2-prompt{prompt}-seed1.mp4").write_bytes(b"mp4")  # named as the trainer names them
    (samples / "previews.json").write_text(json.dumps({"prompts": ["a cat", "a dog"], "seeds": [1], "task": task}))
    info = {"base": str(base), "method": "dmd2", "task": task}
    (folder / "lora_config.json").write_text(json.dumps(info))
    return lineup.Contender(folder.name, "DMD2 · " + folder.name, str(base), "dmd2", folder, info)


def test_publish_shows_an_i2v_student_of_a_ti2v_base_by_its_training_previews(ti2v_dir, tmp_path):
    from studio import publish

    student = _student(tmp_path / "i2v", ti2v_dir, "i2v")
    shown, metrics = publish.samples_and_metrics(tmp_path / "data", student)
    assert [caption for _, caption in shown] == ["a cat (step 2, seed 1)", "a dog (step 2, seed 1)"] and metrics == {}
    assert not (tmp_path / "data").exists()  # nothing sampled: no frame to start from here
    # its t2v sibling is sampled from text (cached under the staging folder), not shown by its previews
    assert publish._samples_folder(tmp_path / "data", _student(tmp_path / "t2v", ti2v_dir, "t2v")) is not None
