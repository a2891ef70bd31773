"""A public studio bounds what a visitor may ask of the machine (studio/limits.py): an over-limit form, a data-set
config's repeats, a full queue, a short disk, the small-entry zip bomb and a zip's scan are each refused in one
line before anything is queued or kept, and the owner's environment variables move each bound. The caps on
queued jobs are tests/test_public_job_caps.py; the janitor tests/test_janitor.py."""

from __future__ import annotations

import os
import zipfile

import pytest

from engine.jobs import list_jobs
from form_helpers import captioned_clips, form
from public_helpers import public_access as _public
from studio import distill
from studio.access import LOCAL
from studio.files import uploads_folder


@pytest.mark.parametrize(
    "values, message",
    [
        (
            {"steps": 1_000_000},
            (
                "steps 1000000 is more than this public studio allows: at most 5000 (the owner can "
                "change it with DFD_STUDIO_MAX_STEPS)"
            ),
        ),
        ({"batch_size": 4096}, "batch_size 4096 is more than this public studio allows: at most clips per update 16"),
        ({"batch_size": 8, "grad_accum": 4}, "batch_size 8 x grad_accum 4 is more than this public studio allows"),
        ({"checkpoint_every": 1}, "checkpoint_every 1 is more often than this public studio allows: every 50 steps"),
        (
            {"preview_every": 1},
            ("preview_every 1 is more often than this public studio allows: every 50 steps at most often, or 0"),
        ),
        (
            {"log_with": "wandb"},
            ("log_with wandb is off on this public studio (a tracker logs to the owner's account): choose none"),
        ),
        ({"data": "folder", "num_frames": 4093}, "num_frames 4093 is more than this public studio allows: at most 81"),
        ({"data": "folder", "height": 4096}, "height 4096 is more than this public studio allows: at most 832"),
    ],
)
def test_an_over_limit_form_is_refused_on_a_public_studio_and_taken_locally(data_dir, values, message):
    values = dict(values)
    if values.pop("data", None):
        values.update(data_source="folder", data_folder=str(captioned_clips(uploads_folder(data_dir) / "clips")))
    values = {"batch_size": 2, **values}
    launched, job_id = distill.launch(data_dir, form(**values), None, None, _public(data_dir))
    assert job_id is None and launched.startswith(f"**Cannot launch:** {message}"), launched
    assert list_jobs(data_dir) == []
    if "num_frames" not in values and "height" not in values:  # the local check of those reads the clips' length
        assert distill.check(data_dir, form(**values), None, None, LOCAL).startswith("**Ready.**")


def test_the_owner_moves_each_bound_by_environment_variables(data_dir):
    owner = _public(
        data_dir,
        DFD_STUDIO_MAX_STEPS="2000000",
        DFD_STUDIO_MAX_BATCH="64",
        DFD_STUDIO_MIN_INTERVAL="1",
        DFD_STUDIO_TRACKERS="tensorboard",
    )
    values = {
        "steps": 1_000_000,
        "batch_size": 8,
        "grad_accum": 4,
        "checkpoint_every": 1,
        "preview_every": 1,
        "log_with": "tensorboard",
    }
    assert distill.check(data_dir, form(**values), None, None, owner).startswith("**Ready.**")
    assert "log_with wandb is off" in distill.check(data_dir, form(log_with="wandb"), None, None, owner)
    with pytest.raises(ValueError, match="DFD_STUDIO_MAX_STEPS='many' is not a whole number"):
        _public(data_dir, DFD_STUDIO_MAX_STEPS="many")


def test_a_data_set_config_repeats_past_the_public_bound_are_refused(data_dir, tmp_path):
    from engine.datasets.dataset_config import check_data_spec
    from engine.datasets.sources import DataError

    clips = captioned_clips(uploads_folder(data_dir) / "clips")
    config = uploads_folder(data_dir) / "set.yaml"
    config.write_text("folders:\n  - path: clips\n    repeats: 11\n")
    refused = (
        f"{config}: folders[0].repeats 11 is more than this public studio allows: at most 10 (the owner can "
        "change it with DFD_STUDIO_MAX_REPEATS)."
    )
    values = form(data_source="folder", data_folder=str(config), batch_size=2)
    assert distill.check(data_dir, values, None, None, _public(data_dir)) == f"**Cannot launch:** {refused}"
    assert distill.folder_note(str(config), "shapes-tiny", access=_public(data_dir)) == f"**Data refused:** {refused}"
    assert distill.check(data_dir, values, None, None, _public(data_dir, DFD_STUDIO_MAX_REPEATS="20")).startswith(
        "**Ready.**"
    )
    upload = tmp_path / "sent.yaml"
    upload.write_text(f"folders:\n  - path: {clips}\n    repeats: 11\n")
    saved, note = distill.upload_data_config(data_dir, str(upload), access=_public(data_dir))
    assert saved is None and note.startswith("**Config refused:** sent.yaml: folders[0].repeats 11 is more than")
    assert not any((uploads_folder(data_dir) / "dataset-config").rglob("*.yaml"))  # nothing of the refusal kept
    config.write_text("folders:\n  - path: clips\n    repeats: 1000000\n")  # any user: entries x repeats in memory
    with pytest.raises(DataError, match=r"folders\[0\].repeats must be at most 1000, got 1000000"):
        check_data_spec(str(config))


def test_a_full_queue_refuses_another_launch(data_dir):
    public = _public(data_dir, DFD_STUDIO_MAX_QUEUED="2")
    for _ in range(2):
        assert distill.launch(data_dir, form(), None, None, public)[1] is not None
    message, job_id = distill.launch(data_dir, form(), None, None, public)
    assert job_id is None and message == (
        "**Cannot launch:** 2 jobs are already waiting in this public studio's "
        "queue, the most it holds; launch again when one has started (the owner "
        "can change it with DFD_STUDIO_MAX_QUEUED)."
    )
    assert len(list_jobs(data_dir)) == 2
    assert distill.launch(data_dir, form(), None, None, LOCAL)[1] is not None  # the owner's own studio: no cap


def test_a_short_disk_refuses_a_job_and_an_upload_with_nothing_written(data_dir, tmp_path, monkeypatch):
    clip = captioned_clips(tmp_path / "clips", names=("a",))
    upload = tmp_path / "clips.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for path in clip.iterdir():
            archive.write(path, path.name)
    monkeypatch.setenv("DFD_STUDIO_MIN_FREE_MB", str(10**12))  # more than any disk has
    message, job_id = distill.launch(data_dir, form(), None, None, _public(data_dir))
    assert job_id is None and message.startswith("**Cannot launch:** this machine's disk has ")
    assert "MB free, less than the 1000000000000 MB the studio keeps free, so the job cannot start now" in message
    assert list_jobs(data_dir) == []
    kept, note = distill.upload_data(data_dir, str(upload))
    assert kept is None and note.startswith("**Upload refused:** unpacking the zip needs ")
    assert "which would leave less than the" in note
    assert [p for p in uploads_folder(data_dir).rglob("*") if p.is_file()] == []


def test_the_small_entry_zip_bomb_is_refused_by_the_whole_zips_ratio(data_dir, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(40):  # each under the per-entry check's 1 MiB, together 40 MiB
            archive.writestr(f"clip{i}.mp4", b"\x00" * (1024**2 - 1))
            archive.writestr(f"clip{i}.txt", b"a shape")
    ratio = 40 * (1024**2 - 1) / bomb.stat().st_size
    assert ratio > 500  # measured 2026-12-04: 850x (49,342 bytes unpacking to 40 MiB)
    kept, note = distill.upload_data(data_dir, str(bomb), access=_public(data_dir))
    assert kept is None and note == (
        f"**Upload refused:** the zip unpacks to {ratio:.0f}x its size (more than 20x; "
        "videos barely compress): it looks like a zip bomb, refusing it (the owner can change it with "
        "DFD_STUDIO_MAX_ZIP_RATIO)."
    )
    assert [p for p in uploads_folder(data_dir).rglob("*") if p.is_file()] == []


def test_a_public_scan_reads_a_bounded_number_of_video_headers(data_dir, tmp_path, monkeypatch):
    from engine.datasets import video_windows

    clips = captioned_clips(uploads_folder(data_dir) / "many", names=("a", "b", "c", "d"))
    probed = []
    real_probe = video_windows.probe
    monkeypatch.setattr(video_windows, "probe", lambda path, *a: probed.append(path.name) or real_probe(path, *a))
    note = distill.folder_note(str(clips), "shapes-tiny", access=_public(data_dir, DFD_STUDIO_MAX_SCAN="1"))
    assert probed == ["a.mp4"]
    assert note == (
        "**Data:** 4 usable clips of 4 videos; 3 of them not opened here (counted as one window each; the "
        "job reads them when it runs)."
    )
    assert distill.folder_note(str(clips), "shapes-tiny", access=LOCAL) == "**Data:** 4 usable clips of 4 videos."
    assert len(probed) == 5


def test_visitors_may_not_read_the_data_dir_beyond_uploads(data_dir):
    public = _public(data_dir)
    jobs = data_dir / "jobs"
    jobs.mkdir(parents=True)
    message = distill.check(data_dir, form(data_source="folder", data_folder=str(jobs)), None, None, public)
    assert message.startswith(
        f"**Cannot launch:** {jobs} is outside the folders this studio may read ({uploads_folder(data_dir)})"
    )


def test_a_run_config_naming_paths_a_visitor_may_not_read_is_refused_unprobed(data_dir, tmp_path):
    outside = captioned_clips(tmp_path / "outside")
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {outside}\nbatch_size: 2\n")
    values, note = distill.form_from_config(str(config), "shapes-tiny", _public(data_dir), data_dir)
    assert values is None and note.startswith(f"**Config refused:** run.yaml: {outside} is outside the folders")
    values, note = distill.form_from_config(str(config), "shapes-tiny", LOCAL, data_dir)
    assert values["data_folder"] == str(outside)
    inside = uploads_folder(data_dir) / "set.yaml"  # a data-set config a visitor may name, naming a folder elsewhere
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text(f"folders:\n  - path: {tmp_path / 'absent'}\n")
    config.write_text(f"data: {inside}\n")
    values, note = distill.form_from_config(str(config), "shapes-tiny", _public(data_dir), data_dir)
    assert values is None  # "is outside", not "is not a folder": the named folder is not even probed
    assert note.startswith(f"**Config refused:** run.yaml: {inside}: folders[0].path {tmp_path / 'absent'} is outside")


def test_a_public_compare_samples_no_longer_clips_than_a_run_may_train_on(data_dir):
    from studio import compare
    from studio.files import public_folder

    request = (data_dir, public_folder(data_dir), "shapes-tiny", "a red circle", 1, None, None, 50, 5.0, None, 161)
    with pytest.raises(ValueError) as refused:
        compare.queue(*request, access=_public(data_dir))
    assert str(refused.value) == (
        "Video frames 161 is more than this public studio allows: at most 81 (the owner can change it with "
        "DFD_STUDIO_MAX_FRAMES)"
    )
    assert list_jobs(data_dir) == []
    assert compare.queue(*request, access=_public(data_dir, DFD_STUDIO_MAX_FRAMES="161"))[1] is not None
    assert compare.queue(*request[:-1], 0, access=_public(data_dir))[1] is not None  # the model's own length


def test_every_limit_the_code_reads_has_its_default_and_variable_in_the_security_table():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readers = [
        "studio/limits.py",
        "studio/identity.py",
        "studio/janitor.py",
        "studio/__init__.py",
        "engine/distill/uploads.py",
        "engine/jobs/disk.py",
        "app.py",
    ]
    code = "\n".join((root / path).read_text() for path in readers)
    limits = set(re.findall(r"\bDFD_STUDIO_(?:MAX|MIN|KEEP|QUEUE|TRACKERS)\w*", code))
    assert {"DFD_STUDIO_MAX_ACTIVE_JOBS", "DFD_STUDIO_MAX_ZIP_ENTRIES", "DFD_STUDIO_QUEUE_SIZE"} <= limits
    doc = (root / "docs/security.md").read_text()
    table = doc.split("## Limits and the owner's overrides")[1].split("\n## ")[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        for name in re.findall(r"`(DFD_STUDIO_\w+)`", cells[2] if len(cells) == 4 else ""):
            rows[name] = cells
    assert sorted(limits - set(rows)) == []  # each has a row
    assert all(cells[0] and cells[1] and cells[3] in ("public", "every") for cells in rows.values())


def test_the_owner_moves_a_zips_entry_count_and_entry_ratio_and_the_refusal_names_the_variable(tmp_path):
    from engine.distill.uploads import Limits, UploadError, extract_dataset

    upload = tmp_path / "four.zip"
    with zipfile.ZipFile(upload, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("a.mp4", "a.txt", "b.mp4", "b.txt"):
            archive.writestr(name, os.urandom(64))
    limits = Limits.from_env({"DFD_STUDIO_MAX_ZIP_ENTRIES": "3", "DFD_STUDIO_MAX_ENTRY_RATIO": "50"})
    assert (limits.max_entries, limits.max_ratio) == (3, 50.0)
    with pytest.raises(UploadError) as refused:
        extract_dataset(upload, tmp_path / "uploads", limits)
    assert str(refused.value) == (
        "the zip has 4 entries; at most 3 are accepted (the owner can change it with DFD_STUDIO_MAX_ZIP_ENTRIES)"
    )
    assert [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == []  # nothing of it kept
