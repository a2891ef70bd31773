"""The user's videos as distillation data: windows at the model's fps from real files of different rates
and lengths, every skipped file named with its reason, data-set configs, the on-disk cache and batches
read from it."""

import json
import subprocess

import numpy as np
import pytest
import torch

from engine.datasets.dataset_config import check_data_spec, read_data_config, scan_folder
from engine.datasets.sources import list_folder
from engine.datasets.video_windows import ShortVideo, iter_windows, window_indices
from engine.distill.data import DataError, fit_clip
from engine.distill.folder_data import FolderData
from engine.media.video import write_mp4


@pytest.fixture(scope="module")
def mini_model(mini_teacher_dir):
    from engine.models.base import load_base_model

    model = load_base_model(str(mini_teacher_dir), device="cpu")
    assert (model.num_frames, model.fps, model.height, model.width) == (17, 8, 64, 64)
    return model


def numbered_frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i is a flat grey of level 4*i, so a decoded frame tells which source frame it was."""
    return np.repeat((np.arange(n, dtype=np.uint8) * 4)[:, None, None, None], h * w * 3).reshape(n, h, w, 3)


def write_avi(path, frames: np.ndarray, fps: int):
    """An MJPEG .avi through ffmpeg (a container and codec other than our mp4 writer's)."""
    import imageio_ffmpeg

    n, h, w, _ = frames.shape
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-c:v",
            "mjpeg",
            "-q:v",
            "2",
            str(path),
        ],
        input=frames.tobytes(),
        check=True,
    )
    return path


def clip(folder, name, seconds: float, fps: int, caption: str | None = "a clip", size=(48, 64), shift: int = 0):
    frames = numbered_frames(int(seconds * fps), *size) + np.uint8(shift)
    path = write_avi(folder / name, frames, fps) if name.endswith(".avi") else write_mp4(folder / name, frames, fps=fps)
    if caption is not None:
        (folder / name).with_suffix(".txt").write_text(caption)
    return path


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


def broken_folder(folder):
    """Two good clips beside every kind of bad file."""
    folder.mkdir()
    clip(folder, "good24.mp4", 2.5, 24, "a clip at 24 fps")
    clip(folder, "good15.avi", 3, 15, "a clip at 15 fps")
    clip(folder, "short.mp4", 1, 24, "a clip of one second")
    clip(folder, "nocaption.mp4", 2.5, 24, caption=None)
    clip(folder, "latin1.mp4", 2.5, 24, caption=None)
    (folder / "latin1.txt").write_bytes("un caf\u00e9".encode("latin-1"))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "empty.txt").write_text("an empty file")
    (folder / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (folder / "random.txt").write_text("random bytes")
    whole = (folder / "good24.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # moov first (faststart): decodes a part
    (folder / "truncated.txt").write_text("half a clip")
    (folder / "notes.pdf").write_bytes(b"%PDF")
    return folder


REASONS = {
    "short.mp4": "too short: 24 frames at 24 fps (1.00 s); a window is 17 frames at 8 fps (2.12 s)",
    "nocaption.mp4": "no caption (no nocaption.txt beside it)",
    "latin1.mp4": "latin1.txt is not UTF-8 text (byte 0xe9 at position 6); save it as UTF-8",
    "empty.mp4": "empty file (0 bytes)",
    "random.mp4": "not a readable video (",
    "truncated.mp4": "truncated: ",
    "notes.pdf": "not a video (.mp4, .webm, .mov, .mkv, .avi)",
}


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


def test_latents_and_embeddings_live_on_disk_and_batches_are_read_from_it(tmp_path, mini_model):
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(3):
        clip(folder, f"c{i}.mp4", 2.5, 24, f"a red circle {i}", shift=i)  # different bytes: different keys
    data = FolderData(folder, mini_model, seed=1)
    held = [
        name
        for name, value in vars(data).items()
        if isinstance(value, torch.Tensor)
        or (isinstance(value, list) and any(isinstance(v, torch.Tensor) for v in value))
    ]
    assert held == [] and all(w.is_file() and t.is_file() for w, t, _ in data.entries)
    batch = data.batch(4)
    assert batch.latents.shape == (4, 16, 5, 8, 8) and batch.cond.shape == (4, mini_model.text_len, batch.cond.shape[2])
    assert torch.equal(batch.cond, mini_model.encode_prompts(batch.captions))  # the unpadded file, padded back
    cache = sorted((folder / ".dfd_cache").glob("*-w*.pt"))
    assert len(cache) == 3
    mtimes = [p.stat().st_mtime_ns for p in cache]
    state = data.state()
    again = FolderData(folder, mini_model, seed=1)  # a second run reads the cache, and draws the same batches
    assert [p.stat().st_mtime_ns for p in cache] == mtimes
    again.load_state(state)
    assert torch.equal(again.batch(4).latents, data.batch(4).latents)
    for path in cache:  # prove the batches come from the files
        torch.save(torch.zeros(16, 5, 8, 8), path)
    assert again.batch(2).latents.abs().sum() == 0


def test_a_caption_longer_than_the_text_encoder_reads_is_cut_with_a_warning(tmp_path, mini_model):
    folder = tmp_path / "data"
    folder.mkdir()
    clip(folder, "a.mp4", 2.5, 24, " ".join(["a red circle moving left"] * 40))
    data = FolderData(folder, mini_model)
    ((name, message),) = data.report.warnings
    assert name == "a.txt" and f"reads the first {mini_model.text_len}, the rest is cut" in message
    assert any(line.startswith("warning a.txt: the caption of a.mp4 is") for line in data.report.lines())


def test_a_run_logs_its_skipped_files_and_records_the_windows_fps(tmp_path, mini_teacher_dir):
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Callbacks, Distiller

    folder = broken_folder(tmp_path / "data")

    class Log(Callbacks):
        lines: list = []

        def log(self, message):
            self.lines.append(message)

    cfg = DistillConfig(
        base=str(mini_teacher_dir),
        data=str(folder),
        steps=2,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        cache_dir=str(tmp_path / "cache"),
    )
    log = Log()
    out = Distiller(cfg, tmp_path / "run", callbacks=log).train()
    assert not (folder / ".dfd_cache").exists() and len(list((tmp_path / "cache").glob("*-w000.pt"))) == 2
    assert log.lines[0].endswith("2 windows of 17 frames at 8 fps from 2 videos; 7 files skipped")
    assert {line.split(":")[0] for line in log.lines[1:8]} == {f"skipped {name}" for name in REASONS}
    recorded = json.loads((out / "data.json").read_text())
    assert recorded["fps"] == [8.0] and recorded["num_frames"] == 17 and len(recorded["skipped"]) == 7


def test_a_cache_dir_keeps_the_data_folder_untouched_and_shares_only_identical_entries(tmp_path, mini_model):
    folder, other, cache = tmp_path / "data", tmp_path / "other", tmp_path / "cache"
    folder.mkdir(), other.mkdir()
    clip(folder, "a.mp4", 2.5, 24, "a red circle")
    clip(other, "a.mp4", 2.5, 24, "a red circle")  # the same bytes and caption under another folder
    clip(other, "b.mp4", 2.5, 24, "a red circle", shift=1)  # other bytes: an entry of its own
    before = sorted(p.name for p in folder.iterdir())
    folder.chmod(0o555)  # tests may run as root, where this stops nothing: the listing below is the check
    try:
        data = FolderData(folder, mini_model, cache_dir=cache)
    finally:
        folder.chmod(0o755)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert all(w.parent == cache and t.parent == cache for w, t, _ in data.entries)
    shared = FolderData(other, mini_model, cache_dir=cache)
    windows = sorted(p.name for p in cache.glob("*-w*.pt"))
    assert len(windows) == 2 and not (other / ".dfd_cache").exists()
    assert {w.name for w, _, _ in shared.entries} == set(windows) and data.entries[0][0].name in windows
    assert len(list(cache.glob("text-*.pt"))) == 1  # one caption, one embedding


def test_a_distill_job_caches_under_the_data_dir(tmp_path):
    from engine.jobs.distill_job import job_cache_dir

    assert job_cache_dir(tmp_path / "studio" / "jobs" / "j-1") == (tmp_path / "studio" / "cache").resolve()


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


# --- background loading (data_workers) --------------------------------------------------------------------


def _draws(data, sizes):
    """Batches of these sizes, each with the sampler state a checkpoint would take right after it."""
    out = []
    for n in sizes:
        batch = data.batch(n)
        out.append((batch.latents, batch.cond, batch.captions, data.state()["rng"]))
    return out


def _same(a, b):
    assert len(a) == len(b)
    for (la, ca, na, sa), (lb, cb, nb, sb) in zip(a, b):
        assert torch.equal(la, lb) and torch.equal(ca, cb) and na == nb and sa == sb


def test_background_workers_encode_and_draw_exactly_what_the_training_process_does(tmp_path, mini_model):
    import multiprocessing

    folder = broken_folder(tmp_path / "data")  # the workers meet every kind of bad file too
    clip(folder, "long.mp4", 5, 24, "a long clip", shift=3)  # two windows
    serial = FolderData(folder, mini_model, seed=1, windows_per_video=0, cache_dir=tmp_path / "cache0")
    ahead = FolderData(folder, mini_model, seed=1, windows_per_video=0, cache_dir=tmp_path / "cache2", workers=2)
    assert ahead.report.to_dict() == serial.report.to_dict() and ahead.report.windows == 4
    assert [(w.name, t.name, c) for w, t, c in ahead.entries] == [(w.name, t.name, c) for w, t, c in serial.entries]
    assert all(w.parent == tmp_path / "cache2" for w, _, _ in ahead.entries)
    for (a, _, _), (b, _, _) in zip(ahead.entries, serial.entries):
        assert torch.equal(torch.load(a, weights_only=True), torch.load(b, weights_only=True))

    _same(_draws(ahead, [4, 4, 4]), _draws(serial, [4, 4, 4]))
    assert len(multiprocessing.active_children()) >= 2  # the batches were read by worker processes
    state = serial.state()
    ahead.batch(16)  # the trainer's one-off draw of another size, then put back
    ahead.load_state(state)
    later = _draws(serial, [4, 4])
    _same(_draws(ahead, [4, 4]), later)
    resumed = FolderData(folder, mini_model, seed=7, windows_per_video=0, cache_dir=tmp_path / "cache2", workers=2)
    resumed.load_state(state)  # a resume from the in-process run's checkpoint state
    _same(_draws(resumed, [4, 4]), later)


def test_data_workers_is_a_folder_data_setting_with_one_line_errors(tmp_path):
    from conftest import run_engine
    from engine.config.build import build_distill_config
    from engine.config.fields import ConfigError

    (tmp_path / "clips").mkdir()
    data = str(tmp_path / "clips")
    assert build_distill_config(values={"data": data, "data_workers": 2}).data_workers == 2
    (tmp_path / "run.yaml").write_text(f"data: {data}\ndata_workers: 3\n")
    assert build_distill_config(config_file=tmp_path / "run.yaml").data_workers == 3
    for values, message in [
        ({"data": data, "data_workers": -1}, "data_workers must be between 0 and 32, got -1"),
        ({"data": data, "data_workers": "two"}, "data_workers must be a whole number, got 'two'"),
        (
            {"data_workers": 2},
            "data_workers is for folder data (videos decoded, batches read from "
            "disk); the shapes data is held in memory: leave it 0",
        ),
    ]:
        with pytest.raises(ConfigError) as refused:
            build_distill_config(values=values)
        assert refused.value.field == "data_workers" and str(refused.value) == message
    result = run_engine("distill", "--data", data, "--data-workers", "40", "--out", str(tmp_path / "o"), timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == "error: --data-workers must be between 0 and 32, got 40"


def test_a_run_with_data_workers_trains_exactly_as_one_without(tmp_path, mini_teacher_dir):
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller

    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(3):
        clip(folder, f"c{i}.mp4", 2.5, 24, f"a red circle {i}", shift=i)
    runs = {}
    for workers in (0, 2):
        cfg = DistillConfig(
            base=str(mini_teacher_dir),
            data=str(folder),
            steps=4,
            batch_size=2,
            student_update_freq=2,
            lora_rank=4,
            checkpoint_every=2,
            data_workers=workers,
            cache_dir=str(tmp_path / f"cache{workers}"),
        )
        runs[workers] = Distiller(cfg, tmp_path / f"run{workers}").train()
    assert (runs[2] / "metrics.jsonl").read_text() == (runs[0] / "metrics.jsonl").read_text()
    from safetensors.torch import load_file

    a, b = (load_file(runs[w] / "pytorch_lora_weights.safetensors") for w in (0, 2))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
