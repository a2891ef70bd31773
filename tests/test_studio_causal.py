"""Causal (autoregressive) students in the Compare tab: a 2-step AR student of shapes-tiny trained here (with a
'DFD' copy of it), as finished `ar` distill jobs of the studio; both appear in the student lists as causal,
sample chunk by chunk beside the bidirectional teacher, and show the time to their first chunk and their
frames per second as the engine's causal sampler timed them, in this process and through real sample jobs
run by the real worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import engine
import engine.jobs as jobs_api
import storage
from conftest import copy_student
from engine import read_mp4
from studio import compare, compare_plan
from studio.files import public_folder

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a red circle moving left on a dark background"


@pytest.fixture(scope="module")
def ar_student(tmp_path_factory) -> Path:
    """A causal DMD2 student of shapes-tiny, 2 updates (its weights barely move: the code paths are tested)."""
    from engine.config.build import build_distill_config
    from engine.distill.trainer import Distiller

    cfg = build_distill_config(
        values=dict(task="ar", steps=2, batch_size=2, student_update_freq=2, lora_rank=4, shapes_pool_clips=16, seed=3)
    )
    return Distiller(cfg, tmp_path_factory.mktemp("ar") / "run").train()


def _finished_ar_job(data_dir: Path, student_dir: Path, method: str) -> str:
    """A distill job of task ar that succeeded with `student_dir` as its LoRA (made through storage, as the runner
    records one; the real ar job's run to this folder is test_distill_job.py's)."""
    job = jobs_api.submit(
        data_dir, "distill", {"base": "shapes-tiny", "task": "ar", "steps": 2, "student_update_freq": 2}
    )
    db = storage.open_database(data_dir)
    assert storage.jobs.claim_next(db).id == job.id
    lora = Path(job.dir) / "lora"
    copy_student(student_dir, lora, method)
    storage.outputs.add_artifact(db, job.id, "lora", lora / "pytorch_lora_weights.safetensors")
    storage.jobs.transition(db, job.id, "succeeded")
    return job.id


@pytest.fixture
def ar_jobs(data_dir, ar_student) -> dict[str, str]:
    return {method: _finished_ar_job(data_dir, ar_student, method) for method in ("dmd2", "dfd")}


@pytest.fixture
def rendered(monkeypatch) -> list:
    """What engine.render returned for each model, in order."""
    out, real = [], engine.render

    def recording(*args, **kw):
        out.append((kw.get("lora_dir"), real(*args, **kw)))
        return out[-1][1]

    monkeypatch.setattr(engine, "render", recording)
    return out


def test_finished_ar_jobs_are_listed_as_causal_students_beside_the_shipped_ones(data_dir, ar_jobs):
    dmd2 = compare.student_choices(data_dir, "shapes-tiny", "dmd2")
    assert dmd2[0] == ("DMD2 (shipped)", "dmd2") and (f"causal DMD2 · {ar_jobs['dmd2']}", ar_jobs["dmd2"]) in dmd2
    assert (f"causal DFD · {ar_jobs['dfd']}", ar_jobs["dfd"]) in compare.student_choices(data_dir, "shapes-tiny", "dfd")


def test_compare_samples_causal_students_chunk_by_chunk_and_shows_first_chunk_time_and_frames_per_second(
    data_dir, ar_jobs, rendered
):
    public = public_folder(data_dir)
    result = compare.compare(data_dir, public, "shapes-tiny", PROMPT, 2, ar_jobs["dmd2"], ar_jobs["dfd"], steps=2)

    assert [r.stream is not None for _, r in rendered] == [False, True, True]  # the causal sampler ran for both
    meta = json.loads((Path(result.composite).parent / "meta.json").read_text())
    for slot in ("dmd2", "dfd"):
        info, r = meta["slots"][slot], rendered[compare.SLOTS.index(slot)][1]
        stream = info["stream"]
        assert info["causal"] and info["nfe"] == 5  # 4 steps per chunk and the forward that commits it
        assert 0 < stream["first_chunk_seconds"] < stream["all_chunks_seconds"] <= info["seconds"]  # decode after
        assert stream["frames"] == 17 == r.clips.shape[1]
        assert stream["frames_per_second"] == pytest.approx(17 / stream["all_chunks_seconds"], rel=1e-2)
        caption = result.captions[slot]
        assert (
            f"causal {slot.upper()} · {ar_jobs[slot]} · 4 steps per chunk" in caption and "NFE 5 per chunk" in caption
        )
        assert (
            f"streaming: first chunk {stream['first_chunk_seconds']:.2f} s · "
            f"{stream['frames_per_second']:.1f} frames/s" in caption
        )
    assert "teacher (bidirectional) · 2 steps" in result.captions["teacher"]
    assert "streaming" not in result.captions["teacher"] and meta["slots"]["teacher"]["stream"] is None
    assert "timed in this process as its chunks were made" in result.note and "decoding excluded" in result.note

    plain = compare.compare(data_dir, public, "shapes-tiny", PROMPT, 2, "dmd2", ar_jobs["dfd"], steps=2)
    assert "streaming" not in plain.captions["dmd2"] and "NFE 4 ·" in plain.captions["dmd2"]  # the shipped one
    assert "streaming: first chunk" in plain.captions["dfd"]


def test_compare_through_sample_jobs_at_65_frames_shows_the_figures_the_job_measured(data_dir, ar_jobs):
    """65 frames from a student trained on 17: the causal student rolls its KV cache on, the teacher samples all 65."""
    public = public_folder(data_dir)
    request = ("shapes-tiny", PROMPT, 5, ar_jobs["dmd2"], None, 2, 5.0, None, 65)
    result, pending = compare.queue(data_dir, public, *request)
    assert result is None and len(pending.job_ids) == 2
    assert [jobs_api.get(data_dir, i).config["num_frames"] for i in pending.job_ids] == [65, 65]
    worker = subprocess.run(
        [sys.executable, "-m", "engine", "worker", "--data-dir", str(data_dir), "--exit-when-idle", "--poll", "0.2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]

    recorded = {p.name: p.value for p in jobs_api.metrics(data_dir, pending.job_ids[1])}
    assert recorded["nfe"] == 5 and 0 < recorded["first_chunk_seconds"] < recorded["all_chunks_seconds"]
    assert {p.name for p in jobs_api.metrics(data_dir, pending.job_ids[0])} & {"first_chunk_seconds"} == set()

    result, progress = compare.poll(data_dir, public, pending)
    assert progress == ""
    assert "NFE 5 per chunk" in result.captions["dmd2"]
    assert (
        f"streaming: first chunk {recorded['first_chunk_seconds']:.2f} s · "
        f"{65 / recorded['all_chunks_seconds']:.1f} frames/s" in result.captions["dmd2"]
    )
    assert "streaming" not in result.captions["teacher"] and "timed in its sample job" in result.note
    assert "seed 5, 65 frames" in result.note
    for slot in ("teacher", "dmd2"):
        assert read_mp4(result.videos[slot]).shape[0] == 65, slot
    assert compare.queue(data_dir, public, *request)[1] is None  # sampled once: cached under its length
    assert compare.queue(data_dir, public, *request[:-1], 0)[1] is not None  # the model's own length is another


@pytest.mark.parametrize("frames", [16, 18, -3, 17.5, "many", compare.MAX_FRAMES + 4])
def test_compare_refuses_a_video_length_that_is_not_4k_plus_1_in_range(data_dir, frames):
    with pytest.raises(
        ValueError, match=f"Video frames must be 4k\\+1 between 1 and {compare.MAX_FRAMES}.*got {frames}"
    ):
        compare.plan(data_dir, public_folder(data_dir), "shapes-tiny", PROMPT, 1, None, None, num_frames=frames)
    assert (
        compare_plan.video_frames(0) is None
        and compare_plan.video_frames(None) is None
        and compare_plan.video_frames(65) == 65
    )
