"""What a distillation run on a real (tiny) Wan pipeline logs and previews: TensorBoard's loss terms and
preview videos, a tracker that is not installed refused in one line, the weight DFD variants put on the real
clip, and previews that record their prompts and are the finished student's samples."""

from __future__ import annotations

import json

import pytest
import torch

from engine.distill.adapters import STUDENT
from engine.distill.trainer import Distiller
from trainer_helpers import tiny_config as _cfg


def test_tensorboard_gets_the_loss_terms_and_preview_videos(mini_teacher_dir, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = Distiller(_cfg(mini_teacher_dir, steps=2, log_with="tensorboard"), tmp_path / "run").train()
    events = EventAccumulator(str(out / "dfd-distill"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"loss_fake", "loss_student", "real_gap"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss_fake")] == [1]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert events.Scalars("loss_student")[0].value == pytest.approx(metrics[1]["loss_student"])
    previews = [t for t in tags["images"] if t.startswith("preview/")]
    assert len(previews) == 8 and events.Images(previews[0])[0].encoded_image_string[:6] == b"GIF89a"


def test_a_tracker_that_is_not_installed_is_refused_in_one_line(mini_teacher_dir, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ValueError, match="log_with wandb: the wandb package is not installed; pip install wandb"):
        Distiller(_cfg(mini_teacher_dir, log_with="wandb"), tmp_path)


@pytest.mark.parametrize(
    "variant, check",
    [
        (
            {"data_forcing_granularity": "sample"},
            lambda w: any(0.0 < x < 1.0 for x in w),
        ),  # coins differ within a batch
        ({"data_forcing_blend": True}, lambda w: w == [0.5] * len(w)),  # a weight every step, no coin
        (
            {"data_forcing_schedule": "decay", "data_forcing_blend": True},
            lambda w: w == sorted(w, reverse=True) and w[-1] < 0.1,
        ),
    ],
    ids=["per-sample coin", "blend", "decaying blend"],
)
def test_dfd_variants_log_the_weight_they_put_on_the_real_clip(mini_teacher_dir, tmp_path, variant, check):
    dmd = Distiller(_cfg(mini_teacher_dir, steps=2), tmp_path / "dmd").train()
    cfg = _cfg(mini_teacher_dir, method="dfd", init=str(dmd), steps=12, batch_size=4, data_forcing_prob=0.5, **variant)
    out = Distiller(cfg, tmp_path / "dfd").train()
    weights = [
        json.loads(line)["data_forcing"]
        for line in (out / "metrics.jsonl").read_text().splitlines()
        if "loss_student" in line
    ]
    assert len(weights) == 6 and check(weights), weights
    with pytest.raises(ValueError, match="data_forcing_granularity sample draws coins"):
        _cfg(mini_teacher_dir, data_forcing_granularity="sample", data_forcing_blend=True).validate()


def test_previews_record_their_prompts_and_the_model_card_captions_each_video_with_its_prompt(
    mini_teacher_dir, tmp_path
):
    import yaml

    from engine.hub.card import CardInfo, model_card, training_previews, training_record

    distiller = Distiller(_cfg(mini_teacher_dir, steps=2, preview_every=1), tmp_path / "run")
    out = distiller.train()
    record = json.loads((out / "samples" / "previews.json").read_text())
    assert record == {"prompts": distiller.preview_prompts, "seeds": [1, 2, 3, 4], "task": "t2v"}
    assert len(set(record["prompts"])) == 2 and not list((out / "samples").glob(".*.tmp"))  # the rename happened

    previews = training_previews(out)  # the last step's 8 videos, prompt I of promptI-seedS.mp4 named
    assert [p.name for p, _ in previews][:2] == ["step2-prompt0-seed1.mp4", "step2-prompt0-seed2.mp4"]
    assert [c for _, c in previews][::4] == [
        f"{record['prompts'][0]} (step 2, seed 1)",
        f"{record['prompts'][1]} (step 2, seed 1)",
    ]
    card = model_card(
        CardInfo(
            repo_id="me/s",
            base=str(mini_teacher_dir),
            method="dmd2",
            t_list=[0.999, 0.5, 0.0],
            samples=[(f"samples/{p.name}", c) for p, c in previews],
            **training_record(out),
        )
    )
    widget = yaml.safe_load(card.split("---")[1])["widget"]
    assert [w["text"] for w in widget] == [record["prompts"][0]] * 4 + [record["prompts"][1]] * 4


@pytest.mark.parametrize("task", ["t2v", "ar"])
def test_previews_are_the_finished_students_samples_as_sample_draws_them(mini_teacher_dir, tmp_path, task):
    """One preview writer for every student (engine/distill/previews.py), handed the student's sampler: the
    last previews' latents are what `sample --lora RUN` draws for the same caption and seeds (a causal
    student chunk by chunk in its recorded window); for T2V, bit for bit the few-step sampler on each seed's
    own noise under the run's own adapters."""
    from engine.generation.generate import SampleConfig, sample_frames
    from engine.generation.sampling import seed_generators, seeded_noise, student_sample
    from engine.models.base import load_base_model

    def decoded(model) -> list:
        seen, decode = [], model.decode
        model.decode = lambda latents: seen.append(latents) or decode(latents)
        return seen

    d = Distiller(_cfg(mini_teacher_dir, steps=2, task=task), tmp_path / "run")
    previews = decoded(d.model)
    out = d.train()
    assert len(previews) == 2 and len(list((out / "samples").glob("step2-*.mp4"))) == 8
    model = load_base_model(str(mini_teacher_dir), device="cpu")
    sampled = decoded(model)
    for prompt in d.preview_prompts:
        sample_frames(model, SampleConfig(prompt=prompt, seeds=[1, 2, 3, 4], lora=str(out)).validate())
    for ours, theirs in zip(previews, sampled):
        assert ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-4), float(
            (ours - theirs).abs().max()
        )
    if task == "t2v":
        with torch.no_grad(), d.adapters.using(STUDENT):
            recipe = student_sample(
                d.transformer,
                seeded_noise(previews[0].shape, [1, 2, 3, 4], "cpu", torch.float32),
                d.preview_cond[:1].expand(4, -1, -1),
                tuple(d.cfg.t_list),
                generator=seed_generators([1, 2, 3, 4]),
            )
        assert torch.equal(previews[0], recipe)
