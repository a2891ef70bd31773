"""The training-seed study: its plan of distill runs, the references it adds, the re-use of evaluations
by fingerprint, the records it re-derives from, and the claims it marks resolved or not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.evaluation import study, study_plan, study_references, study_report
from study_helpers import evaluate_result


def test_plan_trains_one_dmd2_per_seed_and_starts_every_variant_from_it(tmp_path):
    runs = study.plan(tmp_path, [0, 1], "shapes-tiny", 1250, 200, ["dmd2-continued", "dfd-p0.5-backward"])
    assert [(r.seed, r.name) for r in runs] == [
        (0, "dmd2"),
        (0, "dmd2-continued"),
        (0, "dfd-p0.5-backward"),
        (1, "dmd2"),
        (1, "dmd2-continued"),
        (1, "dfd-p0.5-backward"),
    ]
    dfd = runs[2].command
    assert dfd[dfd.index("--init") + 1] == str(tmp_path / "seed0" / "dmd2")
    assert dfd[dfd.index("--student-input") + 1] == "backward" and dfd[dfd.index("--steps") + 1] == "200"
    assert runs[3].command[runs[3].command.index("--seed") + 1] == "1"
    with pytest.raises(ValueError, match="unknown variant 'dfd-p2'"):
        study.plan(tmp_path, [0], "shapes-tiny", 10, 10, ["dfd-p2"])
    with pytest.raises(ValueError, match="bad seed count in 'dfd-p1@x'"):
        study.plan(tmp_path, [0], "shapes-tiny", 10, 10, ["dfd-p1@x"])


def test_the_headline_trio_gets_five_seeds_the_others_three_or_what_is_asked(tmp_path):
    runs = study.plan(
        tmp_path, [0, 1, 2, 3, 4], "shapes-tiny", 10, 10, ["dmd2-continued", "dfd-p0.5", "dfd-p1", "dfd-blend0.5@1"]
    )
    seeds = {}
    for r in runs:
        seeds.setdefault(r.name, []).append(r.seed)
    assert seeds == {
        "dmd2": [0, 1, 2, 3, 4],
        "dmd2-continued": [0, 1, 2, 3, 4],
        "dfd-p0.5": [0, 1, 2, 3, 4],
        "dfd-p1": [0, 1, 2],
        "dfd-blend0.5": [0],
    }
    assert len(study.plan(tmp_path, [0, 1], "shapes-tiny", 10, 10, None)) == 2 * 9  # the paper's 8 and dmd2


def test_every_variant_is_a_distill_command_the_config_accepts(tmp_path):
    from engine.config.distill import DistillConfig
    from engine.config.fields import flag

    flags = {flag(f) for f in DistillConfig.__dataclass_fields__}
    for name, options in study_plan.VARIANTS.items():
        assert {o for o in options if o.startswith("--")} <= flags, name


def _seed_eval(seed: int, **per_run) -> dict:
    return evaluate_result({f"runs/seed{seed}/{name}": metrics for name, metrics in per_run.items()}, "underspecified")


def test_combine_keeps_each_seed_and_the_claims_get_paired_intervals():
    refs = evaluate_result({"real": {"diversity": 0.4}, "teacher@2:cfg=3": {"mode_coverage": 5.0}}, "underspecified")
    per_seed = {
        s: _seed_eval(
            s,
            **{
                "dmd2-continued": {"mode_coverage": 5.0 + 0.1 * s},
                "dfd-p0.5": {"mode_coverage": 6.0 + 0.1 * s + (0.05 if s == 1 else 0)},
            },
        )
        for s in range(3)
    }
    out = study.combine(refs, per_seed, gaps={"dfd-p0.5": {0: 0.5, 1: 0.7, 2: 0.6}}, guidance={"dfd-p0.5": 3.0})
    dfd = out["models"]["dfd-p0.5"]
    assert dfd["seeds"] == 3 and dfd["by_seed"]["underspecified"]["mode_coverage"] == pytest.approx(
        {0: 6.0, 1: 6.15, 2: 6.2}
    )
    assert dfd["real_gap"]["mean"] == 0.6 and out["models"]["teacher@2:cfg=3"]["cfg"] == 3.0
    found = {c["claim"]: c for c in study_report.claims(out)}
    modes = found["DFD p=0.5 covers more modes than the control (underspecified)"]
    assert modes["difference"]["seeds"] == [0, 1, 2] and modes["verdict"] == "better"  # +1.0, +1.05, +1.0
    vs_teacher = found["DFD p=0.5 covers as many modes as the 4-NFE teacher with CFG"]["difference"]
    assert vs_teacher["mean"] == pytest.approx(1.1167, abs=1e-4)  # against the teacher's one value
    table = study.to_markdown(out)
    assert "| teacher@2:cfg=3 | 3 | 4 | - |" in table and "| dfd-p0.5 | 1 (distilled from 3) | 4 | 3 |" in table
    assert "| DFD p=0.5 covers more modes than the control (underspecified) |" in table and "| better |" in table


def test_a_variant_that_loses_on_an_axis_does_not_dominate():
    refs = evaluate_result({"real": {}})
    per_seed = {
        s: {
            "models": {
                f"r/seed{s}/{n}": {
                    "by_regime": {
                        "detailed": {"prompt_fidelity": v, "all_named_correct": 0.9},
                        "underspecified": {"mode_coverage": 6.0, "mode_tv": 0.3, "prompt_fidelity": 0.9},
                    }
                }
                for n, v in (("dmd2-continued", 0.99), ("dfd-p0.5", 0.98 + 0.001 * s), ("dfd-blend0.5", 0.995))
            }
        }
        for s in range(3)
    }
    won = study_report.dominance(study.combine(refs, per_seed))
    assert won["dfd-p0.5"]["no_resolved_loss"] is False  # fidelity 0.980-0.982 against 0.99 on every seed
    assert won["dfd-blend0.5"]["no_resolved_loss"] and won["dfd-blend0.5"]["not_worse_by_mean"]


def test_an_evaluation_is_reused_only_while_its_fingerprint_matches(tmp_path, monkeypatch):
    calls = []

    def fake_run(command):
        calls.append(command)
        Path(command[command.index("--json") + 1]).write_text(json.dumps({"models": {}, "run": len(calls)}))
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(study.subprocess, "run", fake_run)
    lora = tmp_path / "lora.safetensors"
    lora.write_bytes(b"one")
    path = tmp_path / "eval.json"
    first = study._evaluated(["a"], 8, "shapes-tiny", path, [lora], log=lambda _: None)
    assert study._evaluated(["a"], 8, "shapes-tiny", path, [lora], log=lambda _: None) == first and len(calls) == 1
    assert first["study_fingerprint"]["settings"]["eval_seeds"] == 8
    lora.write_bytes(b"retrained")
    study._evaluated(["a"], 8, "shapes-tiny", path, [lora], log=lambda _: None)
    study._evaluated(["a"], 16, "shapes-tiny", path, [lora], log=lambda _: None)
    assert len(calls) == 3
    assert study.fingerprint(["a"], 8, "b")["hash"] != study.fingerprint(["a"], 8, "b", [lora])["hash"]


def test_the_modules_left_out_of_the_fingerprint_are_ones_an_evaluate_run_never_imports():
    """Editing the study's words or analysis re-uses evaluations; a module the evaluate command does import
    (at start or when it samples, scores and reads references) must be in the fingerprint."""
    lazily = "adherence features reference".split()  # what run_evaluation imports inside its functions
    code = (
        "import sys, engine.evaluation.evaluate, engine.shapes.recognizer, engine.generation.generate, "
        "engine.models.base; " + "; ".join(f"import engine.evaluation.{m}" for m in lazily) + "; "
        "print(' '.join(m.rsplit('.', 1)[1] + '.py' for m in sys.modules if m.startswith('engine.evaluation.')))"
    )
    root = Path(__file__).resolve().parents[1]
    loaded = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    imported = set(loaded.stdout.split())
    assert "evaluate.py" in imported and "study_references.py" in imported
    assert not imported & study._NOT_EVALUATION, imported & study._NOT_EVALUATION
    for name in study._NOT_EVALUATION:
        assert (root / "engine" / "evaluation" / name).is_file(), f"{name} is listed but does not exist"


def test_the_records_alone_rederive_the_study(tmp_path):
    records = tmp_path / "records"
    (records / "references.json").parent.mkdir(parents=True)
    (records / "references.json").write_text(json.dumps(evaluate_result({"real": {"diversity": 0.4}})))
    for name, diversity in (("dfd-p0.5", 0.2), ("dfd-blend0.5", 0.3)):
        run = records / "seed0" / name
        run.mkdir(parents=True)
        (run / "eval.json").write_text(
            json.dumps(evaluate_result({"real": {}, f"runs/seed0/{name}": {"diversity": diversity}}))
        )
        (run / "summary.json").write_text(json.dumps({"real_gap_last20": 0.7}))
        (run / "distill_config.json").write_text(json.dumps({"guidance": 3.0}))
    out = study.rederive(records)
    assert out["models"]["dfd-p0.5"]["real_gap"]["mean"] == 0.7 and out["models"]["dfd-p0.5"]["trained_cfg"] == 3.0
    assert out["models"]["dfd-p0.5"]["by_regime"]["detailed"]["diversity"]["mean"] == 0.2
    assert out["models"]["dfd-blend0.5"]["by_regime"]["detailed"]["diversity"]["mean"] == 0.3
    assert "dfd-blend0.5" not in study.rederive(records, {(0, "dfd-p0.5")})["models"]  # only the plan's runs


def test_the_study_command_rebuilds_its_tables_from_records_alone(tmp_path, capsys):
    from engine.cli.main import main

    records = tmp_path / "records"
    records.mkdir()
    (records / "references.json").write_text(json.dumps(evaluate_result({"real": {"diversity": 0.4}})))
    for seed, name, diversity in ((0, "dfd-p0.5", 0.2), (1, "dfd-p0.5", 0.3), (0, "dfd-blend0.5", 0.5)):
        run = records / f"seed{seed}" / name
        run.mkdir(parents=True)
        evaluated = evaluate_result({f"runs/seed{seed}/{name}": {"diversity": diversity}})
        (run / "eval.json").write_text(json.dumps(evaluated))
    out = tmp_path / "study.json"
    assert main(["study", "--from-records", str(records), "--json", str(out)]) == 0
    models = json.loads(out.read_text())["models"]
    assert models["dfd-p0.5"]["by_regime"]["detailed"]["diversity"]["mean"] == 0.25 and "dfd-blend0.5" in models
    assert (
        main(["study", "--from-records", str(records), "--variants", "dfd-p0.5", "--seeds", "0", "--json", str(out)])
        == 0
    )
    models = json.loads(out.read_text())["models"]
    assert models["dfd-p0.5"]["seeds"] == 1 and "dfd-blend0.5" not in models
    # re-deriving into a study's JSON keeps how its runs were made
    made = {"commands": ["distill --seed 0"], "post_steps": 200}
    out.write_text(json.dumps({"models": {}, "plan": made}))
    assert main(["study", "--from-records", str(records), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["plan"] == {**made, "rederived_from": str(records)}
    assert main(["study", "--from-records", str(tmp_path / "nowhere")]) != 0
    assert "not a study records folder" in capsys.readouterr().err


def test_saturation_is_judged_at_each_clips_own_mode_and_sharpness_against_decoded_real():
    prompt = "a red circle moving left on a dark background"
    mode = {"shape": "circle", "colour": "red", "motion": "left", "background": "dark"}
    at_mode = study_references.mode_saturation(mode)
    row = {
        "saturation": at_mode + 0.05,
        "sharpness": 2.0,
        "clip_factors": [mode, mode],
        "clip_saturation": [at_mode + 0.04, at_mode + 0.06],
    }
    terms = study_references.prompt_terms(prompt, row, {"sharpness": 4.0})
    assert terms["sharpness_vs_decoded"] == 0.5 and terms["sharpness_deviation"] == 0.5
    assert terms["saturation_excess"] == pytest.approx(0.05) and terms["saturation_error_matched"] == pytest.approx(
        0.05
    )
    assert abs(study_references.population_saturation(prompt) - at_mode) < 0.01  # one mode: the same reference


def test_study_plot_is_a_png(tmp_path):
    per_seed = {s: evaluate_result({f"r/seed{s}/dmd2": {"diversity": 0.1 * s, "mode_tv": 0.3}}) for s in (0, 1)}
    path = study.plot(study.combine(evaluate_result({"real": {"diversity": 0.4}}), per_seed), tmp_path / "study.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_plots_empty_panel_shows_the_modes_against_fidelity_trade_off_of_the_trained_models():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.evaluation.study_tables import _tradeoff

    def model(modes, named, seeds=None):
        return {
            "seeds": seeds,
            "by_regime": {
                "underspecified": {"mode_coverage": {"mean": modes, "std": 0.5}},
                "detailed": {"all_named_correct": {"mean": named, "std": 0.01}},
            },
        }

    found = {
        "models": {
            "teacher@2:cfg=3": model(4.1, 0.26),
            "teacher@50:cfg=3": model(6.3, 0.84),
            "dmd2": model(4.8, 0.96, 5),
            "dfd-p0.5": model(6.2, 0.92, 5),
            "real": {"by_regime": {}},
        }
    }
    fig, ax = plt.subplots()
    assert _tradeoff(ax, found, list(found["models"]))
    assert sorted(t.get_text() for t in ax.texts) == ["dfd-p0.5", "dmd2", "teacher@50:cfg=3"]  # off the line: left out
    assert not _tradeoff(plt.subplots()[1], {"models": {"real": {"by_regime": {}}}}, ["real"])
    plt.close("all")
