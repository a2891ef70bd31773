"""Drift along a video longer than the world's clips: windows of the clip length sharing a frame, each read by
the recognizer; `evaluate --num-frames 33` adds the per-window table and curves."""

import json

import numpy as np

from engine.evaluation import drift
from engine.shapes import world


def test_windows_cover_a_long_video_with_clip_length_windows_sharing_one_frame():
    assert drift.windows(65) == [(0, 17), (16, 33), (32, 49), (48, 65)]
    assert drift.windows(17) == [(0, 17)] and drift.windows(16) == []


def test_a_colour_that_fades_along_the_video_shows_as_falling_saturation():
    from engine.shapes.recognizer import Recognizer

    clips, _ = world.sample_clips({"colour": "red"}, 2, seed=3)
    long = np.concatenate([clips, clips[:, 1:]], axis=1)  # 33 frames: the clip, then again
    fade = np.linspace(1.0, 0.3, long.shape[1])[None, :, None, None, None]
    grey = long.mean(-1, keepdims=True)
    faded = np.clip(grey + (long - grey) * fade, 0, 255).astype(np.uint8)
    first, second = drift.along(faded, {"colour": "red"}, Recognizer())
    assert (first["frames"], second["frames"]) == ([0, 17], [16, 33])
    assert second["saturation"] < first["saturation"] * 0.8
    assert 0 <= first["prompt_fidelity"] <= 1


def test_evaluate_past_the_clip_length_adds_the_drift_table_and_curves(mini_teacher_dir, tmp_path):
    from conftest import run_engine

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\n")
    result = run_engine(
        "evaluate",
        "--base",
        str(mini_teacher_dir),
        "--models",
        "teacher@2",
        "--prompts",
        str(prompts),
        "--seeds",
        "2",
        "--num-frames",
        "33",
        "--json",
        str(tmp_path / "e.json"),
        "--md",
        str(tmp_path / "e.md"),
        "--plot",
        str(tmp_path / "e.png"),
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "e.json").read_text())
    assert [w["frames"] for w in data["drift"]["teacher@2"]] == [[0, 17], [16, 33]]
    assert "real" not in data["drift"]  # the world's clips are one window long
    assert all(w["saturation"] > 0 for w in data["drift"]["teacher@2"])
    assert "| teacher@2 |" in (tmp_path / "e.md").read_text().split("drift along the video")[1]
    assert (tmp_path / "e-drift.png").stat().st_size > 5_000
