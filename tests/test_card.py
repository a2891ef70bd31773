"""The model card: its parts read from a run's folder (the training previews and their captions, with the
prompts the run recorded in samples/previews.json, or the old numbered captions without that record; the run
folder of a studio job's student, jobs/<id>/lora under the job folder), and its text: what the student is,
its base, updates and times, and its evaluation. Its snippets and commands, run as written, are
tests/test_card_snippets.py."""

from __future__ import annotations

import json
from pathlib import Path

from card_helpers import card_front, card_info
from engine.hub import publish
from engine.hub.card import CardInfo, model_card, run_folder, training_previews, training_record
from engine.models.students import SHIPPED_DIR

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
    card = model_card(
        CardInfo(
            repo_id="me/s",
            base="shapes-tiny",
            method="dmd2",
            steps=4,
            t_list=[0.999, 0.0],
            samples=[(f"samples/{p.name}", c) for p, c in samples],
        )
    )
    return [w["text"] for w in card_front(card)["widget"]]


def test_recorded_prompts_caption_the_last_steps_previews_and_the_widget_gallery(tmp_path):
    run = _previews(tmp_path / "run", record={"prompts": PROMPTS, "seeds": [1, 2], "task": "t2v"})
    previews = training_previews(run)
    assert [p.name for p, _ in previews] == [
        "step4-prompt0-seed1.mp4",
        "step4-prompt0-seed2.mp4",
        "step4-prompt1-seed1.mp4",
        "step4-prompt1-seed2.mp4",
    ]
    assert [c for _, c in previews] == [
        "a red circle moving left (step 4, seed 1)",
        "a red circle moving left (step 4, seed 2)",
        "a blue square (step 4, seed 1)",
        "a blue square (step 4, seed 2)",
    ]
    assert _widget(previews) == [PROMPTS[0], PROMPTS[0], PROMPTS[1], PROMPTS[1]]


def test_a_run_without_a_usable_record_keeps_the_numbered_captions(tmp_path):
    for name, record in [
        ("none", None),
        ("broken", "{not json"),
        ("not-a-list", {"prompts": "a red circle"}),
        ("too-short", {"prompts": [PROMPTS[0]]}),
    ]:
        previews = training_previews(_previews(tmp_path / name, record=record))
        captions = [c for _, c in previews]
        assert captions[2:] == ["training preview 2 at step 4 (seed 1)", "training preview 2 at step 4 (seed 2)"], name
        if name != "too-short":
            assert captions[0] == "training preview 1 at step 4 (seed 1)", name
            assert _widget(previews)[0] == "training preview 1 at step 4"
    assert training_previews(tmp_path / "empty") == []


def test_a_studio_jobs_student_finds_its_runs_previews_and_config_in_the_job_folder(tmp_path):
    job = _previews(tmp_path / "jobs" / "j-1", steps=(6,), record={"prompts": PROMPTS, "seeds": [1, 2], "task": "t2v"})
    (job / "distill_config.json").write_text(
        json.dumps({"method": "dfd", "steps": 6, "student_update_freq": 3, "data_forcing_prob": 0.5})
    )
    lora = job / "lora"
    lora.mkdir()
    (lora / "lora_config.json").write_text(json.dumps({"method": "dfd", "steps": 6}))
    assert run_folder(lora) == job and run_folder(job) == job
    assert [c for _, c in training_previews(lora)][0] == "a red circle moving left (step 6, seed 1)"
    assert training_record(lora) == {"steps": 6, "student_update_freq": 3, "data_forcing_prob": 0.5}
    other = tmp_path / "somewhere" / "lora"  # a folder merely named lora, not in a run: itself
    other.mkdir(parents=True)
    assert run_folder(other) == other and training_previews(other) == []


def test_a_dfd_card_says_on_how_many_student_updates_a_real_clip_was_used(tmp_path):
    job = tmp_path / "jobs" / "j-2"
    (job / "lora").mkdir(parents=True)
    (job / "distill_config.json").write_text(
        json.dumps({"method": "dfd", "steps": 6, "student_update_freq": 2, "data_forcing_prob": 0.5})
    )
    points = [
        {"step": 1, "loss_fake": 1.0},
        {"step": 2, "data_forcing": 0.0, "data_forcing_used": 0.0},
        {"step": 4, "data_forcing": 0.9, "data_forcing_used": 1.0},
        {"step": 6, "data_forcing_used": 1.0},
        {"step": 6, "data_forcing_used": 0.0},
    ]  # a resumed run writes step 6 again: the last one counts
    (job / "metrics.jsonl").write_text("\n".join(json.dumps(p) for p in points) + "\n{half\n")
    record = training_record(job / "lora")
    assert record["real_clip_updates"] == (1, 3) and "started_from" not in record
    config = json.loads((job / "distill_config.json").read_text())
    (job / "distill_config.json").write_text(json.dumps({**config, "init": "/srv/studio/jobs/j-dmd2/lora"}))
    record = training_record(job / "lora")
    assert record["started_from"] == "j-dmd2"  # the job's id, never the server's path
    card = model_card(card_info(steps=6, **{k: v for k, v in record.items() if k != "steps"}))
    assert "| real clip used | on 1 of 3 student updates |" in card
    assert "| started from | the DMD2 student `j-dmd2` |" in card and "/srv/studio" not in card
    none = model_card(card_info(real_clip_updates=(0, 6)))
    assert "on 0 of 6 student updates (none: this run trained as DMD2 continued)" in none
    assert "real clip used" not in model_card(card_info(method="dmd2", real_clip_updates=(0, 6)))
    (job / "metrics.jsonl").unlink()  # a run from before the trainer recorded it: the card says nothing
    assert "real_clip_updates" not in training_record(job / "lora")


# --- the card's text --------------------------------------------------------------------------------------


def test_card_of_a_hub_base_names_it_as_the_adapters_base_and_shows_the_samples_as_a_widget_gallery():
    card = model_card(
        card_info(
            base="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
            samples=[
                ("samples/p0-seed1.mp4", "a red circle (seed 1)"),
                ("samples/p1-seed1.mp4", 'a "blue" square (seed 1)'),
            ],
        )
    )
    front, body = card_front(card), card.split("---\n", 2)[2]

    assert front["base_model"] == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" and front["base_model_relation"] == "adapter"
    assert front["library_name"] == "diffusers" and front["license"] == "apache-2.0" and "dfd" in front["tags"]
    assert front["widget"] == [
        {"text": "a red circle", "output": {"url": "samples/p0-seed1.mp4"}},
        {"text": 'a "blue" square', "output": {"url": "samples/p1-seed1.mp4"}},
    ]
    assert 'WanPipeline.from_pretrained("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", torch_dtype=torch.bfloat16)' in body
    assert 'pipe.load_lora_weights("someone/shapes-dfd", weight_name="pytorch_lora_weights.safetensors")' in body
    assert "| lora_rank | 16 |" in body and "| diversity | 0.4123 |" in body and "## License" in body
    assert "[a red circle (seed 1)](samples/p0-seed1.mp4)" in body


def test_the_base_model_is_found_from_a_hub_id_or_a_hub_cache_folder_but_not_the_builtin_base(tmp_path):
    assert publish.hub_id_of("Wan-AI/Wan2.1-T2V-1.3B-Diffusers") == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    snapshot = "/data/hf/hub/models--Wan-AI--Wan2.1-T2V-1.3B-Diffusers/snapshots/0123abc"
    assert publish.hub_id_of(snapshot) == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    assert publish.hub_id_of("shapes-tiny") is None and publish.hub_id_of(str(tmp_path)) is None
    assert card_front(model_card(card_info(base=snapshot)))["base_model"] == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"


def test_card_of_the_builtin_base_says_so_and_its_snippet_loads_the_local_folder_after_the_import():
    card = model_card(card_info(base="shapes-tiny", base_hub_id=None, settings={"note": "a|b"}))
    front = card_front(card)

    assert "base_model" not in front and "base_model_relation" not in front  # a relation needs a named base
    assert 'from the exported zip, unzipped: pipe.load_lora_weights("path/to/folder"' in card
    assert "the built-in `shapes-tiny` of DFD Studio" in card and "not a Hub model" in card
    assert 'from_pretrained("shapes-tiny"' not in card
    assert card.index("import engine.shapes.autoencoder") < card.index('from_pretrained("engine/assets/shapes-tiny")')
    assert "num_frames=17, height=64, width=64, max_sequence_length=16" in card  # the base's own size
    assert "| note | a\\|b |" in card


def test_card_counts_student_updates_as_the_trainer_does_and_gives_dfds_p():
    # The shipped DMD2 student: 1250 steps, every 5th updates the student.
    shipped = publish.training_record(SHIPPED_DIR / "dmd2")
    assert shipped == {"steps": 1250, "student_update_freq": 5}
    card = model_card(card_info(method="dmd2", settings={}, **shipped))
    assert "| training steps | 1250 |" in card and "| student updates | 250 (every 5th step) |" in card
    assert "| fake-score updates | 1000 |" in card and "data-forcing" not in card

    dfd = publish.training_record(SHIPPED_DIR / "dfd")
    assert dfd == {"steps": 200, "student_update_freq": 5, "data_forcing_prob": 0.5, "started_from": "dmd2"}
    card = model_card(card_info(settings={}, **dfd))
    assert "| student updates | 40 (every 5th step) |" in card and "| data-forcing probability p | 0.5 |" in card
    assert "| started from | the DMD2 student `dmd2` |" in card
    # a job's settings carry the frequency when the caller gives no record
    card = model_card(card_info(steps=100, settings={"student_update_freq": 4}))
    assert "| student updates | 25 (every 4th step) |" in card and "student_update_freq" not in card


def test_card_gives_the_students_times_for_diffusers_and_comfyui():
    card = model_card(card_info(t_list=[0.999, 0.937, 0.833, 0.624, 0.0]))

    assert "| sampling steps | 4 |" in card and "| sampling times (t_list) | 0.999, 0.937, 0.833, 0.624, 0 |" in card
    assert "T_LIST = [0.999, 0.937, 0.833, 0.624, 0]" in card
    assert "FlowMatchEulerDiscreteScheduler(shift=1.0, stochastic_sampling=True)" in card
    assert "set_timesteps(sigmas=T_LIST[:-1], device=device)" in card and "num_inference_steps=4" in card
    assert "sampler `lcm`" in card and "ManualSigmas `0.999, 0.937, 0.833, 0.624, 0`" in card
    assert publish.COMFY_FILE in card and "| LoRA weights | fp32 |" in card


def test_card_shows_the_evaluation_table_when_one_was_run():
    assert "## Evaluation" not in model_card(card_info())
    table = "| model | diversity |\n|---|---|\n| dfd | 0.412 |"
    card = model_card(card_info(evaluation=table))
    assert "## Evaluation\n\n" + table in card
