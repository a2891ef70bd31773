"""The training-seed study: its plan of distill runs and the mean +- std it reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.evaluation import study


def _result(models: dict[str, dict[str, float]]) -> dict:
    """An evaluate result with the given detailed-regime metrics per model name."""
    return {"models": {name: {"by_regime": {"detailed": dict(metrics)}} for name, metrics in models.items()}}


def test_plan_trains_one_dmd2_per_seed_and_starts_every_variant_from_it(tmp_path):
    runs = study.plan(tmp_path, [0, 1], "shapes-tiny", 1250, 200, ["dmd2-continued", "dfd-p0.5-backward"])
    assert [(r.seed, r.name) for r in runs] == [(0, "dmd2"), (0, "dmd2-continued"), (0, "dfd-p0.5-backward"),
                                                (1, "dmd2"), (1, "dmd2-continued"), (1, "dfd-p0.5-backward")]
    dfd = runs[2].command
    assert dfd[dfd.index("--init") + 1] == str(tmp_path / "seed0" / "dmd2")
    assert dfd[dfd.index("--student-input") + 1] == "backward" and dfd[dfd.index("--steps") + 1] == "200"
    assert runs[3].command[runs[3].command.index("--seed") + 1] == "1"
    with pytest.raises(ValueError, match="unknown variant.*dfd-p2"):
        study.plan(tmp_path, [0], "shapes-tiny", 10, 10, ["dfd-p2"])


def test_combine_reports_mean_and_sample_std_over_training_seeds_by_run_name():
    refs = _result({"real": {"diversity": 0.4, "prompt_fidelity": 0.97}})
    per_seed = {0: _result({"runs/seed0/dfd-p0.5": {"diversity": 0.2, "prompt_fidelity": 0.8}}),
                1: _result({"runs/seed1/dfd-p0.5": {"diversity": 0.4, "prompt_fidelity": 0.9}}),
                2: _result({"runs/seed2/dfd-p0.5": {"diversity": 0.3, "prompt_fidelity": None}})}
    out = study.combine(refs, per_seed, gaps={"dfd-p0.5": [0.5, 0.7, 0.6]})
    dfd = out["models"]["dfd-p0.5"]
    assert dfd["seeds"] == 3 and out["training_seeds"] == [0, 1, 2]
    assert dfd["by_regime"]["detailed"]["diversity"] == {"mean": 0.3, "std": 0.1, "n": 3}
    assert dfd["by_regime"]["detailed"]["prompt_fidelity"] == {"mean": 0.85, "std": 0.0707, "n": 2}  # None skipped
    assert dfd["real_gap"]["mean"] == 0.6
    assert out["models"]["real"]["by_regime"]["detailed"]["diversity"] == {"mean": 0.4, "std": 0.0, "n": 1}
    table = study.to_markdown(out)
    assert "| dfd-p0.5 | 0.850 ± 0.071 | 0.300 ± 0.100 |" in table and "0.600 ± 0.100 |" in table


def test_study_plot_is_a_png(tmp_path):
    per_seed = {s: _result({f"r/seed{s}/dmd2": {"diversity": 0.1 * s, "mode_tv": 0.3}}) for s in (0, 1)}
    path = study.plot(study.combine(_result({"real": {"diversity": 0.4}}), per_seed), tmp_path / "study.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
