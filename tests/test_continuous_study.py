"""The continuous factors over a study's training seeds (engine/evaluation/continuous_study.py): the run folders a
study wrote, named per seed, and every contrast paired over the seeds, on a group whose figures are set here."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine.evaluation import continuous_factors as cf
from engine.evaluation import continuous_study

SEEDS = [20, 21, 22]


def _group(spread_of: dict[str, float]) -> dict:
    """A measure() group: every factor's spread on every prompt is the model's value, and so is its net speed
    with the motion left free (1.0 with it named)."""
    models = {}
    for name, value in spread_of.items():
        stat = {"mean": 1.0, "real_mean": 1.0, "spread": value, "real_spread": 2.0, "w1": 2.0 - value}
        by_regime = {
            regime: {"prompts": 10, "unread": 0.0, **{f: dict(stat) for f in cf.FACTORS}}
            for regime in ("detailed", "underspecified")
        }
        motion = {
            "motion named": {"clips": 80, "speed": 1.0, "path_speed": 1.0, "straightness": 1.0, "still": 0.0},
            "motion free": {"clips": 80, "speed": value, "path_speed": 1.0, "straightness": value, "still": 0.1},
        }
        models[name] = {"by_regime": by_regime, "per_prompt": {}, "motion": motion}
    real = {
        kind: {"clips": 320, "speed": 0.85, "path_speed": 0.86, "straightness": 0.99, "still": 0.0}
        for kind in ("motion named", "motion free")
    }
    return {
        "models": models,
        "speeds": {name: {} for name in spread_of},
        "speed_summary": {n: {} for n in spread_of},
        "real_motion": real,
    }


def _study_folder(tmp_path, variants=("control", "dfd")):
    for seed in SEEDS:
        for variant in variants:
            folder = tmp_path / f"seed{seed}" / variant
            folder.mkdir(parents=True)
            (folder / continuous_study.LORA_FILE).write_bytes(b"")
    return tmp_path


def test_contrasts_are_paired_over_seeds_and_holm_adjusted(tmp_path):
    layout = continuous_study.study_models(_study_folder(tmp_path), SEEDS, ["control", "dfd"])
    # the control's spread varies from seed to seed; DFD's is the control's of the same seed plus 0.5, 0.6, 0.7
    values = {}
    for seed, control, gain in zip(SEEDS, (1.0, 3.0, 2.0), (0.5, 0.6, 0.7), strict=True):
        values[layout["control"][seed]] = control
        values[layout["dfd"][seed]] = control + gain
    group = _group(values)
    named = continuous_study.relabel(group, layout)
    assert named["dfd"][21] == "seed21/dfd" and "seed21/dfd" in group["models"]
    study = continuous_study.seed_paired(group, named, [("dfd", "control")])
    spread = study["tables"]["detailed|spread"]
    diff = spread["contrasts"]["dfd - control|x0"]
    assert diff["mean"] == pytest.approx(0.6) and diff["seeds"] == SEEDS
    assert diff["low"] == pytest.approx(0.6 - 4.303 * 0.1 / 3**0.5, abs=1e-3)  # t(0.975, 2) x sd / sqrt(3)
    assert diff["resolved"] and diff["p"] < 0.05
    assert diff["p_holm"] == pytest.approx(min(1.0, 5 * diff["p"]), rel=1e-3)  # five equal p-values: all x 5
    # unpaired, the control's seed-to-seed spread (sd 1.0) would hide the gain: the variant rows overlap
    assert spread["variants"]["control"]["x0"]["high"] > spread["variants"]["dfd"]["x0"]["low"]
    assert study["tables"]["detailed|w1"]["contrasts"]["dfd - control|size"]["mean"] == pytest.approx(-0.6)
    motion = study["tables"]["motion"]["contrasts"]
    assert motion["dfd - control|net speed, motion free"]["mean"] == pytest.approx(0.6)
    assert motion["dfd - control|straightness, motion free"]["mean"] == pytest.approx(0.6)
    assert motion["dfd - control|net speed, motion named"]["mean"] == pytest.approx(0.0)
    assert study["real_motion"]["net speed, motion free"] == pytest.approx(0.85)
    text = continuous_study.to_markdown(study)
    assert "| dfd - control | +0.600 [" in text and "Over training seeds 20, 21, 22 (3)" in text


def test_a_run_without_its_student_is_named(tmp_path):
    folder = _study_folder(tmp_path)
    (folder / "seed21" / "dfd" / continuous_study.LORA_FILE).unlink()
    with pytest.raises(ValueError, match=r"seed21/dfd"):
        continuous_study.study_models(folder, SEEDS, ["control", "dfd"])
    run = subprocess.run(
        [sys.executable, "scripts/continuous_factors.py", "--study", str(folder), "20-22", "control,dfd"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "seed21/dfd" in run.stderr and "python -m engine study --out" in run.stderr
    one = subprocess.run(
        [sys.executable, "scripts/continuous_factors.py", "--study", str(folder), "20-22", "dfd"],
        capture_output=True,
        text=True,
    )
    assert one.returncode == 2 and "give two or more" in one.stderr
