"""Image-to-video in Compare and Diversity: a tiny random Wan I2V base (tests/tiny_wan.py) and a 2-step DMD2
I2V student of it (with a 'DFD' copy) as the shipped students; the teacher and both students sampled from the
same uploaded first frame and seeds, in this process and through real sample jobs run by the real worker;
a frame and a base that do not go together refused in one line before anything is sampled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import engine
import engine.jobs as jobs_api
from conftest import copy_student
from engine.media.video import read_mp4
from studio import compare, diversity
from studio.files import public_folder
from tiny_wan import save_captioned_clips, save_small_i2v, train_tiny_i2v_student

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def i2v_base(tmp_path_factory) -> Path:
    return save_small_i2v(tmp_path_factory.mktemp("i2v") / "pipe")


@pytest.fixture(scope="module")
def i2v_students(i2v_base, tmp_path_factory):
    """A DMD2 I2V student of the base and a 'DFD' copy of it (method dfd), shown as the shipped students."""
    shipped = tmp_path_factory.mktemp("i2v-shipped")
    clips = save_captioned_clips(tmp_path_factory.mktemp("clips"))
    train_tiny_i2v_student(i2v_base, clips, shipped / "dmd2")
    copy_student(shipped / "dmd2", shipped / "dfd", "dfd")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("engine.models.students.SHIPPED_DIR", shipped)
        yield shipped


@pytest.fixture
def uploads(tmp_path) -> dict[str, Path]:
    """Two first frames as a browser uploads them (one another size than the model's), and a file that is
    not an image."""
    out = {}
    for name, seed, size in (("a", 1, 16), ("b", 2, 24)):
        out[name] = tmp_path / f"frame-{name}.png"
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(out[name])
    out["text"] = tmp_path / "notes.png"
    out["text"].write_text("not an image")
    return out


@pytest.fixture
def render_calls(monkeypatch) -> list[dict]:
    """engine.render, recording what each model was sampled from."""
    calls, real = [], engine.render

    def recording(base, prompt, seeds, **kw):
        calls.append({"lora": kw.get("lora_dir"), "image": kw.get("image"), "seeds": list(seeds)})
        return real(base, prompt, seeds, **kw)

    monkeypatch.setattr(engine, "render", recording)
    return calls


def test_compare_samples_the_teacher_and_both_students_from_the_same_uploaded_frame(
    data_dir, i2v_base, i2v_students, uploads, render_calls
):
    public, base = public_folder(data_dir), str(i2v_base)
    assert compare.student_choices(data_dir, base, "dmd2") == [("DMD2 (shipped)", "dmd2")]

    shown = {
        name: compare.compare(data_dir, public, base, "a red circle", 3, "dmd2", "dfd", steps=2, frame=uploads[name])
        for name in ("a", "b")
    }

    stored = {Path(c["image"]) for c in render_calls[:3]}
    assert len(render_calls) == 6 and len(stored) == 1 and all(c["seeds"] == [3] for c in render_calls)
    [frame] = stored  # one stored copy of the upload, read by all three: teacher, DMD2, DFD
    assert frame.parent == data_dir / "uploads" / "frames" and frame.suffix == ".png"
    assert {c["lora"] for c in render_calls[:3]} == {None, i2v_students / "dmd2", i2v_students / "dfd"}
    for slot in compare.SLOTS:  # another frame, same seed: every slot's video changes
        assert not np.array_equal(read_mp4(shown["a"].videos[slot]), read_mp4(shown["b"].videos[slot])), slot
    assert "NFE 4" in shown["a"].captions["dmd2"] and "all from the same first frame" in shown["a"].note

    again = compare.compare(data_dir, public, base, "a red circle", 3, "dmd2", "dfd", steps=2, frame=uploads["a"])
    assert again.composite == shown["a"].composite and len(render_calls) == 6  # cached by the frame's pixels


def test_a_frame_and_a_base_that_do_not_go_together_are_refused_before_sampling(
    data_dir, i2v_base, uploads, monkeypatch
):
    public, base = public_folder(data_dir), str(i2v_base)
    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("a refused request was sampled"))
    with pytest.raises(
        ValueError,
        match="^shapes-tiny is a text-to-video model: remove the first frame, or pick an image-to-video base$",
    ):
        compare.compare(data_dir, public, "shapes-tiny", "a red circle", 1, None, None, frame=uploads["a"])
    with pytest.raises(
        ValueError,
        match=f"^{base} is an image-to-video model: upload a first frame for the teacher "
        "and every student to start from$",
    ):
        compare.compare(data_dir, public, base, "a red circle", 1, None, None)
    with pytest.raises(
        ValueError,
        match="^the first frame notes.png is not an image this studio can read "
        r"\(UnidentifiedImageError\); upload a PNG or JPG$",
    ):
        compare.queue(data_dir, public, base, "a red circle", 1, None, None, 2, 5.0, uploads["text"])
    with pytest.raises(ValueError, match="is an image-to-video model: upload a first frame"):
        diversity.run(data_dir, public, base, "a cat", 2, ["teacher"], steps=2, features="")
    with gr.Blocks():
        tab = diversity.build(data_dir, public, base)
    with pytest.raises(gr.Error, match="shapes-tiny is a text-to-video model: remove the first frame"):
        tab["on_run"]("shapes-tiny", "a cat", 2, ["teacher"], False, "", str(uploads["a"]))
    assert jobs_api.list_jobs(data_dir) == []


def test_the_first_frame_box_follows_the_base(data_dir, i2v_base):
    public = public_folder(data_dir)
    for build in (compare.build, diversity.build):
        with gr.Blocks():
            on_i2v, on_t2v = build(data_dir, public, str(i2v_base)), build(data_dir, public, "shapes-tiny")
        assert on_i2v["frame"].visible is True and on_t2v["frame"].visible is False
        frame_u, button_u = on_t2v["show_frame"](str(i2v_base))
        assert frame_u == {"__type__": "update", "visible": True} and button_u["visible"] is False  # not the world
        frame_u, button_u = on_i2v["show_frame"]("shapes-tiny")
        assert frame_u == {"__type__": "update", "visible": False, "value": None} and button_u["visible"] is False
        assert all(u["visible"] is False for u in on_i2v["show_frame"]("no-such-model"))


def test_diversity_samples_every_model_and_seed_from_the_frame(
    data_dir, i2v_base, i2v_students, uploads, render_calls, monkeypatch
):
    monkeypatch.setattr(engine, "accelerator_present", lambda: False)
    with gr.Blocks():
        tab = diversity.build(data_dir, public_folder(data_dir), str(i2v_base))

    shown = tab["on_run"](str(i2v_base), "a cat", 2, ["teacher", "dmd2"], False, "", str(uploads["b"]))  # in-process

    table = shown[2]
    assert list(table.model) == ["teacher", "DMD2 (shipped)"] and list(table.NFE) == [100, 4]
    assert table.saturation.notna().all() and Path(shown[0]).is_file()
    assert [c["seeds"] for c in render_calls] == [[1, 2], [1, 2]]
    assert len({c["image"] for c in render_calls}) == 1 and render_calls[0]["image"] is not None


def test_compare_of_an_i2v_base_through_sample_jobs_gives_every_job_the_same_frame(
    data_dir, i2v_base, i2v_students, uploads, tmp_path
):
    public, base = public_folder(data_dir), str(i2v_base)
    result, pending = compare.queue(data_dir, public, base, "a dog", 4, "dmd2", None, 2, 5.0, str(uploads["a"]))
    configs = [jobs_api.get(data_dir, i).config for i in pending.job_ids]
    assert result is None and len(configs) == 2
    assert len({c["image"] for c in configs}) == 1 and Path(configs[0]["image"]).is_file()
    assert [c["seeds"] for c in configs] == [[4], [4]] and [c.get("lora") for c in configs][0] is None
    uploads["a"].unlink()  # gradio's copy of the upload may go: the jobs and the page read the stored frame

    worker = subprocess.run(
        [sys.executable, "-m", "engine", "worker", "--data-dir", str(data_dir), "--exit-when-idle", "--poll", "0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]

    result, progress = compare.poll(data_dir, public, pending)
    assert progress == "" and Path(result.composite).is_file() and "all from the same first frame" in result.note
    assert "NFE 4" in result.captions["teacher"] and "NFE 4" in result.captions["dmd2"]
    assert result.videos.get("dfd") is None and "No DFD student" in result.captions["dfd"]


def test_the_publish_tab_cards_an_i2v_student_with_its_captioned_training_previews(data_dir, i2v_students):
    from studio import publish

    body, shown, status = publish.preview(data_dir, public_folder(data_dir), "dmd2", "me/i2v-dmd2", "mit")

    assert "4-step image-to-video student LoRA" in body and "WanImageToVideoPipeline" in body
    prompts = json.loads((i2v_students / "dmd2" / "samples" / "previews.json").read_text())["prompts"]
    assert len(shown) == 8 and [caption for _, caption in shown][::4] == [f"{p} (step 2, seed 1)" for p in prompts]
    assert all(Path(path).is_relative_to(public_folder(data_dir)) for path, _ in shown) and "8 sample videos" in status
    with pytest.raises(ValueError, match="the image-to-video student dfd has no training previews"):
        publish.preview(data_dir, public_folder(data_dir), "dfd", "me/i2v-dfd", "mit")  # its copy left them out


def test_a_frame_from_the_world_is_measured_against_its_true_motion_frequencies(data_dir, mini_i2v_teacher, uploads):
    """On a shapes-world I2V base the button puts the world's frame for the prompt in the box, stored with its
    clip's factors; Diversity then counts motions and measures their TV against p(motion | frame). An upload
    of unknown factors gets the motions counted and no TV, and says why."""
    from dataclasses import asdict

    from studio import frames

    base, public = str(mini_i2v_teacher), public_folder(data_dir)
    with gr.Blocks():
        tab = diversity.build(data_dir, public, base)
    assert tab["frame"].visible is True and frames.from_world_shown(base)
    picked = frames.world_frame(data_dir, "a red shape")
    clip = engine.world.conditioning_clip("a red shape")
    assert np.array_equal(np.array(Image.open(picked)), engine.world.render(clip)[0])
    assert frames.factors_of(picked) == json.loads(json.dumps(asdict(clip)))
    assert frames.world_frame(data_dir, "a red shape") == picked  # the same frame, stored once
    with pytest.raises(ValueError, match="not a caption of the shapes world.*or upload a first frame"):
        frames.world_frame(data_dir, "a cat")

    world_run = diversity.run(data_dir, public, base, "a red shape", 3, ["teacher"], steps=2, frame=str(picked))
    row = world_run.table.iloc[0]
    assert 1 <= row["modes covered"] <= 4 and 0 <= row["mode TV"] <= 1
    upload_run = diversity.run(data_dir, public, base, "a red shape", 3, ["teacher"], steps=2, frame=str(uploads["a"]))
    assert "mode TV" not in upload_run.table.columns and "motions drawn from the uploaded frame" in upload_run.note
