"""`evaluate` and `bench` through the real command line on a tiny teacher and a one-step student."""

import json
from pathlib import Path

import pytest

from conftest import run_engine


@pytest.fixture(scope="module")
def mini_student(mini_teacher_dir, tmp_path_factory):
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller

    out = tmp_path_factory.mktemp("student") / "lora"
    cfg = DistillConfig(
        base=str(mini_teacher_dir), steps=2, batch_size=2, student_update_freq=2, lora_rank=4, shapes_pool_clips=64
    )
    return Distiller(cfg, out).train()


def test_evaluate_writes_json_markdown_and_plot_for_every_model(mini_teacher_dir, mini_student, tmp_path):
    result = run_engine(
        "evaluate",
        "--base",
        str(mini_teacher_dir),
        "--models",
        f"teacher@2,{mini_student}",
        "--prompts",
        "all",
        "--seeds",
        "2",
        "--json",
        str(tmp_path / "e.json"),
        "--md",
        str(tmp_path / "e.md"),
        "--plot",
        str(tmp_path / "e.png"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "e.json").read_text())
    assert set(data["models"]) == {"real", "teacher@2", str(mini_student)}
    for entry in data["models"].values():
        assert 0.0 <= entry["diversity"] <= 2.0 and entry["saturation_error"] >= 0.0
        assert set(entry["by_regime"]) == {"detailed", "underspecified"}
    assert data["models"]["real"]["saturation_error"] == 0.0
    assert data["models"]["real"]["prompt_fidelity"] > 0.9  # the recognizer reads real clips
    assert data["models"]["teacher@2"]["nfe"] == 4 and data["models"][str(mini_student)]["nfe"] == 4
    assert "**detailed captions**" in (tmp_path / "e.md").read_text()
    assert (tmp_path / "e.png").stat().st_size > 10_000


def test_evaluate_rejects_an_unknown_model_in_one_line(tmp_path):
    result = run_engine("evaluate", "--models", "teacher@50,nonsense", "--seeds", "2")
    assert result.returncode == 2 and "unknown model 'nonsense'" in result.stderr and "Traceback" not in result.stderr


def test_bench_sampling_prints_student_and_teacher_times(mini_teacher_dir, mini_student, tmp_path):
    result = run_engine(
        "bench",
        "sampling",
        "--base",
        str(mini_teacher_dir),
        "--lora",
        str(mini_student),
        "--videos",
        "2",
        "--json",
        str(tmp_path / "b.json"),
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["student_nfe"] == 4 and figures["teacher_nfe"] == 100
    assert figures["student_s"] > 0 and figures["teacher_s"] > 0 and figures["peak_memory_mb"] > 0
    rounds = figures["round_speedups"]  # timed side by side in each round; the speedup is their median
    assert len(rounds) == 3 and figures["speedup"] == sorted(rounds)[1]
    assert "student_first_chunk_s" not in figures  # a bidirectional student does not stream
    refused = run_engine("bench", "sampling", "--rounds", "0")
    assert refused.returncode == 2 and "--rounds must be between 1 and 10" in refused.stderr


def test_bench_sampling_of_a_causal_student_gives_its_first_chunk_time_and_frames_per_second(tmp_path):
    result = run_engine(
        "bench",
        "sampling",
        "--lora",
        "dfd-ar",
        "--videos",
        "1",
        "--num-frames",
        "33",
        "--rounds",
        "1",
        "--json",
        str(tmp_path / "b.json"),
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["video_shape"][0] == 33 and figures["student_nfe"] == 5  # per chunk: 4 steps and the commit
    assert 0 < figures["student_first_chunk_s"] < figures["student_all_chunks_s"] <= figures["student_s"]
    # frames/s comes from the unrounded time; the JSON keeps that time to 0.01 s, so allow its rounding
    shown = figures["student_all_chunks_s"]
    assert abs(figures["student_frames_per_second"] - 33 / shown) <= 33 * 0.005 / (shown * (shown - 0.005)) + 0.05


def test_the_random_wan_1_3b_timing_model_has_the_real_configs_size():
    """`bench --base wan2.1-1.3b-random` times Wan2.1-T2V-1.3B's real transformer config; built on the meta
    device here (no memory), its parameter count is the published 1.3B."""
    import torch

    from engine.models.random_bases import random_wan_1_3b

    model = random_wan_1_3b("meta", torch.bfloat16)
    params = sum(p.numel() for p in model.transformer.parameters())
    assert 1.40e9 < params < 1.45e9, params  # 1.42B counted, "1.3B" as published
    i2v = random_wan_1_3b("meta", torch.bfloat16, task="i2v")  # the first frame's 20 channels more, nothing else
    assert i2v.task == "i2v" and i2v.transformer.config.in_channels == 36
    assert sum(p.numel() for p in i2v.transformer.parameters()) - params == 20 * 1536 * 2 * 2
    assert (model.num_frames, model.height, model.width, model.text_len) == (81, 480, 832, 512)
    assert model.latent_shape(1, 81, 480, 832) == (1, 16, 21, 60, 104)


def test_train_step_bench_times_a_real_wan_config_on_synthetic_latents(tiny_wan_dir, tmp_path):
    from conftest import run_engine

    result = run_engine(
        "bench",
        "train-step",
        "--base",
        str(tiny_wan_dir),
        "--num-frames",
        "5",
        "--height",
        "32",
        "--width",
        "32",
        "--batch-size",
        "1",
        "--gradient-checkpointing",
        "--json",
        str(tmp_path / "b.json"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["video_shape"] == [5, 32, 32] and figures["gradient_checkpointing"] is True
    assert figures["student_update_s"] > 0 and "fake_mfu" in figures and figures["peak_memory_mb"] > 0


def test_sampling_keeps_freed_memory_in_the_process_on_cpu():
    """What cpu_memory sets, seen from outside: a freed 64 MB tensor stays resident for reuse instead of
    going back to the OS (each fresh block costs page faults; that made CPU sampling ~15% slower)."""
    import subprocess
    import sys

    code = """if True:
        import os, sys, torch
        from engine.generation.cpu_memory import keep_freed_memory
        def resident_mb():
            return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
        if sys.argv[1] == 'keep':
            assert keep_freed_memory() and keep_freed_memory()
        before = resident_mb()
        x = torch.ones(16 * 2**20)  # 64 MB, every page touched
        del x
        print(resident_mb() - before)
    """
    kept = {
        mode: float(
            subprocess.run(
                [sys.executable, "-c", code, mode],
                capture_output=True,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parents[1],
            ).stdout
        )
        for mode in ("default", "keep")
    }
    assert kept["default"] < 16 and kept["keep"] > 48, kept


def test_data_loading_bench_compares_worker_counts_on_the_same_batches(mini_teacher_dir, tmp_path):
    import numpy as np

    from engine.media.video import write_mp4

    folder = tmp_path / "clips"
    folder.mkdir()
    for i in range(2):
        write_mp4(
            folder / f"c{i}.mp4", np.random.default_rng(i).integers(0, 255, (40, 48, 64, 3), dtype=np.uint8), fps=8
        )
        (folder / f"c{i}.txt").write_text(f"clip {i}")
    result = run_engine(
        "bench",
        "data-loading",
        "--base",
        str(mini_teacher_dir),
        "--data",
        str(folder),
        "--workers",
        "0,2",
        "--batches",
        "3",
        "--batch-size",
        "2",
        "--step-ms",
        "5",
        "--json",
        str(tmp_path / "d.json"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["windows"] == 4 and data["videos"] == 2 and data["batches"] == 3  # 5 s at 8 fps: two 17-frame windows
    assert [r["workers"] for r in data["results"]] == [0, 2] and all(r["same_batches"] for r in data["results"])
    assert all(r["prepare_s"] > 0 and r["batches_s"] >= 0.015 for r in data["results"])  # 3 simulated 5 ms steps
    assert "workers  prepare_s  batches_s  ms_per_batch  same_batches" in result.stderr

    refused = run_engine("bench", "data-loading", "--workers", "0,two", timeout=120)
    assert (
        refused.returncode == 2
        and refused.stderr.strip() == "error: --workers must be counts >= 0 separated by commas, got '0,two'"
    )


def test_train_step_bench_times_the_causal_students_rollout():
    from engine.evaluation.bench import bench_train_step

    size = (17, None, None)  # the model's own length, given: synthetic latents, no clips to render
    ar = bench_train_step("shapes-tiny", batch_size=2, task="ar", student_input="backward", size=size)
    assert (ar["task"], ar["student_input"], ar["batch_size"]) == ("ar", "backward", 2)
    assert ar["student_update_tflop"] > 0 and ar["fake_update_tflop"] > 0 and ar["student_update_s"] > 0
