"""The share of clips a post-trained student keeps from its start: counted per training seed over the
prompts that leave the factor free, beside what two unpaired mixes would share by chance, from eval.json
files laid out as a study's records; a folder without the runs is refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.evaluation.kept_from_start import KeptError, kept_from_start

ROOT = Path(__file__).resolve().parents[1]


def _evaluation(run: Path, motions: dict[str, list[str]]) -> None:
    run.mkdir(parents=True)
    clips = {prompt: [{"motion": m, "shape": "circle"} for m in ms] for prompt, ms in motions.items()}
    readings = {prompt: {"clip_factors": c} for prompt, c in clips.items()}
    (run / "eval.json").write_text(json.dumps({"per_prompt": {"real": {}, f"runs/{run.name}": readings}}))


def test_clips_kept_from_the_start_are_counted_over_prompts_that_leave_the_factor_free(tmp_path):
    free, named = "a red shape", "a red circle moving left on a dark background"
    _evaluation(tmp_path / "seed3" / "dmd2", {free: ["left", "left", "up", "up"], named: ["left"] * 4})
    _evaluation(tmp_path / "seed3" / "dfd", {free: ["left", "up", "up", "left"], named: ["right"] * 4})
    _evaluation(tmp_path / "seed4" / "dmd2", {free: ["down"] * 4})
    _evaluation(tmp_path / "seed4" / "dfd", {free: ["down", "down", "down", "up"]})
    _evaluation(tmp_path / "seed5" / "dmd2", {free: ["down"] * 4})  # no dfd run: left out
    kept = kept_from_start(tmp_path, "dfd")
    assert set(kept) == {3, 4}
    assert kept[3] == (2, 4, 2.0)  # clips 1 and 3 kept; two mixes of half left, half up share 2 of 4 by chance
    assert kept[4] == (3, 4, 3.0)
    with pytest.raises(KeptError, match="holds both 'dmd2' and 'dmd2-continued'"):
        kept_from_start(tmp_path, "dmd2-continued")


def test_the_script_prints_each_run_and_refuses_a_folder_without_evaluations(tmp_path):
    _evaluation(tmp_path / "seed0" / "dmd2", {"a shape": ["left", "up"]})
    _evaluation(tmp_path / "seed0" / "dfd", {"a shape": ["left", "left"]})
    script = [sys.executable, str(ROOT / "scripts" / "kept_from_start.py")]
    done = subprocess.run([*script, str(tmp_path), "dfd"], capture_output=True, text=True, check=True)
    said = "dfd keeps dmd2's motion: seed 0 1/2 = 0.50; all 0.50, by chance (the same mixes, unpaired) 0.50"
    assert said in done.stdout
    (tmp_path / "seed0" / "dfd" / "eval.json").unlink()
    refused = subprocess.run([*script, str(tmp_path), "dfd"], capture_output=True, text=True)
    assert refused.returncode == 2 and "dfd/eval.json: no evaluation there" in refused.stderr
