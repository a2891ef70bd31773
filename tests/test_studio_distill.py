"""The Distill tab's callbacks, called directly with real parts: a real SQLite data folder, the tiny shapes
teacher of the test fixtures, and real students trained for one step (standing in for the shipped DMD2 and
DFD ones): the form's defaults and refusals, launching, DFD from a finished DMD2 job, uploads, the data check,
data-set and run config files. Jobs: test_studio_jobs.py; Publish: test_studio_publish.py; Compare and
Diversity: test_studio_compare.py, test_studio_diversity.py and test_studio_lineups.py."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

import engine
import engine.jobs as jobs_api
import storage
from conftest import copy_student
from engine.media.video import write_mp4
from form_helpers import captioned_clips, form
from studio import distill, distill_request


def test_distill_defaults_are_the_papers_with_the_shapes_preset_for_shapes_tiny():
    paper, shapes = distill.defaults_for("Wan-AI/Wan2.1-T2V-1.3B-Diffusers"), distill.defaults_for("shapes-tiny")
    assert paper["lora_rank"] == 32 and paper["lr_fake"] == 1e-5 and paper["data_forcing_prob"] == 0.5
    assert shapes["lora_rank"] == 16 and shapes["batch_size"] == 8 and shapes["data_forcing_prob"] == 0.5


def test_dfd_without_a_student_is_refused_inline_with_the_papers_reason_and_nothing_is_queued(data_dir):
    message = distill.check(data_dir, form(method="dfd"), None, None)
    assert message.startswith("**Cannot launch:** DFD is a post-training stage") and "Eq. 7" in message

    launched, job_id = distill.launch(data_dir, form(method="dfd"), None, None)
    assert job_id is None and "post-training stage" in launched
    assert not (data_dir / "studio.db").exists() or jobs_api.list_jobs(data_dir) == []


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"steps": 0}, "steps must be between 1 and 1000000"),
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"batch_size": None}, "batch_size is empty"),
        ({"t_list": "0.9, half, 0"}, "t_list '0.9, half, 0': write numbers separated by commas"),
        ({"t_list": "0.5, 0.9, 0"}, "t_list must decrease strictly"),
        ({"data_forcing_prob": 1.5}, "data_forcing_prob must be in [0, 1]"),
        ({"base": "./no/such/teacher"}, "is not a folder"),
        ({"base": "not a model"}, "unknown model"),
        ({"data_source": "folder", "data_folder": ""}, "no data folder given"),
        ({"data_source": "folder", "data_folder": "/no/such/folder"}, "is not a folder on this machine"),
        ({"data_source": "upload"}, "no zip uploaded yet"),
    ],
)
def test_invalid_choices_are_explained_in_one_sentence(data_dir, overrides, expected):
    message = distill.check(data_dir, form(**overrides), None, None)
    assert message.startswith("**Cannot launch:**") and expected in message, message
    assert message.count("\n") == 0


def test_launch_queues_a_distill_job_with_exactly_the_form_settings(data_dir):
    message, job_id = distill.launch(data_dir, form(steps=2, batch_size=2, student_update_freq=2), None, None)

    job = jobs_api.get(data_dir, job_id)
    assert message.startswith(f"**Queued** job `{job_id}`")
    assert (job.kind, job.state) == ("distill", "queued")
    assert job.config["steps"] == 2 and job.config["batch_size"] == 2 and job.config["lora_rank"] == 16
    assert job.config["t_list"] == [0.999, 0.937, 0.833, 0.624, 0.0] and job.config["data"] == "shapes"


def test_a_launched_request_is_validated_once_and_its_job_loads_it_checking_only_the_files(data_dir, monkeypatch):
    from engine.config.distill import DistillConfig
    from engine.jobs.kinds import get_kind, load_config

    calls = {"validate": 0, "check_files": 0}
    for name in calls:

        def counted(self, original=getattr(DistillConfig, name), name=name):  # noqa: B008 (bound now, per name)
            calls[name] += 1
            return original(self)

        monkeypatch.setattr(DistillConfig, name, counted)
    message, job_id = distill.launch(data_dir, form(data_forcing_prob=0.25), None, None)
    assert message.startswith("**Queued**") and calls == {"validate": 1, "check_files": 1}  # validate() reads the files

    config = load_config(get_kind("distill"), jobs_api.get(data_dir, job_id).config)  # what the job process runs
    assert type(config) is DistillConfig and config.data_forcing_prob == 0.25
    assert calls == {"validate": 1, "check_files": 2}


def test_the_task_is_on_the_form_follows_the_base_and_a_mismatch_is_refused_before_queueing(data_dir, tmp_path):
    from tiny_wan import save_tiny_wan_i2v

    i2v = str(save_tiny_wan_i2v(tmp_path / "i2v"))  # real diffusers classes, random weights
    message, job_id = distill.launch(data_dir, form(task="i2v"), None, None)
    assert job_id is None and message == (
        "**Cannot launch:** task i2v needs an image-to-video base, but shapes-tiny "
        "is a text-to-video model; choose t2v, or another base."
    )
    assert distill.check(data_dir, form(base=i2v, task="t2v"), None, None).startswith(
        f"**Cannot launch:** task t2v needs a text-to-video base, but {i2v} is an image-to-video model"
    )
    assert not (data_dir / "studio.db").exists() or jobs_api.list_jobs(data_dir) == []

    with gr.Blocks():
        tab = distill.build(data_dir)
    assert tab["base_fn"](i2v, None, "t2v")[-1]["value"] == "i2v"  # picking an I2V base sets the task
    assert tab["base_fn"]("shapes-tiny", None, "i2v")[-1]["value"] == "t2v"
    assert tab["base_fn"]("someone/not-fetched", None, "i2v")[-1]["value"] == "i2v"  # unknown here: kept
    assert tab["base_fn"]("shapes-tiny", None, "ar")[-1]["value"] == "ar"  # a causal student is text-to-video
    assert tab["base_fn"](i2v, None, "ar")[-1]["value"] == "i2v"

    captioned_clips(tmp_path / "clips")
    values = form(
        base=i2v,
        task="i2v",
        data_source="folder",
        data_folder=str(tmp_path / "clips"),
        batch_size=2,
        num_frames=5,
        height=16,
        width=16,
    )
    message, job_id = distill.launch(data_dir, values, None, None)
    job = jobs_api.get(data_dir, job_id)
    assert (
        message.startswith(f"**Queued** job `{job_id}`: DMD2 image-to-video on `{i2v}`") and job.config["task"] == "i2v"
    )
    path = tmp_path / "run.yaml"
    path.write_text(engine.run_config_yaml(engine.build_distill_config(values=job.config, check=False)))
    loaded, _ = distill.form_from_config(str(path), i2v)
    assert loaded["task"] == "i2v" and loaded["base"] == i2v


def _finished_distill_job(data_dir: Path, student_dir: Path) -> str:
    """A distill job that succeeded with `student_dir` as its LoRA (made through storage, as the runner does)."""
    job = jobs_api.submit(
        data_dir, "distill", {"base": json.loads((student_dir / "lora_config.json").read_text())["base"], "steps": 5}
    )
    db = storage.open_database(data_dir)
    assert storage.jobs.claim_next(db).id == job.id
    copy_student(student_dir, Path(job.dir) / "lora")
    storage.outputs.record_progress(db, job.id, 1, 1, {"loss_student": 0.5, "loss_fake": 0.25})
    storage.outputs.add_artifact(db, job.id, "lora", Path(job.dir) / "lora" / "pytorch_lora_weights.safetensors")
    storage.jobs.transition(db, job.id, "succeeded")
    return job.id


def test_dfd_starts_from_a_finished_dmd2_job_with_it_as_parent(data_dir, mini_students, mini_teacher_dir):
    parent = _finished_distill_job(data_dir, mini_students / "dmd2")
    base = str(mini_teacher_dir)
    assert [k for _, k in distill.init_choices(data_dir, base)] == ["dmd2", parent]  # shipped first, then jobs

    wrong_rank = distill.check(data_dir, form(base=base, method="dfd", init_student=parent), None, None)
    assert "has LoRA rank 4, not 16; set the LoRA rank to 4" in wrong_rank

    message, job_id = distill.launch(
        data_dir, form(base=base, method="dfd", init_student=parent, steps=5, lora_rank=4), None, None
    )

    job = jobs_api.get(data_dir, job_id)
    assert message.startswith("**Queued**") and job.parent_id == parent
    assert job.config["method"] == "dfd" and job.config["init"] == str(
        Path(data_dir).resolve() / "jobs" / parent / "lora"
    )
    assert job.config["lora_rank"] == 4


def test_a_dfd_student_cannot_be_the_start_of_dfd(data_dir, mini_students, mini_teacher_dir):
    message = distill.check(data_dir, form(base=str(mini_teacher_dir), method="dfd", init_student="dfd"), None, None)
    assert "is a dfd student; DFD starts from a DMD2 student" in message


def test_an_uploaded_zip_and_lora_feed_the_form(data_dir, tmp_path, mini_students):
    write_mp4(tmp_path / "a.mp4", np.zeros((24, 32, 32, 3), np.uint8), fps=8)  # 3 s: one 17-frame window at 8 fps
    upload = tmp_path / "clips.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        archive.write(tmp_path / "a.mp4", "clips/a.mp4")
        archive.writestr("clips/a.txt", "a red circle")
        archive.writestr("clips/b.mp4", b"\x00" * 64)
        archive.writestr("clips/b.txt", "a blue square")
    folder, note = distill.upload_data(data_dir, str(upload))
    assert note.startswith("**Received:** 1 usable clip of 2 videos; skipped: b.mp4 (not a readable video")
    assert Path(folder).is_relative_to(data_dir.resolve() / "uploads")
    assert distill.check(data_dir, form(data_source="upload", batch_size=1), folder, None).startswith("**Ready.**")
    refused = distill.check(data_dir, form(data_source="upload", batch_size=2), folder, None)
    assert f"found 1 usable clip in {Path(folder).name}, a batch needs 2: add clips or lower batch_size" in refused

    lora, note = distill.upload_lora(data_dir, str(mini_students / "dmd2" / "pytorch_lora_weights.safetensors"))
    assert note.startswith("**Received:**")
    message = distill.check(data_dir, form(method="dfd", init_source="upload", lora_rank=4), None, lora)
    assert message.startswith("**Ready.** DFD on `shapes-tiny` with the shapes world from")

    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"nope")
    assert distill.upload_data(data_dir, str(bad)) == (
        None,
        "**Upload refused:** bad.zip is not a zip file; upload a .zip.",
    )


def test_the_data_check_names_every_skipped_file_and_refuses_fewer_clips_than_a_batch(data_dir, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name in ("a", "b"):
        write_mp4(folder / f"{name}.mp4", np.zeros((24, 32, 32, 3), np.uint8), fps=8)
        (folder / f"{name}.txt").write_text(f"clip {name}")
    write_mp4(folder / "short.mp4", np.zeros((8, 32, 32, 3), np.uint8), fps=8)  # 1 s: shorter than a window
    (folder / "short.txt").write_text("a short clip")
    (folder / "latin1.mp4").write_bytes((folder / "a.mp4").read_bytes())
    (folder / "latin1.txt").write_bytes("un caf\u00e9".encode("latin-1"))
    for i in range(12):
        (folder / f"junk{i:02d}.bin").write_bytes(b"x")
    values = form(data_source="folder", data_folder=str(folder), batch_size=4)
    # The live check does not read the videos (a scan costs an ffmpeg call per video); Launch does.
    assert distill.check(data_dir, values, None, None).startswith("**Ready.**")
    message, job_id = distill.launch(data_dir, values, None, None)
    assert job_id is None and "found 2 usable clips in clips, a batch needs 4: add clips or lower batch_size" in message
    note = distill.folder_note(str(folder), "shapes-tiny")
    assert note.startswith("**Data:** 2 usable clips of 4 videos; skipped: ")
    assert "short.mp4 (too short: 1.00 s; a window is 17 frames at 8 fps (2.12 s))" in note
    assert "latin1.mp4 (latin1.txt is not UTF-8 text" in note and note.endswith(", and 4 more.")
    # After the scan the live check knows the folder too; a batch of 2 fits, and the job caches under the data dir.
    assert "a batch needs 4" in distill.check(data_dir, values, None, None)
    message, job_id = distill.launch(data_dir, {**values, "batch_size": 2}, None, None)
    assert jobs_api.get(data_dir, job_id).config["cache_dir"] == str(data_dir.resolve() / "cache")
    assert "cache_dir" not in distill.KNOBS  # no control: a visitor cannot point the server's writes elsewhere


def test_a_typed_data_set_config_is_the_runs_data_checked_as_the_command_line_checks_it(data_dir, tmp_path):
    captioned_clips(tmp_path / "clips")
    config = tmp_path / "dataset.yaml"
    config.write_text("folders:\n  - path: clips\n    repeats: 2\n")
    values = form(data_source="folder", data_folder=str(config), batch_size=2)
    assert distill.check(data_dir, values, None, None).startswith("**Ready.** DMD2 on `shapes-tiny` with dataset.yaml:")
    assert distill.folder_note(str(config), "shapes-tiny") == "**Data:** 2 usable clips of 2 videos."
    message, job_id = distill.launch(data_dir, {**values, "batch_size": 3}, None, None)
    assert job_id is None and "found 2 usable clips in dataset.yaml, a batch needs 3" in message
    message, job_id = distill.launch(data_dir, values, None, None)
    assert message.startswith("**Queued**") and jobs_api.get(data_dir, job_id).config["data"] == str(config.resolve())
    assert engine.build_distill_config(values=jobs_api.get(data_dir, job_id).config).data == str(config.resolve())

    for text, expected in [
        ("folders:\n  - path: clips\n    repeats: two\n", "folders[0].repeats must be a whole number >= 1, got 'two'"),
        ("folders:\n  - path: nowhere\n", "folders[0].path 'nowhere' is not a folder"),
        ("folders: [clips\n", "not a valid YAML data-set config"),
    ]:
        config.write_text(text)
        message = distill.check(data_dir, values, None, None)
        assert message.startswith(f"**Cannot launch:** {config}: {expected}") and "\n" not in message, message
        assert distill.folder_note(str(config), "shapes-tiny").startswith(f"**Data refused:** {config}: {expected}")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a config")
    assert (
        "is not 'shapes', a folder of videos with captions, or a data-set config (.yaml, .yml, .toml)"
        in distill.check(data_dir, form(data_source="folder", data_folder=str(notes)), None, None)
    )


def test_an_uploaded_data_set_config_is_kept_with_the_studio_and_needs_absolute_folders(data_dir, tmp_path):
    clips = captioned_clips(tmp_path / "clips")
    upload = tmp_path / "sent" / "my set.yaml"
    upload.parent.mkdir()
    upload.write_text(f"folders:\n  - path: {clips}\n    caption: a fixed caption\n")
    saved, note = distill.upload_data_config(data_dir, str(upload))
    assert Path(saved).is_relative_to(data_dir.resolve() / "uploads") and Path(saved).read_text() == upload.read_text()
    assert note == "**Received** my_set.yaml: 2 usable clips of 2 videos."
    upload.unlink()  # gradio's temporary file goes; the job reads the kept copy
    values = form(data_source="folder", data_folder=saved, batch_size=2)
    message, job_id = distill.launch(data_dir, values, None, None)
    assert message.startswith("**Queued**") and jobs_api.get(data_dir, job_id).config["data"] == saved

    kept = sorted((data_dir / "uploads" / "dataset-config").iterdir())
    for name, text, expected in [
        (
            "rel.yaml",
            "folders:\n  - path: clips\n",
            "rel.yaml: folders[0].path 'clips' is relative, but this copy of "
            "the config has no folder of its own (an upload): give the folder's absolute path",
        ),
        (
            "typo.toml",
            f'[[folders]]\npath = "{clips}"\ncaptoin = "x"\n',
            "typo.toml: folders[0].captoin is not a folder setting",
        ),
        ("run.json", "{}", "run.json is not a data-set config; upload a .yaml, .yml, .toml file"),
    ]:
        (tmp_path / name).write_text(text)
        saved, note = distill.upload_data_config(data_dir, str(tmp_path / name))
        assert saved is None and note.startswith(f"**Config refused:** {expected}"), note
        assert "\n" not in note and str(data_dir) not in note  # the file as the user named it, not the kept copy
    assert sorted((data_dir / "uploads" / "dataset-config").iterdir()) == kept  # nothing left of a refused one


def test_an_unreachable_hub_base_is_refused_at_launch_and_nothing_is_queued(data_dir):
    hub_form = form(base="no-such-user/no-such-model")
    assert distill.check(data_dir, hub_form, None, None).startswith("**Ready.**")  # the live check stays offline
    message, job_id = distill.launch(data_dir, hub_form, None, None)
    assert "could not fetch 'no-such-user/no-such-model' from the Hugging Face Hub" in message and job_id is None
    assert jobs_api.list_jobs(data_dir) == []


def test_an_uploaded_run_config_fills_the_form_and_the_check_passes(data_dir, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("base: shapes-tiny\nsteps: 12\nbatch_size: 4\nlora_rank: 8\nt_list: [0.999, 0.7, 0.0]\n")

    values, note = distill.form_from_config(str(path), "shapes-tiny")
    assert note == "**Loaded** run.yaml into the form."
    assert (values["steps"], values["batch_size"], values["lora_rank"], values["t_list"]) == (12, 4, 8, "0.999, 0.7, 0")
    assert values["data_source"] == "shapes" and values["guidance"] == distill.defaults_for("shapes-tiny")["guidance"]
    filled = {**form(), **{k: v for k, v in values.items() if k in distill.FORM}}
    assert distill.check(data_dir, filled, None, None).startswith("**Ready.** DMD2 on `shapes-tiny`")

    toml = tmp_path / "run.toml"
    toml.write_text('method = "dmd2"\nsteps = 9\n')
    assert distill.form_from_config(str(toml), "shapes-tiny")[0]["steps"] == 9


@pytest.mark.parametrize(
    "text, expected",
    [
        ("steps: 5\nstepz: 3\n", "bad.yaml: unknown setting 'stepz'"),
        ("steps: many\n", "bad.yaml: steps"),
        ("data_forcing_prob: 1.5\n", "bad.yaml: data_forcing_prob must be in [0, 1]"),
        ("steps: [1\n", "bad.yaml: not valid YAML"),
    ],
)
def test_a_bad_run_config_is_refused_in_one_line_naming_the_setting_and_the_file(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    values, note = distill.form_from_config(str(path), "shapes-tiny")
    assert values is None and note.startswith("**Config refused:** ") and expected in note, note
    assert "\n" not in note and str(tmp_path) not in note


def test_a_refused_config_changes_nothing_in_the_form(data_dir, tmp_path):
    with gr.Blocks():
        tab = distill.build(data_dir)
    path = tmp_path / "bad.json"
    path.write_text('{"lora_rank": "wide"}')
    updates = tab["config_fn"](str(path), "shapes-tiny")
    assert len(updates) == len(tab["config_outputs"]) and updates[1].startswith(
        "**Config refused:** bad.json: lora_rank"
    )
    assert all(u == gr.skip() for i, u in enumerate(updates) if i != 1)

    path.write_text('{"lora_rank": 4, "method": "dmd2"}')
    loaded, note, *fields = tab["config_fn"](str(path), "shapes-tiny")
    assert loaded["lora_rank"] == 4 and note == "**Loaded** bad.json into the form."
    shown = dict(zip([n for n in distill.FORM if n not in ("init_source", "init_student")], fields))
    assert shown["lora_rank"]["value"] == 4 and shown["base"]["value"] == "shapes-tiny"


def test_a_dfd_run_too_short_for_its_data_forcing_prob_is_warned_about_before_launch():
    def config(**values):
        return engine.build_distill_config(values={"base": "shapes-tiny", "method": "dfd", **values}, check=False)

    warning = distill_request.short_run_warning(config(steps=30, student_update_freq=5, data_forcing_prob=0.5))
    assert "about 3.0 of its 6 student updates" in warning and "2% of such runs use none" in warning
    assert "use at least 50 steps" in warning  # 10 updates at p 0.5: about 5 use a real clip
    assert distill_request.short_run_warning(config(steps=50, student_update_freq=5, data_forcing_prob=0.5)) is None
    assert "no student update uses a real clip" in distill_request.short_run_warning(
        config(steps=500, data_forcing_prob=0.0)
    )
    assert distill_request.short_run_warning(config(steps=30, student_update_freq=5, data_forcing_blend=True)) is None
    assert distill_request.short_run_warning(config(steps=30, method="dmd2")) is None
