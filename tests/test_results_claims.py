"""The study's figures in the README and the Distill tab come from docs/results/study*.json: regenerating them
in memory gives the files' text, a changed JSON changes the words, and the README stays short."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.evaluation import claims, when_dfd_helps

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def studies():
    return claims.load_studies()


def test_readme_block_is_the_one_the_json_makes(studies):
    readme = (ROOT / "README.md").read_text()
    assert claims.with_block(readme, claims.readme_block(studies)) == readme, (
        "README.md's study figures differ from docs/results/*.json; run `python -m engine results --write`"
    )


def test_results_page_summary_is_the_one_the_json_makes(studies):
    page = (ROOT / "docs" / "results.md").read_text()
    assert claims.with_block(page, claims.results_block(studies), "results.md") == page, (
        "docs/results.md's summary differs from docs/results/*.json; run `python -m engine results --write`"
    )


def test_readme_is_at_most_200_lines():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail to docs/"


def test_the_tab_shows_the_engine_text_folded_away(studies):
    import studio.distill as distill

    text = distill.when_dfd_helps()
    assert text == when_dfd_helps.tab_text(studies)
    source = (ROOT / "studio" / "distill.py").read_text()
    assert re.search(r'gr\.Accordion\("When DFD helps[^"]*", open=False', source)
    assert not re.search(r"\d\.\d{3}", source), "studio/distill.py quotes a figure by hand; it belongs in the JSON"


def test_figures_follow_the_json(studies):
    """The words read the JSON: a run that gained more modes is quoted so, and a verdict follows its interval."""
    changed = copy.deepcopy(studies)
    by_seed = changed["t2v"]["models"]["dfd-p0.5"]["by_seed"]["underspecified"]["prompt_fidelity"]
    control = changed["t2v"]["models"]["dmd2-continued"]["by_seed"]["underspecified"]["prompt_fidelity"]
    for seed in by_seed:  # DFD's underspecified fidelity now the control's + 0.05 on every seed but one
        by_seed[seed] = control[seed] + (0.05 if seed != "0" else 0.04)
    mean = sum(by_seed.values()) / len(by_seed)
    changed["t2v"]["models"]["dfd-p0.5"]["by_regime"]["underspecified"]["prompt_fidelity"]["mean"] = mean
    before, after = claims.readme_block(studies), claims.readme_block(changed)
    assert "Resolved worse: fidelity (underspecified)" in before
    assert "Resolved worse: fidelity (underspecified)" not in after
    assert f"fidelity (underspecified) {mean:.3f} against" in after
    assert "Resolved better" in when_dfd_helps.tab_text(changed) or "(better)" in when_dfd_helps.tab_text(changed)


def test_quoted_means_follow_the_json(studies):
    """Shift every text-to-video mean in the JSON and the quoted means move with it."""
    block = claims.readme_block(studies)
    shifted = copy.deepcopy(studies)
    for entry in shifted["t2v"]["models"].values():
        for regime in entry.get("by_regime", {}).values():
            for cell in regime.values():
                if isinstance(cell, dict) and cell.get("mean") is not None:
                    cell["mean"] += 0.0371
    moved = claims.readme_block(shifted).split("Image-to-video")[0]
    assert "DFD 6.20 ± 0.37" in block and "DFD 6.20" not in moved  # the means quoted follow the JSON


def test_cli_check_and_write(tmp_path):
    readme, page = tmp_path / "README.md", tmp_path / "results.md"
    shutil.copy(ROOT / "README.md", readme)
    shutil.copy(ROOT / "docs" / "results.md", page)
    run = [sys.executable, "-m", "engine", "results", "--readme", str(readme), "--results-page", str(page)]
    ok = subprocess.run([*run, "--check"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    readme.write_text(readme.read_text().replace("DFD 6.20 ± 0.37", "DFD 6.50 ± 0.37"))
    page.write_text(page.read_text().replace("What is resolved over 5 seeds", "What is resolved over 6 seeds"))
    stale = subprocess.run([*run, "--check"], cwd=ROOT, capture_output=True, text=True)
    assert stale.returncode == 1 and "results --write" in stale.stderr
    assert str(readme) in stale.stderr and str(page) in stale.stderr
    wrote = subprocess.run([*run, "--write"], cwd=ROOT, capture_output=True, text=True)
    assert wrote.returncode == 0, wrote.stderr
    assert readme.read_text() == (ROOT / "README.md").read_text()
    assert page.read_text() == (ROOT / "docs" / "results.md").read_text()


def test_cli_names_a_missing_study_and_missing_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    results = tmp_path / "results"
    results.mkdir()
    for name in ("study.json", "study-i2v.json", *claims.DRIFT):
        shutil.copy(ROOT / "docs" / "results" / name, results / name)
    page = ROOT / "docs" / "results.md"
    run = [
        sys.executable,
        "-m",
        "engine",
        "results",
        "--check",
        "--readme",
        str(readme),
        "--results",
        str(results),
        "--results-page",
        str(page),
    ]
    missing = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and "study-ar.json is missing" in missing.stderr
    shutil.copy(ROOT / "docs" / "results" / "study-ar.json", results / "study-ar.json")
    no_markers = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert no_markers.returncode == 2 and "markers" in no_markers.stderr
    (results / "study-ar.json").write_text(json.dumps({"models": {}}))
    lacking = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert lacking.returncode == 2 and "has no run 'dfd-p0.5'" in lacking.stderr


def test_generator_is_torch_free():
    code = "import sys; import engine.evaluation.when_dfd_helps as c; c.study_summary(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tab_without_the_results_says_so(tmp_path):
    text = when_dfd_helps.study_summary(tmp_path)
    assert text.startswith("The study's figures are not available here") and "study.json is missing" in text


def test_the_readme_gives_the_confirmatory_verdicts_once_the_preregistered_study_is_there(tmp_path):
    from engine.evaluation import stats
    from engine.evaluation.confirmatory import PREREGISTERED_SEEDS
    from engine.evaluation.study_report import per_seed

    for name in [*claims.STUDIES.values(), *claims.DRIFT]:
        shutil.copy(claims.RESULTS / name, tmp_path / name)
    assert "confirm" not in claims.load_studies(tmp_path)  # not run yet: the README keeps the exploratory bullets
    study = json.loads((claims.RESULTS / "study.json").read_text())
    (tmp_path / "study-confirm.json").write_text(json.dumps(study))  # seeds 0-4: not the pre-registered ones
    assert "confirm" not in claims.load_studies(tmp_path)
    study["training_seeds"] = list(PREREGISTERED_SEEDS)
    (tmp_path / "study-confirm.json").write_text(json.dumps(study))
    block = claims.readme_block(claims.load_studies(tmp_path))
    dfd, control = (per_seed(study, run, "mode_coverage", "underspecified") for run in (claims.DFD, claims.CONTROL))
    gain = stats.interval_text(stats.t_interval([dfd[s] - control[s] for s in sorted(dfd)]))
    assert "Confirmatory, pre-registered" in block and gain in " ".join(block.split())
    assert "S9 " in block and "Variants beyond the paper" not in block


def test_the_readme_gives_the_i2v_preregistered_verdicts_in_place_of_the_old_i2v_paragraph(tmp_path):
    from engine.evaluation.confirmatory import I2V_SEEDS

    for name in [*claims.STUDIES.values(), *claims.DRIFT]:
        shutil.copy(claims.RESULTS / name, tmp_path / name)
    study = json.loads((claims.RESULTS / "study-i2v.json").read_text())
    (tmp_path / "study-i2v-mixed.json").write_text(json.dumps(study))  # seeds 0-2: not the pre-registered ones
    assert "i2v-confirm" not in claims.load_studies(tmp_path)
    assert "Image-to-video (`shapes-tiny-i2v`" in claims.readme_block(claims.load_studies(tmp_path))
    study["training_seeds"] = list(I2V_SEEDS)
    (tmp_path / "study-i2v-mixed.json").write_text(json.dumps(study))
    block = " ".join(claims.readme_block(claims.load_studies(tmp_path)).split())
    assert "Image-to-video on frames that leave several motions open" in block and "preregistration-i2v.md" in block
    assert "Image-to-video (`shapes-tiny-i2v`" not in block  # the new study replaces the old paragraph
    assert "P1 DFD p=0.5 draws motions nearer the exact posterior" in block and "S4 " in block
