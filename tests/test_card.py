"""The model card's parts read from a run's folder: the training previews and their captions (with the
prompts the run recorded in samples/previews.json, or the old numbered captions without that record), and
the run folder of a studio job's student (jobs/<id>/lora under the job folder)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from engine.hub.card import CardInfo, model_card, run_folder, training_previews, training_record

PROMPTS = ["a red circle moving left", "a blue square"]


def _previews(folder: Path, steps=(2, 4), record: dict | str | None = None) -> Path:
    """Preview files named as the trainer names them (their content is not read), and the record."""
    samples = folder / "samples"
    samples.mkdir(parents=True)
    for step in steps:
        for prompt in (0, 1):
            for seed in (1, 2):
                (samples / f"step{step}-prompt{prompt}-seed{seed}.mp4").write_bytes(b"mp4")
    if record is not None:
        (samples / "previews.json").write_text(record if isinstance(record, str) else json.dumps(record))
    return folder


def _widget(samples) -> list[str]:
    card = model_card(CardInfo(repo_id="me/s", base="shapes-tiny", method="dmd2", steps=4, t_list=[0.999, 0.0],
                               samples=[(f"samples/{p.name}", c) for p, c in samples]))
    return [w["text"] for w in yaml.safe_load(card.split("---")[1])["widget"]]


def test_recorded_prompts_caption_the_last_steps_previews_and_the_widget_gallery(tmp_path):
    run = _previews(tmp_path / "run", record={"prompts": PROMPTS, "seeds": [1, 2], "task": "t2v"})
    previews = training_previews(run)
    assert [p.name for p, _ in previews] == ["step4-prompt0-seed1.mp4", "step4-prompt0-seed2.mp4",
                                            "step4-prompt1-seed1.mp4", "step4-prompt1-seed2.mp4"]
    assert [c for _, c in previews] == ["a red circle moving left (step 4, seed 1)", "a red circle moving left (step 4, seed 2)",
                                       "a blue square (step 4, seed 1)", "a blue square (step 4, seed 2)"]
    assert _widget(previews) == [PROMPTS[0], PROMPTS[0], PROMPTS[1], PROMPTS[1]]


def test_a_run_without_a_usable_record_keeps_the_numbered_captions(tmp_path):
    for name, record in [("none", None), ("broken", "{not json"), ("not-a-list", {"prompts": "a red circle"}),
                         ("too-short", {"prompts": [PROMPTS[0]]})]:
        previews = training_previews(_previews(tmp_path / name, record=record))
        captions = [c for _, c in previews]
        assert captions[2:] == ["training preview 2 at step 4 (seed 1)", "training preview 2 at step 4 (seed 2)"], name
        if name != "too-short":
            assert captions[0] == "training preview 1 at step 4 (seed 1)", name
            assert _widget(previews)[0] == "training preview 1 at step 4"
    assert training_previews(tmp_path / "empty") == []


def test_a_studio_jobs_student_finds_its_runs_previews_and_config_in_the_job_folder(tmp_path):
    job = _previews(tmp_path / "jobs" / "j-1", steps=(6,), record={"prompts": PROMPTS, "seeds": [1, 2], "task": "t2v"})
    (job / "distill_config.json").write_text(json.dumps({"method": "dfd", "steps": 6, "student_update_freq": 3,
                                                        "data_forcing_prob": 0.5}))
    lora = job / "lora"
    lora.mkdir()
    (lora / "lora_config.json").write_text(json.dumps({"method": "dfd", "steps": 6}))
    assert run_folder(lora) == job and run_folder(job) == job
    assert [c for _, c in training_previews(lora)][0] == "a red circle moving left (step 6, seed 1)"
    assert training_record(lora) == {"steps": 6, "student_update_freq": 3, "data_forcing_prob": 0.5}
    other = tmp_path / "somewhere" / "lora"  # a folder merely named lora, not in a run: itself
    other.mkdir(parents=True)
    assert run_folder(other) == other and training_previews(other) == []
