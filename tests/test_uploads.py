"""Uploaded zips and LoRA files become folders only when they are safe: size limits, sanitized names, no
path traversal, no links, no zip bombs, and nothing is left behind when an upload is refused."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.distill.uploads import (
    LORA_FILE,
    Limits,
    UploadError,
    extract_dataset,
    sanitize_name,
    save_lora_upload,
)


def make_zip(path: Path, entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_a_zip_of_captioned_videos_becomes_a_data_folder_with_safe_names(tmp_path):
    upload = make_zip(
        tmp_path / "clips.zip",
        {
            "my clips/clip één.mp4": b"\x00" * 100,
            "my clips/clip één.txt": b"a red circle moving left",
            "my clips/other.mp4": b"\x00" * 100,
            "my clips/other.txt": b"a blue square",
            "my clips/notes.exe": b"MZ",
            "__MACOSX/._clip.mp4": b"junk",
            "my clips/.hidden.txt": b"x",
        },
    )

    summary = extract_dataset(upload, tmp_path / "uploads")

    assert summary.videos == 2 and summary.captioned == 2
    assert sorted(p.name for p in summary.folder.iterdir()) == [
        "clip_een.mp4",
        "clip_een.txt",
        "other.mp4",
        "other.txt",
    ]
    assert summary.folder.name == "my_clips"  # the zip's one top-level folder is the data root
    assert summary.folder.is_relative_to(tmp_path / "uploads")
    assert len(summary.skipped) == 3


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/../../escape.txt", "/etc/cron.d/evil.txt", "C:/evil.txt", "..\\..\\escape.txt"]
)
def test_entries_that_leave_the_folder_are_refused_and_nothing_is_written(tmp_path, name):
    upload = make_zip(tmp_path / "evil.zip", {"ok.mp4": b"x", "ok.txt": b"a shape", name: b"owned"})

    with pytest.raises(UploadError, match="(absolute path|leaves its folder)"):
        extract_dataset(upload, tmp_path / "uploads")

    assert leftovers(tmp_path / "uploads") == []
    assert not (tmp_path / "escape.txt").exists()


def test_a_symlink_entry_is_refused(tmp_path):
    upload = tmp_path / "link.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        info = zipfile.ZipInfo("clip.mp4")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
        archive.writestr("clip.txt", "a shape")

    with pytest.raises(UploadError, match="link or special file"):
        extract_dataset(upload, tmp_path / "uploads")
    assert leftovers(tmp_path / "uploads") == []


def test_a_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    upload = make_zip(tmp_path / "bomb.zip", {"clip.mp4": b"\x00" * (8 * 1024**2), "clip.txt": b"a shape"})
    assert upload.stat().st_size < 100_000

    with pytest.raises(UploadError, match="zip bomb"):
        extract_dataset(upload, tmp_path / "uploads")
    assert leftovers(tmp_path / "uploads") == []


def test_size_and_entry_limits_are_enforced(tmp_path):
    upload = make_zip(
        tmp_path / "big.zip",
        {f"clip{i}.mp4": np.random.default_rng(i).bytes(50_000) for i in range(5)},
        compression=zipfile.ZIP_STORED,
    )

    with pytest.raises(UploadError, match="over the 10 KB limit"):
        extract_dataset(upload, tmp_path / "u", Limits(max_upload_bytes=10_000))
    with pytest.raises(UploadError, match="unpacks to"):
        extract_dataset(upload, tmp_path / "u", Limits(max_total_bytes=100_000))
    with pytest.raises(UploadError, match="at most 3 are accepted"):
        extract_dataset(upload, tmp_path / "u", Limits(max_entries=3))
    assert leftovers(tmp_path / "u") == []


def test_extraction_stops_when_the_bytes_written_pass_the_budget_left(tmp_path):
    """Headers can lie; the copy counts what it really writes (Python's zipfile also stops at the declared size)."""
    from engine.distill.uploads import _copy_limited

    upload = make_zip(tmp_path / "big.zip", {"clip.mp4": b"\x01" * 5000}, compression=zipfile.ZIP_STORED)
    with zipfile.ZipFile(upload) as archive, pytest.raises(UploadError, match="more than it declares or than the size"):
        _copy_limited(archive, archive.getinfo("clip.mp4"), tmp_path / "out.mp4", budget=1000)


def test_a_zip_without_captions_or_not_a_zip_is_explained(tmp_path):
    no_captions = make_zip(tmp_path / "bare.zip", {"a.mp4": b"x", "b.mp4": b"y"})
    with pytest.raises(UploadError, match="2 videos but no captions"):
        extract_dataset(no_captions, tmp_path / "uploads")
    assert leftovers(tmp_path / "uploads") == []

    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip at all")
    with pytest.raises(UploadError, match="is not a zip file"):
        extract_dataset(fake, tmp_path / "uploads")


def test_sanitize_name_keeps_a_safe_alphabet():
    assert sanitize_name("clip 01 (final).mp4") == "clip_01_final_.mp4"
    assert sanitize_name("..") == "file"
    assert sanitize_name(".bashrc") == "bashrc"
    assert sanitize_name("ü" * 300)[:3] == "uuu" and len(sanitize_name("ü" * 300)) == 120


def _lora_file(path: Path) -> Path:
    from safetensors.numpy import save_file

    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": np.zeros((4, 8), np.float32)}, str(path))
    return path


def test_a_lora_file_or_a_zipped_student_folder_becomes_a_student_folder(tmp_path):
    folder = save_lora_upload(_lora_file(tmp_path / "mine.safetensors"), tmp_path / "uploads")
    assert (folder / LORA_FILE).is_file()

    student = tmp_path / "student"
    student.mkdir()
    _lora_file(student / LORA_FILE)
    (student / "lora_config.json").write_text('{"t_list": [0.999, 0.5, 0.0]}')
    zipped = make_zip(tmp_path / "student.zip", {f"student/{p.name}": p.read_bytes() for p in student.iterdir()})
    folder = save_lora_upload(zipped, tmp_path / "uploads")
    assert sorted(p.name for p in folder.iterdir()) == ["lora_config.json", LORA_FILE]


def test_a_file_that_is_not_safetensors_is_refused_as_a_lora(tmp_path):
    bad = tmp_path / "weights.safetensors"
    bad.write_bytes(b"\x80\x04 pickle pretending to be safetensors")
    with pytest.raises(UploadError, match="not a valid safetensors file"):
        save_lora_upload(bad, tmp_path / "uploads")
    with pytest.raises(UploadError, match="neither a .safetensors LoRA nor a .zip"):
        save_lora_upload(_rename(bad, "weights.bin"), tmp_path / "uploads")
    assert leftovers(tmp_path / "uploads") == []


def _rename(path: Path, name: str) -> Path:
    return path.rename(path.with_name(name))


def test_captions_are_counted_by_the_data_loaders_rules(tmp_path):
    listed = make_zip(
        tmp_path / "csv.zip",
        {
            "a.mp4": b"x",
            "b.mp4": b"y",
            "c.mp4": b"z",
            "captions.csv": b"file,caption\na.mp4,a red circle\nb.mp4,\nmissing.mp4,x\n",
        },
    )
    summary = extract_dataset(listed, tmp_path / "uploads")
    assert (summary.videos, summary.captioned) == (3, 1)  # b has an empty caption, missing.mp4 is not there

    jsonl = make_zip(
        tmp_path / "jsonl.zip",
        {"clips/a.mp4": b"x", "captions.jsonl": b'{"file": "clips/a.mp4", "caption": "a shape"}\n'},
    )
    assert extract_dataset(jsonl, tmp_path / "uploads").captioned == 1


def test_many_small_well_compressed_entries_are_refused_by_the_whole_zips_ratio(tmp_path):
    """Each entry under the per-entry check's 1 MiB, together a bomb: the whole zip's ratio catches it."""
    upload = make_zip(tmp_path / "small.zip", {f"clip{i}.mp4": b"\x00" * 900_000 for i in range(20)})
    with pytest.raises(UploadError, match=r"the zip unpacks to \d+x its size \(more than 20x"):
        extract_dataset(upload, tmp_path / "uploads")
    assert leftovers(tmp_path / "uploads") == []
    stored = make_zip(
        tmp_path / "stored.zip", {f"clip{i}.mp4": b"\x00" * 900_000 for i in range(2)}, compression=zipfile.ZIP_STORED
    )
    with pytest.raises(UploadError, match="no videos|but no captions"):  # past the ratio: on to the captions
        extract_dataset(stored, tmp_path / "uploads")


def test_an_upload_that_would_fill_the_disk_is_refused_before_anything_is_written(tmp_path):
    upload = make_zip(tmp_path / "clips.zip", {"a.mp4": b"x", "a.txt": b"a shape"})
    with pytest.raises(UploadError, match="unpacking the zip needs .* which would leave less than the"):
        extract_dataset(upload, tmp_path / "uploads", Limits(min_free_bytes=10**18))
    assert leftovers(tmp_path / "uploads") == []
    with pytest.raises(UploadError, match="keeping the LoRA file needs"):
        save_lora_upload(_lora_file(tmp_path / "mine.safetensors"), tmp_path / "uploads", Limits(min_free_bytes=10**18))
    assert leftovers(tmp_path / "uploads") == []
