"""The pre-registered analyses (engine/evaluation/confirmatory.py): primary endpoints in fixed sequence, the
secondary family Holm-corrected, the image-to-video plan over its seeds and centre frames, follow-ups on the
registered seeds trained otherwise kept exploratory, bootstrap intervals for the references, and the
registered command planning every run the endpoints need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.evaluation import confirmatory, stats, study, study_plan
from study_helpers import evaluate_result


def _confirm_study(seeds=(20, 21, 22, 23, 24)) -> dict:
    """A combined study on the pre-registered seeds: DFD +1 mode on every seed but one (+1.5), fidelity
    within a hair of the control; the other variants' runs as plain constants."""
    per_seed = {}
    for i, s in enumerate(seeds):
        runs = {
            "dmd2": (4.5, 0.95, 0.93),
            "dmd2-continued": (5.0, 0.95, 0.93),
            "dfd-p0.5": (6.0 + (0.5 if i == 2 else 0.0), 0.95 - 0.01 * (i % 2), 0.90),
            "dfd-p0.5-rise": (6.0, 0.95, 0.92 + 0.01 * i),
            "dfd-p0.25": (5.8, 0.95, 0.92),
            "dfd-tmin0.5": (5.9, 0.95, 0.905 + 0.002 * i),
        }
        per_seed[s] = {
            "models": {
                f"r/seed{s}/{n}": {
                    "by_regime": {
                        "detailed": {"all_named_correct": named, "prompt_fidelity": 0.98},
                        "underspecified": {"mode_coverage": modes, "mode_tv": 0.3, "prompt_fidelity": fid},
                    }
                }
                for n, (modes, named, fid) in runs.items()
            }
        }
    return study.combine(evaluate_result({"real": {}}), per_seed)


def test_the_preregistered_analysis_tests_in_sequence_and_holm_corrects_the_rest():
    out = _confirm_study()
    assert out["training_seeds"] == [20, 21, 22, 23, 24]
    found = confirmatory.confirmatory(out)
    p1, p2 = found["primary"]
    # +1, +1, +1.5, +1, +1: mean 1.1, sd 0.2236, t = 11.0 on 4 df
    assert p1["held"] and p1["p"] == pytest.approx(stats.t_sf(11.0, 4), abs=1e-6)
    assert p1["seeds"] == [20, 21, 22, 23, 24]
    # 0, -0.01, 0, -0.01, 0: mean -0.004, bound -0.004 - 2.132 * 0.005477 / sqrt 5 = -0.0092 > -0.05
    assert p2["tested"] and p2["held"] and "one-sided 95% lower bound -0.009" in p2["text"]
    by_id = {e["id"]: e for e in found["secondary"]}
    assert by_id["S5"]["held"] and by_id["S1"]["p"] == 1.0  # +1.5 modes over DMD2; mode TV the same everywhere
    assert by_id["S9"]["held"] is False and by_id["S6"]["p"] is not None
    assert all(e["p_holm"] is None or e["p_holm"] >= e["p"] for e in found["secondary"])
    table = study.to_markdown(out)
    assert "**Pre-registered analysis**" in table and "| P1 | DFD p=0.5 covers more modes than the control |" in table
    assert "**Pre-registered analysis**" not in study.to_markdown(_confirm_study((0, 1, 2, 3, 4)))


def test_a_failed_primary_stops_the_sequence():
    out = _confirm_study()
    for s in out["models"]["dfd-p0.5"]["by_seed"]["underspecified"]["mode_coverage"]:
        out["models"]["dfd-p0.5"]["by_seed"]["underspecified"]["mode_coverage"][s] = 5.0  # no gain at all
    p1, p2 = confirmatory.confirmatory(out)["primary"]
    assert not p1["held"] and not p2["tested"] and not p2["held"]
    assert "| P2 |" in study.to_markdown(out) and "not tested |" in study.to_markdown(out)


def _i2v_study() -> dict:
    """A combined image-to-video study on its pre-registered seeds 30-32: per run and seed, mode TV on each
    underspecified prompt (centre-frame prompts lower for DFD by 0.10, 0.12, 0.08; the rest equal), frame kept
    and all named correct."""
    per_seed = {}
    centre = set(confirmatory.CENTRE_FREE)
    prompts = [*confirmatory.CENTRE_FREE, "a red shape", "a circle", "a shape on a dark background"]
    for i, s in enumerate((30, 31, 32)):
        models, rows = {}, {}
        for name, gain, kept in (("dmd2", 0.0, 0.92), ("dmd2-continued", 0.0, 0.93), ("dfd-p0.5", 1.0, 0.92)):
            tv = {p: 0.40 - (gain * (0.10, 0.12, 0.08)[i] if p in centre else 0.0) for p in prompts}
            model = f"r/seed{s}/{name}"
            models[model] = {
                "by_regime": {
                    "detailed": {"all_named_correct": 0.95},
                    "underspecified": {"mode_tv": sum(tv.values()) / len(tv), "frame_consistency": kept},
                }
            }
            rows[model] = {p: {"mode_tv": v, "saturation": 0.3} for p, v in tv.items()}
        per_seed[s] = {"models": models, "per_prompt": rows}
    return study.combine(evaluate_result({"real": {}}), per_seed)


def test_the_i2v_preregistration_tests_its_endpoints_over_its_seeds_and_centre_frames():
    out = json.loads(json.dumps(_i2v_study()))  # as read back from its JSON: seeds as strings
    assert confirmatory.preregistration_of(out) is confirmatory.IMAGE_TO_VIDEO
    found = confirmatory.confirmatory(out, confirmatory.IMAGE_TO_VIDEO)
    [p1] = found["primary"]
    # the regime mean over 7 prompts falls by 4/7 of the centre gain: -0.0571, -0.0686, -0.0457
    assert p1["held"] and p1["mean"] == pytest.approx(-0.0571, abs=1e-3) and p1["seeds"] == [30, 31, 32]
    by_id = {e["id"]: e for e in found["secondary"]}
    assert by_id["S2"]["mean"] == pytest.approx(-0.10, abs=1e-4)  # over the four centre-frame prompts alone
    assert by_id["S3"]["held"] is False and "non-inferiority (margin 0.05)" == by_id["S3"]["test"]
    assert by_id["S4"]["p"] is not None
    table = study.to_markdown(out)
    assert "docs/results/preregistration-i2v.md" in table and "| S2 | " in table and "4 prompts: a shape" in table
    assert confirmatory.preregistration_of(_confirm_study()) is confirmatory.TEXT_TO_VIDEO


def test_a_follow_up_on_the_registered_seeds_with_other_steps_is_exploratory(tmp_path):
    """The same seeds post-trained for 600 steps are not the registered runs: no pre-registered analysis in
    their tables. The steps come from each run's distill_config.json in the records."""
    records = tmp_path / "records"
    records.mkdir()
    (records / "references.json").write_text(json.dumps(evaluate_result({"real": {"diversity": 0.4}})))
    for seed in (30, 31, 32):
        for name, steps in (("dmd2", 1250), ("dmd2-continued", 600), ("dfd-p0.5", 600)):
            run = records / f"seed{seed}" / name
            run.mkdir(parents=True)
            (run / "eval.json").write_text(json.dumps(evaluate_result({f"runs/seed{seed}/{name}": {"diversity": 0.2}})))
            (run / "distill_config.json").write_text(json.dumps({"steps": steps, "guidance": 3.0}))
    follow_up = json.loads(json.dumps(study.rederive(records)))
    assert follow_up["models"]["dfd-p0.5"]["steps"] == 600 and follow_up["models"]["dmd2"]["steps"] == 1250
    assert confirmatory.preregistration_of(follow_up) is None
    assert "Pre-registered analysis" not in study.to_markdown(follow_up)
    for name in ("dmd2-continued", "dfd-p0.5"):  # the registered 200 steps: analysed as registered
        for seed in (30, 31, 32):
            (records / f"seed{seed}" / name / "distill_config.json").write_text(json.dumps({"steps": 200}))
    assert confirmatory.preregistration_of(study.rederive(records)) is confirmatory.IMAGE_TO_VIDEO


def test_reference_rows_get_bootstrap_intervals_from_their_clips():
    refs = json.loads((Path(__file__).resolve().parents[1] / "docs/results/study-records/references.json").read_text())
    out = confirmatory.reference_intervals(refs, metrics=("all_named_correct",))
    teacher = out["teacher@4:cfg=1"]["detailed"]["all_named_correct"]
    recorded = refs["models"]["teacher@4:cfg=1"]["by_regime"]["detailed"]["all_named_correct"]
    assert teacher["mean"] == pytest.approx(recorded, abs=1e-3) and teacher["low"] < teacher["mean"] < teacher["high"]
    assert out["real"]["detailed"]["all_named_correct"] == {
        **out["real"]["detailed"]["all_named_correct"],
        "low": 1.0,
        "high": 1.0,
    }


def test_the_preregistered_command_plans_every_variant_on_all_five_fresh_seeds(tmp_path):
    import re

    text = (Path(__file__).resolve().parents[1] / "docs/results/preregistration.md").read_text()
    command = " ".join(
        text.split("OMP_NUM_THREADS=1 python -m engine study", 1)[1].split("\n\n")[0].replace("\\\n", " ").split()
    )
    seeds, variants = re.search(r"--seeds (\d+)-(\d+)", command), re.search(r"--variants (\S+)", command)[1]
    assert (int(seeds[1]), int(seeds[2])) == (confirmatory.PREREGISTERED_SEEDS[0], confirmatory.PREREGISTERED_SEEDS[-1])
    runs = study.plan(tmp_path, list(range(20, 25)), "shapes-tiny", 1250, 200, variants.split(","))
    names = {e[2] for e in confirmatory.PRIMARY + confirmatory.SECONDARY}
    names |= {e[6] for e in confirmatory.PRIMARY + confirmatory.SECONDARY}
    assert {(r.name, r.seed) for r in runs} == {(n, s) for n in names for s in range(20, 25)}
    assert study_plan.VARIANTS["dfd-p0.25"][-1] == "0.25"  # constant p, the rising schedule's average
