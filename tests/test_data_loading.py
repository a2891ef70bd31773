"""Distillation data on its way to the trainer: latents and embeddings cached on disk and batches read from
it, what a run logs of its data, a cache folder that leaves the data folder untouched, and background workers
(data_workers) that encode and draw exactly what the training process does."""

import json

import pytest
import torch

from data_helpers import (  # noqa: F401 (mini_model: fixture)
    REASONS,
    broken_folder,
    clip,
    mini_model,
)
from engine.distill.folder_data import FolderData


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
