"""Caption tables and data-set configs cannot make the server read a file outside their folder: a table row or a
`captions:` setting naming /etc/hostname, ../outside/secret.mp4 or a link out of the folder is refused with its
row and file named, before that file is looked at, for every user: the engine's listing, the command line, an
uploaded zip and the public studio's folder box (engine/datasets/sources.py, engine/datasets/dataset_config.py)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from conftest import run_engine
from engine.datasets.dataset_config import check_data_spec, scan_folder
from engine.datasets.sources import DataError, list_folder
from engine.media.video import write_mp4
from form_helpers import captioned_clips, form
from studio import access_from_env, distill
from studio.files import uploads_folder


def _clip(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, np.zeros((24, 32, 32, 3), np.uint8), fps=8)  # one 17-frame window at 8 fps
    return path


def _outside(tmp_path):
    """A real video outside the data folder, and the data folder with one clip of its own."""
    secret = _clip(tmp_path / "outside" / "secret.mp4")
    folder = tmp_path / "data"
    _clip(folder / "a.mp4")
    return folder, secret


@pytest.mark.parametrize("named", ["/etc/hostname", "../outside/secret.mp4", "link/secret.mp4", "SECRET_ABS"])
def test_a_captions_csv_row_naming_a_file_outside_its_folder_refuses_the_folder(tmp_path, named):
    folder, secret = _outside(tmp_path)
    (folder / "link").symlink_to(secret.parent)  # inside by name, outside once resolved
    named = str(secret) if named == "SECRET_ABS" else named
    (folder / "captions.csv").write_text(f"file,caption\na.mp4,clip a\n{named},a secret\n")
    message = (
        f"{folder}: captions.csv line 3 names {named!r}, which is outside the folder; name each file by its "
        "path inside the folder (a.mp4 or clips/a.mp4), and move files from elsewhere into it"
    )
    with pytest.raises(DataError) as err:
        list_folder(folder)
    assert str(err.value) == message
    with pytest.raises(DataError, match="line 3 names"):
        scan_folder(folder)  # the studio's scan: no ffprobe of the named file, no note naming what exists


def test_a_jsonl_row_outside_is_refused_and_paths_inside_are_taken(tmp_path):
    folder, _ = _outside(tmp_path)
    _clip(folder / "clips" / "b.mp4")
    rows = [
        {"file": "a.mp4", "caption": "clip a"},
        {"file": "clips/b.mp4", "caption": "clip b"},
        {"file": "clips/../a.mp4", "caption": "a again, by a path that stays inside"},
    ]
    (folder / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert sorted(c.path.name for c in list_folder(folder).clips) == ["a.mp4", "a.mp4", "b.mp4"]
    with (folder / "captions.jsonl").open("a") as table:
        table.write(json.dumps({"file": "clips/../../outside/secret.mp4", "caption": "x"}) + "\n")
    with pytest.raises(
        DataError,
        match=r"captions.jsonl line 4 names 'clips/../../outside/secret.mp4', which is "
        "outside the folder",
    ):
        list_folder(folder)


def test_a_data_set_config_cannot_name_a_captions_table_outside_its_folder(tmp_path):
    folder, secret = _outside(tmp_path)
    table = secret.parent / "captions.csv"
    table.write_text("file,caption\nsecret.mp4,a secret\n")
    for named in (str(table), "../outside/captions.csv"):
        config = tmp_path / "dataset.yaml"
        config.write_text(f"folders:\n  - path: data\n    captions: {named}\n")
        with pytest.raises(DataError) as err:
            check_data_spec(str(config))
        assert str(err.value) == (
            f"{config}: folders[0].captions {named!r} is outside the folder {folder}; name a "
            "table inside it (captions.csv or sub/captions.csv)"
        )
    with pytest.raises(DataError, match="the captions setting names '../outside/captions.csv', which is outside"):
        list_folder(folder, captions="../outside/captions.csv")  # the listing's own check, for callers without a config


def test_the_command_line_refuses_a_table_naming_a_file_elsewhere_with_its_row_and_file(tmp_path):
    folder, _ = _outside(tmp_path)
    (folder / "captions.csv").write_text("file,caption\na.mp4,clip a\n../outside/secret.mp4,a secret\n")
    done = run_engine(
        "distill", "--data", str(folder), "--out", str(tmp_path / "run"), "--steps", "5", "--batch-size", "1"
    )
    assert done.returncode != 0
    assert f"{folder}: captions.csv line 3 names '../outside/secret.mp4', which is outside the folder" in done.stderr
    assert not (tmp_path / "run" / "lora.safetensors").exists()


def _zip(path, entries: dict) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return str(path)


def test_an_uploaded_zip_whose_table_names_server_files_is_refused_and_nothing_is_kept(data_dir, tmp_path):
    folder, secret = _outside(tmp_path)
    clip = (folder / "a.mp4").read_bytes()
    for named in ("/etc/hostname", "../../outside/secret.mp4", str(secret)):
        upload = _zip(tmp_path / "clips.zip", {"a.mp4": clip, "captions.csv": f"file,caption\na.mp4,a\n{named},b\n"})
        kept, note = distill.upload_data(data_dir, upload)
        assert kept is None and note == (
            f"**Upload refused:** in the zip, captions.csv line 3 names {named!r}, which "
            "is outside the folder; name each file by its path inside the folder (a.mp4 "
            "or clips/a.mp4), and move files from elsewhere into it."
        )
        assert [p for p in (uploads_folder(data_dir) / "data").rglob("*") if p.is_file()] == []


def test_a_public_studio_refuses_a_typed_folder_or_config_whose_table_leaves_it(data_dir, tmp_path):
    _, secret = _outside(tmp_path)
    public = access_from_env(data_dir, True, {})
    inside = captioned_clips(uploads_folder(data_dir) / "mine")
    (inside / "captions.csv").write_text(f"file,caption\na.mp4,clip a\n{secret},a secret\n")
    message = distill.check(
        data_dir, form(data_source="folder", data_folder=str(inside), batch_size=1), None, None, public
    )
    assert message.startswith(f"**Cannot launch:** {inside}: captions.csv line 3 names '{secret}', which is outside")
    note = distill.folder_note(str(inside), "shapes-tiny", access=public)
    assert note.startswith(f"**Data refused:** {inside}: captions.csv line 3 names") and "usable" not in note
    config = uploads_folder(data_dir) / "set.yaml"
    config.write_text(f"folders:\n  - path: mine\n    captions: {secret.parent / 'captions.csv'}\n")
    message = distill.check(
        data_dir, form(data_source="folder", data_folder=str(config), batch_size=1), None, None, public
    )
    assert message.startswith(f"**Cannot launch:** {config}: folders[0].captions ")
    assert "is outside the folder" in message
