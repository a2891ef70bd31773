"""A folder of the user's videos with captions as distillation data: formats, resizing, caching,
skipped files, and the clear error when nothing is usable."""

import json

import numpy as np
import pytest

from engine.shapes import world
from engine.distill.data import DataError, FolderData, fit_clip, read_captions
from engine.media.video import write_mp4


@pytest.fixture(scope="module")
def mini_model(mini_teacher_dir):
    from engine.models.base import load_base_model

    return load_base_model(str(mini_teacher_dir), device="cpu")


def test_fit_clip_resizes_crops_and_samples_frames():
    frames = np.zeros((30, 90, 120, 3), np.uint8)
    frames[:, :, 60:] = 255  # right half white
    out = fit_clip(frames, 17, 64, 64)
    assert out.shape == (17, 64, 64, 3)
    assert out[:, :, :28].max() < 30 and out[:, :, 36:].min() > 225  # centre crop keeps the split centred
    with pytest.raises(DataError, match="needs at least 17"):
        fit_clip(frames[:10], 17, 64, 64)


def test_captions_from_sidecar_csv_and_jsonl(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.txt").write_text("  a red   circle \n")
    assert read_captions(tmp_path) == {tmp_path / "a.mp4": "a red circle"}
    (tmp_path / "captions.csv").write_text("file,caption\na.mp4,from csv\n")
    assert read_captions(tmp_path)[tmp_path / "a.mp4"] == "from csv"
    (tmp_path / "captions.jsonl").write_text(json.dumps({"file": "a.mp4", "caption": "from jsonl"}) + "\n")
    assert read_captions(tmp_path)[tmp_path / "a.mp4"] == "from jsonl"
    (tmp_path / "captions.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match="captions.jsonl line 1"):
        read_captions(tmp_path)


def test_folder_data_encodes_once_skips_bad_files_and_reports_them(tmp_path, mini_model):
    folder = world.export_folder(tmp_path / "data", 3, seed=0)
    (folder / "captions.jsonl").unlink()  # use the sidecar captions
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "broken.txt").write_text("a broken clip")
    write_mp4(folder / "short.mp4", world.sample_clips({}, 1, seed=0)[0][0][:5])
    (folder / "short.txt").write_text("a short clip")

    data = FolderData(folder, mini_model)
    assert data.report.used == 3
    assert {name for name, _ in data.report.skipped} == {"broken.mp4", "short.mp4"}
    batch = data.batch(4)
    assert batch.latents.shape == (4, 16, 5, 8, 8) and batch.cond.shape[0] == 4
    cached = sorted((folder / ".dfd_cache").glob("*.pt"))
    assert len(cached) == 3
    mtimes = [p.stat().st_mtime_ns for p in cached]
    again = FolderData(folder, mini_model)  # second run reads the cache
    assert again.report.used == 3 and [p.stat().st_mtime_ns for p in cached] == mtimes


def test_a_folder_without_usable_clips_is_a_clear_error_before_training(tmp_path, mini_model):
    with pytest.raises(DataError, match="no captioned videos"):
        FolderData(tmp_path, mini_model)
    (tmp_path / "x.mp4").write_bytes(b"junk")
    (tmp_path / "x.txt").write_text("a clip")
    with pytest.raises(DataError, match="no usable clips .*1 skipped"):
        FolderData(tmp_path, mini_model)
