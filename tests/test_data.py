"""The user's videos as distillation data: windows at the model's fps from real files of different rates
and lengths, every skipped file named with its reason, captions, data-set configs and windows per video. The
on-disk cache, what a run logs of its data and background loading are tests/test_data_loading.py."""

import json

import numpy as np
import pytest

from data_helpers import (  # noqa: F401 (mini_model: fixture)
    REASONS,
    broken_folder,
    clip,
    mini_model,
)
from engine.datasets.dataset_config import check_data_spec, read_data_config, scan_folder
from engine.datasets.sources import list_folder
from engine.datasets.video_windows import ShortVideo, iter_windows, window_indices
from engine.distill.data import DataError, fit_clip
from engine.distill.folder_data import FolderData


def test_windows_are_taken_at_the_model_fps_from_sources_of_other_rates(tmp_path):
    fast = clip(tmp_path, "fast.mp4", 2.5, 24)  # 60 frames
    slow = clip(tmp_path, "slow.avi", 3, 15)  # 45 frames
    windows = list(iter_windows(fast, num_frames=5, fps=8, max_windows=None))
    assert [w.source_indices for w in windows] == [
        (0, 3, 6, 9, 12),
        (15, 18, 21, 24, 27),
        (30, 33, 36, 39, 42),
        (45, 48, 51, 54, 57),
    ]
    assert windows[1].times == (0.625, 0.75, 0.875, 1.0, 1.125)
    for w in windows:  # the decoded frames are the ones picked (grey level 4*i, give or take the codec)
        assert np.abs(w.frames.reshape(5, -1).mean(1) - 4 * np.array(w.source_indices)).max() < 2
    slow_windows = list(iter_windows(slow, num_frames=5, fps=8, max_windows=None))
    assert [w.source_indices for w in slow_windows] == [
        (0, 1, 3, 5, 7),
        (9, 11, 13, 15, 16),
        (18, 20, 22, 24, 26),
        (28, 30, 31, 33, 35),
    ]
    assert [w.index for w in iter_windows(fast, 5, 8, max_windows=2)] == [0, 1]
    # A source slower than the model's rate repeats frames, and a window may start on its predecessor's last.
    assert window_indices(0, 5, 16, 15) == [0, 0, 1, 2, 3] and window_indices(1, 5, 16, 15)[0] == 4
    with pytest.raises(ShortVideo, match=r"too short: 60 frames at 24 fps \(2.50 s\); a window is 17 frames at 6 fps"):
        list(iter_windows(fast, num_frames=17, fps=6))


def test_fit_clip_resizes_crops_and_samples_frames():
    frames = np.zeros((30, 90, 120, 3), np.uint8)
    frames[:, :, 60:] = 255  # right half white
    out = fit_clip(frames, 17, 64, 64)
    assert out.shape == (17, 64, 64, 3)
    assert out[:, :, :28].max() < 30 and out[:, :, 36:].min() > 225  # centre crop keeps the split centred
    with pytest.raises(DataError, match="needs at least 17"):
        fit_clip(frames[:10], 17, 64, 64)


def test_captions_from_sidecar_csv_and_jsonl_and_bad_tables_are_reported(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.txt").write_text("  a red   circle \n")
    assert [(c.path.name, c.caption) for c in list_folder(tmp_path).clips] == [("a.mp4", "a red circle")]
    (tmp_path / "captions.csv").write_text("file,caption\na.mp4,from csv\ngone.mp4,a missing file\n")
    listing = list_folder(tmp_path)
    assert [c.caption for c in listing.clips] == ["from csv"]
    assert listing.skipped == [("gone.mp4", "listed in captions.csv but there is no such file")]
    (tmp_path / "captions.jsonl").write_text(json.dumps({"file": "a.mp4", "caption": "from jsonl"}) + "\n{not json\n")
    listing = list_folder(tmp_path)
    assert [c.caption for c in listing.clips] == ["from jsonl"]
    assert listing.skipped == [("captions.jsonl line 2", 'not a JSON object with "file" and "caption"')]
    assert [c.caption for c in list_folder(tmp_path, captions="sidecar").clips] == ["a red circle"]
    assert [c.caption for c in list_folder(tmp_path, caption="fixed").clips] == ["fixed"]


def test_every_skipped_file_is_named_with_its_reason_and_a_bad_caption_file_is_not_fatal(tmp_path, mini_model):
    folder = broken_folder(tmp_path / "data")
    data = FolderData(folder, mini_model)
    skipped = dict(data.report.skipped)
    assert skipped.keys() == REASONS.keys()
    for name, reason in REASONS.items():
        assert skipped[name].startswith(reason), (name, skipped[name])
    assert data.report.videos_used == 2 and data.report.windows == 2 and data.report.fps == [8.0]
    lines = data.report.lines()
    assert lines[0] == f"data {folder}: 2 windows of 17 frames at 8 fps from 2 videos; 7 files skipped"
    assert f"skipped latin1.mp4: {REASONS['latin1.mp4']}" in lines
    # The studio's upload check finds the same files from the headers alone (a truncated file whose header
    # is whole passes it: only decoding finds it).
    scan = scan_folder(folder, num_frames=17, fps=8)
    found = dict(scan.skipped)
    assert found.keys() | {"truncated.mp4"} == REASONS.keys()
    assert scan.videos == 8 and scan.captioned == 2 + ("truncated.mp4" not in found)
    assert scan.summary().startswith(f"{scan.captioned} usable clips of 8 videos; skipped: ")
    assert "latin1.mp4 (latin1.txt is not UTF-8" in scan.summary()
    assert "short.mp4 (too short: 1.00 s; a window is 17 frames at 8 fps (2.12 s))" in scan.summary()
    assert scan.summary(limit=2).endswith(f", and {len(scan.skipped) - 2} more")


def test_too_few_usable_clips_says_how_many_were_found_and_needed(tmp_path, mini_model):
    folder = broken_folder(tmp_path / "data")
    with pytest.raises(
        DataError,
        match=rf"found 2 usable clips in {folder}, a batch needs 4 \(7 skipped: "
        r".*and 4 more\); add clips or lower the batch size",
    ):
        FolderData(folder, mini_model, min_clips=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no captioned videos in .*: put a .txt caption beside each video"):
        FolderData(tmp_path / "empty", mini_model)
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "x.mp4").write_bytes(b"junk")
    (tmp_path / "one" / "x.txt").write_text("a clip")
    with pytest.raises(DataError, match=r"no usable clips .*\(1 skipped: x.mp4: not a readable video"):
        FolderData(tmp_path / "one", mini_model)


def test_a_data_set_config_names_folders_with_their_captions_repeats_and_windows(tmp_path, mini_model):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    clip(a, "x.mp4", 2.5, 24, "clip x")
    clip(a, "y.avi", 3, 15, None)
    (a / "captions.csv").write_text("file,caption\nx.mp4,x from the table\ny.avi,y from the table\n")
    clip(b, "long.mp4", 5, 24, caption=None)  # 120 frames at 24 fps: 2 windows of 17 at 8 fps
    clip(b, "bad.mp4", 1, 24, caption=None)
    config = tmp_path / "dataset.yaml"
    config.write_text(
        "windows_per_video: 1\nfolders:\n  - path: a\n    captions: captions.csv\n"
        "  - path: b\n    caption: a fixed caption\n    repeats: 3\n    windows_per_video: all\n"
    )
    check_data_spec(str(config))
    data = FolderData(str(config), mini_model)
    assert data.report.windows == 4 and data.report.videos_used == 3
    assert sorted(set(data.captions)) == ["a fixed caption", "x from the table", "y from the table"]
    assert data.captions.count("a fixed caption") == 6 and len(data.captions) == 8  # 2 windows x 3 repeats
    assert [name for name, _ in data.report.skipped] == ["b/bad.mp4"]
    toml = tmp_path / "dataset.toml"
    toml.write_text('[[folders]]\npath = "b"\ncaption = "fixed"\nwindows_per_video = 1\n')
    assert len(FolderData(str(toml), mini_model).captions) == 1


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "folders:\n  - path: a\n    repeats: two\n",
            r"dataset.yaml: folders\[0\].repeats must be a whole number >= 1, got 'two'",
        ),
        ("folders:\n  - path: nowhere\n", r"dataset.yaml: folders\[0\].path 'nowhere' is not a folder"),
        ("folders:\n  - path: a\n    captoin: x\n", r"dataset.yaml: folders\[0\].captoin is not a folder setting"),
        ("fps: fast\nfolders: [a]\n", r"dataset.yaml: folders\[0\].fps must be a number >= 0.1, got 'fast'"),
        ("frames: 3\nfolders: [a]\n", r"dataset.yaml: frames is not a data-set setting"),
        ("path: a\n", r"dataset.yaml: folders is missing"),
        ("folders: [a\n", r"dataset.yaml: not a valid YAML data-set config"),
    ],
)
def test_bad_data_set_configs_are_one_line_errors_naming_the_field_and_file(tmp_path, text, message):
    from engine.config.distill import DistillConfig

    (tmp_path / "a").mkdir()
    (tmp_path / "dataset.yaml").write_text(text)
    with pytest.raises(DataError, match=message) as err:
        read_data_config(tmp_path / "dataset.yaml")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="^data: .*" + message):
        DistillConfig(data=str(tmp_path / "dataset.yaml")).validate()


def test_a_caption_longer_than_the_text_encoder_reads_is_cut_with_a_warning(tmp_path, mini_model):
    folder = tmp_path / "data"
    folder.mkdir()
    clip(folder, "a.mp4", 2.5, 24, " ".join(["a red circle moving left"] * 40))
    data = FolderData(folder, mini_model)
    ((name, message),) = data.report.warnings
    assert name == "a.txt" and f"reads the first {mini_model.text_len}, the rest is cut" in message
    assert any(line.startswith("warning a.txt: the caption of a.mp4 is") for line in data.report.lines())


def test_windows_per_video_of_the_run_and_of_a_data_set_config(tmp_path, mini_model):
    from engine.config.distill import DistillConfig
    from engine.config.fields import ConfigError

    long, more = tmp_path / "long", tmp_path / "more"
    long.mkdir(), more.mkdir()
    clip(long, "long.mp4", 5, 24, "a long clip")  # 120 frames at 24 fps: 2 windows of 17 at 8 fps
    clip(more, "long.mp4", 5, 24, "another long clip")
    assert FolderData(long, mini_model).report.windows == 1  # the default: one window per video
    assert FolderData(long, mini_model, windows_per_video=0).report.windows == 2  # 0: every whole window
    assert scan_folder(long, num_frames=17, fps=8, windows_per_video=0).windows == 2
    config = tmp_path / "dataset.yaml"
    config.write_text("folders:\n  - path: long\n    windows_per_video: 1\n  - path: more\n")
    data = FolderData(str(config), mini_model, windows_per_video=0)  # the folder's own value wins over the run's
    assert data.report.windows == 3
    with pytest.raises(ConfigError, match="windows_per_video must be between 0 and 100000, got -1"):
        DistillConfig(windows_per_video=-1).validate()
