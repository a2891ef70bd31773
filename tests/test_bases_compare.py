"""Compare and Diversity on the Wan2.2 and Cosmos bases, on tiny random pipelines of the real classes (each
folder's dfd_studio.json names its smallest video): a Wan2.2-TI2V base samples from text or from an uploaded
first frame, the two experts of an A14B base (and its student's two LoRAs) from text, Cosmos-Predict2.5 from a
first frame; a request a base cannot take is refused in one line before anything is sampled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import engine
from engine.media.video import read_mp4
from studio import compare, diversity, frames
from studio.files import public_folder
from tiny_cosmos import save_tiny_cosmos
from tiny_wan import save_tiny_wan22_a14b, save_tiny_wan22_ti2v

SMALLEST = {"ti2v": (5, 32, 32), "a14b": (5, 32, 32), "cosmos": (5, 16, 16)}  # frames, height, width


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bases")
    made = {
        "ti2v": save_tiny_wan22_ti2v(folder / "ti2v"),
        "a14b": save_tiny_wan22_a14b(folder / "a14b"),
        "cosmos": save_tiny_cosmos(folder / "cosmos"),
    }
    for kind in ("ti2v", "a14b"):  # the release's default size is past the tiny transformers' rotary positions
        n, h, w = SMALLEST[kind]
        (made[kind] / "dfd_studio.json").write_text(json.dumps({"num_frames": n, "height": h, "width": w}))
    return {kind: str(path) for kind, path in made.items()}


def _upload(tmp_path: Path, kind: str, seed: int) -> Path:
    _, h, w = SMALLEST[kind]
    path = tmp_path / f"frame-{kind}-{seed}.png"
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_the_first_frame_box_is_offered_to_a_base_that_takes_a_frame(bases):
    assert [frames.base_task(bases[k]) for k in ("ti2v", "a14b", "cosmos")] == ["ti2v", "t2v", "i2v"]
    assert [frames.shown(bases[k]) for k in ("ti2v", "a14b", "cosmos")] == [True, False, True]


def test_compare_samples_a_ti2v_teacher_from_text_and_from_a_first_frame(data_dir, bases, tmp_path):
    public, base = public_folder(data_dir), bases["ti2v"]
    from_text = compare.compare(data_dir, public, base, "a cat", 1, None, None, steps=2)
    framed = compare.compare(
        data_dir, public, base, "a cat", 1, None, None, steps=2, frame=_upload(tmp_path, "ti2v", 1)
    )
    videos = [read_mp4(r.videos["teacher"]) for r in (from_text, framed)]
    assert videos[0].shape == videos[1].shape and len(videos[0]) == 5
    assert not np.array_equal(videos[0], videos[1]) and "all from the same first frame" in framed.note
    assert "first frame" not in from_text.note


def test_compare_samples_an_a14b_teacher_and_a_cosmos_teacher_from_its_frame(data_dir, bases, tmp_path):
    public = public_folder(data_dir)
    a14b = compare.compare(data_dir, public, bases["a14b"], "a cat", 1, None, None, steps=2)
    assert len(read_mp4(a14b.videos["teacher"])) == 5
    frame = _upload(tmp_path, "cosmos", 2)
    cosmos = compare.compare(data_dir, public, bases["cosmos"], "a cat", 1, None, None, steps=2, frame=frame)
    assert len(read_mp4(cosmos.videos["teacher"])) == 5 and "all from the same first frame" in cosmos.note
    with pytest.raises(ValueError, match=f"^{bases['cosmos']} is an image-to-video model: upload a first frame"):
        compare.compare(data_dir, public, bases["cosmos"], "a cat", 1, None, None, steps=2)
    with pytest.raises(ValueError, match=f"^{bases['a14b']} is a text-to-video model: remove the first frame"):
        compare.compare(data_dir, public, bases["a14b"], "a cat", 1, None, None, steps=2, frame=frame)


@pytest.mark.parametrize("kind", ["ti2v", "a14b", "cosmos"])
def test_diversity_measures_each_base(kind, data_dir, bases, tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "accelerator_present", lambda: False)
    frame = _upload(tmp_path, kind, 3) if kind != "a14b" else None
    result = diversity.run(
        data_dir, public_folder(data_dir), bases[kind], "a cat", 2, ["teacher"], steps=2, features="", frame=frame
    )
    assert list(result.table.model) == ["teacher"] and result.table.saturation.notna().all()
    assert Path(result.grid_video).is_file() and Path(result.still_image).is_file()


def test_an_i2v_student_of_a_ti2v_base_without_a_frame_is_refused_before_sampling(
    data_dir, bases, tmp_path, monkeypatch
):
    shipped = tmp_path / "shipped"
    (shipped / "dmd2").mkdir(parents=True)
    (shipped / "dmd2" / "pytorch_lora_weights.safetensors").write_bytes(b"")  # not read: refused before sampling
    info = {"base": bases["ti2v"], "method": "dmd2", "task": "i2v", "t_list": [1.0, 0.5, 0.0]}
    (shipped / "dmd2" / "lora_config.json").write_text(json.dumps(info))
    monkeypatch.setattr("engine.models.students.SHIPPED_DIR", shipped)
    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("a refused request was sampled"))
    public, base = public_folder(data_dir), bases["ti2v"]
    said = r"^DMD2 \(shipped\) is an image-to-video student: upload a first frame for every model to start from, "
    with pytest.raises(ValueError, match=said + "or pick a text-to-video student$"):
        compare.compare(data_dir, public, base, "a cat", 1, "dmd2", None, steps=2)
    with pytest.raises(ValueError, match=said):
        diversity.run(data_dir, public, base, "a cat", 2, ["teacher", "dmd2"], steps=2, features="")


@pytest.fixture
def a14b_student(bases, tmp_path, monkeypatch) -> Path:
    """A shipped DMD2 student of the A14B base: one LoRA per expert (the low-noise one in its own file), t_list
    two times on each side of the boundary, weights small and random so the student differs from the teacher."""
    import torch

    from engine.distill.adapters import STUDENT, Adapters, save_student_lora
    from engine.models.base import load_base_model
    from engine.models.experts import LOW_NOISE_LORA_FILE

    adapters = Adapters(load_base_model(bases["a14b"], device="cpu").transformer, rank=4)
    torch.manual_seed(7)
    with torch.no_grad():
        for p in adapters.parameters(STUDENT):
            p.copy_(torch.randn_like(p) * 0.1)
    shipped = tmp_path / "shipped"
    extra = {"base": bases["a14b"], "method": "dmd2", "t_list": [0.999, 0.937, 0.833, 0.624, 0.0]}
    student = save_student_lora(adapters, shipped / "dmd2", extra=extra)
    assert (student / LOW_NOISE_LORA_FILE).is_file()
    monkeypatch.setattr("engine.models.students.SHIPPED_DIR", shipped)
    return student


def test_compare_and_diversity_sample_an_a14b_student_on_both_experts(data_dir, bases, a14b_student, monkeypatch):
    monkeypatch.setattr(engine, "accelerator_present", lambda: False)
    public, base = public_folder(data_dir), bases["a14b"]
    result = compare.compare(data_dir, public, base, "a cat", 1, "dmd2", None, steps=2)
    teacher, student = (read_mp4(result.videos[k]) for k in ("teacher", "dmd2"))
    assert teacher.shape == student.shape and len(student) == 5 and not np.array_equal(teacher, student)
    spread = diversity.run(data_dir, public, base, "a cat", 2, ["teacher", "dmd2"], steps=2, features="")
    assert len(spread.table) == 2 and spread.table.saturation.notna().all()
