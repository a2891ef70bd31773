"""The distillation engine on a real (tiny) Wan pipeline: adapters, updates, checkpoints, resume,
outputs that diffusers loads, and the refusals the paper's validity condition calls for."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.config.distill import DistillConfig
from engine.distill.adapters import FAKE, STUDENT
from engine.distill.trainer import Distiller, TrainingDiverged, latest_checkpoint
from trainer_helpers import StopAt, student_tensors


def _cfg(base, **kw) -> DistillConfig:
    values = dict(
        base=str(base),
        steps=4,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        lr_student=1e-3,
        lr_fake=1e-3,
        checkpoint_every=2,
        guidance=3.0,
        seed=3,
        shapes_pool_clips=64,
    )
    values.update(kw)
    return DistillConfig(**values)


def _snapshot(module, pick):
    return {n: p.detach().clone() for n, p in module.named_parameters() if pick(n)}


def _changed(before, module):
    now = dict(module.named_parameters())
    return {n for n, p in before.items() if not torch.equal(p, now[n].detach())}


def test_each_update_moves_only_its_own_adapter_and_never_the_base(mini_teacher_dir, tmp_path):
    d = Distiller(_cfg(mini_teacher_dir), tmp_path)
    tr = d.transformer
    base = _snapshot(tr, lambda n: "lora_" not in n)
    student = _snapshot(tr, lambda n: f".{STUDENT}." in n)
    fake = _snapshot(tr, lambda n: f".{FAKE}." in n)
    assert base and student and fake

    d.fake_update()
    assert _changed(fake, tr) and not _changed(student, tr) and not _changed(base, tr)

    fake = _snapshot(tr, lambda n: f".{FAKE}." in n)
    d.student_update()
    # the peft trap: after switching to the fake score and the teacher, the student still got gradients
    assert all(p.grad is not None for p in d.student_params)
    assert sum(float(p.grad.abs().sum()) for p in d.student_params) > 0
    assert _changed(student, tr) and not _changed(fake, tr) and not _changed(base, tr)


def _adapter_state(transformer):
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [(m.active_adapters, m.disable_adapters) for m in transformer.modules() if isinstance(m, BaseTunerLayer)]
    grads = {n: p.requires_grad for n, p in transformer.named_parameters()}
    return layers, grads


def test_switching_adapters_leaves_the_state_diffusers_own_switching_leaves(mini_teacher_dir, tmp_path):
    from engine.models.lora import activate

    tr = Distiller(_cfg(mini_teacher_dir), tmp_path).transformer
    for name in (FAKE, None, STUDENT, None, FAKE, STUDENT):
        activate(tr, name)
        ours = _adapter_state(tr)
        if name is None:
            tr.disable_adapters()
        else:
            tr.enable_adapters()
            tr.set_adapter(name)
        assert _adapter_state(tr) == ours, name
        assert any(ours[1].values()) == (name is not None)  # only the active adapter trains


def test_steps_count_updates_and_too_few_to_reach_the_student_are_refused(mini_teacher_dir):
    with pytest.raises(ValueError, match="student is never updated.*give at least 5 steps"):
        _cfg(mini_teacher_dir, steps=4, student_update_freq=5).validate()


@pytest.mark.parametrize("task", ["t2v", "ar"])
def test_resume_after_a_crash_reproduces_the_uninterrupted_run_exactly(mini_teacher_dir, tmp_path, task):
    cfg = _cfg(mini_teacher_dir, method="dmd2", task=task)
    Distiller(cfg, tmp_path / "straight").train()

    with pytest.raises(KeyboardInterrupt):
        Distiller(cfg, tmp_path / "crashed", callbacks=StopAt(3)).train()
    assert latest_checkpoint(tmp_path / "crashed").name == "step-0000002"
    Distiller(cfg, tmp_path / "crashed").train()

    a, b = student_tensors(tmp_path / "straight"), student_tensors(tmp_path / "crashed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "crashed" / "lora_config.json").read_text()).get("causal", False) == (task == "ar")


def test_dfd_run_logs_data_forcing_and_the_validity_gap(mini_teacher_dir, tmp_path):
    dmd = Distiller(_cfg(mini_teacher_dir, steps=2), tmp_path / "dmd").train()
    cfg = _cfg(mini_teacher_dir, method="dfd", init=str(dmd), steps=12, data_forcing_prob=0.5)
    out = Distiller(cfg, tmp_path / "dfd").train()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 13))
    # student_update_freq 2: odd steps update the fake score, even steps the student
    assert all(("loss_fake" in r) == (r["step"] % 2 == 1) for r in rows)
    student_rows = [r for r in rows if "loss_student" in r]
    assert [r["step"] for r in student_rows] == [2, 4, 6, 8, 10, 12]
    forced = [r["data_forcing"] for r in student_rows]
    assert set(forced) <= {0.0, 1.0} and 0.0 in forced and 1.0 in forced  # one coin per student step
    assert all(r["real_gap"] >= 0 for r in student_rows)
    assert any(k.startswith("real_gap@t") for k in student_rows[0])
    assert len(list((out / "samples").glob("*.mp4"))) == 8  # previews of two prompts x four seeds


def test_dfd_from_the_raw_teacher_is_refused_with_the_papers_reason(mini_teacher_dir):
    with pytest.raises(ValueError, match="validity condition"):
        _cfg(mini_teacher_dir, method="dfd").validate()
    _cfg(mini_teacher_dir, method="dfd", force_from_teacher=True).validate()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"data_forcing_prob": 1.5}, "data_forcing_prob"),
        ({"t_list": [0.5, 0.9, 0.0]}, "t_list"),
        ({"method": "gan"}, "unknown method"),
        ({"student_input": "magic"}, "student_input"),
        ({"data": "/no/such/folder"}, "not 'shapes'"),
        ({"init": "/no/such/lora"}, "no pytorch_lora_weights.safetensors"),
    ],
)
def test_bad_distill_settings_are_explained(mini_teacher_dir, change, message):
    with pytest.raises(ValueError, match=message):
        _cfg(mini_teacher_dir, **change).validate()


class _PoisonedData:
    """Real shapes data whose latents turn to NaN from the given batch on."""

    def __init__(self, data, from_batch):
        self.data, self.from_batch, self.n = data, from_batch, 0
        self.captions = data.captions

    def batch(self, n):
        self.n += 1
        b = self.data.batch(n)
        if self.n >= self.from_batch:
            b.latents = torch.full_like(b.latents, float("nan"))
        return b

    def state(self):
        return self.data.state()

    def load_state(self, s):
        self.data.load_state(s)


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(mini_teacher_dir, tmp_path):
    d = Distiller(_cfg(mini_teacher_dir, steps=20, checkpoint_every=1, nan_patience=2), tmp_path)
    d.data = _PoisonedData(d.data, from_batch=3)  # one batch per step: steps 1-2 are clean
    with pytest.raises(TrainingDiverged, match="last good checkpoint is step 2"):
        d.train()
    assert latest_checkpoint(tmp_path).name == "step-0000002"


def test_student_lora_loads_in_wanpipeline_and_samples_in_four_steps(mini_teacher_dir, tmp_path):
    from diffusers import WanPipeline

    from engine.generation.generate import SampleConfig, sample_frames
    from engine.models.base import load_base_model

    out = Distiller(_cfg(mini_teacher_dir, steps=2), tmp_path / "run").train()
    pipe = WanPipeline.from_pretrained(mini_teacher_dir)
    pipe.load_lora_weights(out, weight_name="pytorch_lora_weights.safetensors", adapter_name="student")
    assert "student" in pipe.transformer.peft_config

    model = load_base_model(str(mini_teacher_dir), device="cpu")
    clips, nfe = sample_frames(model, SampleConfig(prompt="a red circle", seeds=[1, 2], lora=str(out)).validate())
    assert clips.shape == (2, 17, 64, 64, 3) and nfe == 4
    teacher, _ = sample_frames(model, SampleConfig(prompt="a red circle", seeds=[1, 2], steps=4).validate())
    assert not np.array_equal(clips, teacher)  # the LoRA is active for the student only
    again, _ = sample_frames(model, SampleConfig(prompt="a red circle", seeds=[1, 2], steps=4).validate())
    assert np.array_equal(teacher, again)


def test_comfyui_export_uses_the_original_wan_module_names(mini_teacher_dir, tmp_path):
    from safetensors.torch import load_file

    out = Distiller(_cfg(mini_teacher_dir, steps=2), tmp_path).train()
    keys = load_file(out / "comfyui_lora.safetensors").keys()
    assert "diffusion_model.blocks.0.self_attn.q.lora_down.weight" in keys
    assert "diffusion_model.blocks.0.cross_attn.k.lora_up.weight" in keys
    assert "diffusion_model.blocks.0.ffn.0.alpha" in keys


def test_gradient_checkpointing_changes_memory_not_the_update(mini_teacher_dir, tmp_path):
    def fake_after_one_update(checkpointing):
        d = Distiller(_cfg(mini_teacher_dir, gradient_checkpointing=checkpointing), tmp_path / str(checkpointing))
        d.fake_update()
        d.student_update()
        return d.adapters.state_dict(FAKE), d.adapters.state_dict(STUDENT)

    plain, recomputed = fake_after_one_update(False), fake_after_one_update(True)
    for a, b in zip(plain, recomputed):
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_the_real_wan_classes_distill_from_a_video_folder_in_bf16_and_sample(tiny_wan_dir, tmp_path):
    """The Wan2.1 path end to end on CPU: AutoencoderKLWan latents of the user's clips, a bf16 base with
    fp32 adapters under autocast, gradient checkpointing, a small video size, the text encoder released
    after caching; then the student LoRA samples through `engine sample`."""
    from conftest import run_engine
    from engine.media.video import write_mp4

    folder = tmp_path / "clips"
    rng = np.random.default_rng(0)
    for i, caption in enumerate(["a red circle moving left", "a cat", "a dog moving left"]):
        write_mp4(folder / f"clip{i}.mp4", rng.integers(0, 255, (12, 40, 48, 3), dtype=np.uint8), fps=8)
        (folder / f"clip{i}.txt").write_text(caption)
    out = tmp_path / "student"
    result = run_engine(
        "distill",
        "--base",
        str(tiny_wan_dir),
        "--data",
        str(folder),
        "--num-frames",
        "5",
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "4",
        "--student-update-freq",
        "2",
        "--batch-size",
        "2",
        "--lora-rank",
        "4",
        "--mixed-precision",
        "bf16",
        "--gradient-checkpointing",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((out / "distill_config.json").read_text())
    assert config["mixed_precision"] == "bf16" and config["gradient_checkpointing"] and config["height"] == 32
    assert (out / "pytorch_lora_weights.safetensors").is_file() and (folder / ".dfd_cache").is_dir()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(v) for r in rows for v in r.values())
    sampled = run_engine(
        "sample",
        "--base",
        str(tiny_wan_dir),
        "--lora",
        str(out),
        "--prompt",
        "a cat",
        "--steps",
        "4",
        "--num-frames",
        "5",
        "--height",
        "32",
        "--width",
        "32",
        "--out",
        str(tmp_path / "samples"),
    )
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert len(list((tmp_path / "samples").glob("*.mp4"))) == 1


def test_video_size_overrides_are_for_folder_data(mini_teacher_dir):
    with pytest.raises(ValueError, match="for folder data"):
        _cfg(mini_teacher_dir, height=32).validate()
    with pytest.raises(ValueError, match="mixed_precision"):
        _cfg(mini_teacher_dir, mixed_precision="fp8").validate()


def test_fused_student_sampling_matches_the_adapter_and_leaves_the_teacher_bit_identical(mini_teacher_dir, tmp_path):
    from engine.generation.generate import SampleConfig, sample_frames, student_adapter
    from engine.generation.sampling import velocity
    from engine.models.base import load_base_model

    out = Distiller(_cfg(mini_teacher_dir, steps=4, lr_student=1e-2), tmp_path / "run").train()
    model = load_base_model(str(mini_teacher_dir), device="cpu")
    before = {n: p.detach().clone() for n, p in model.transformer.named_parameters()}
    x, cond = torch.randn(2, 16, 5, 8, 8), model.encode_prompts(["a red circle", "a blue square"])
    with torch.no_grad():
        teacher = velocity(model.transformer, x, 0.7, cond)
        with student_adapter(model, out, fused=False):
            plain = velocity(model.transformer, x, 0.7, cond)
        for _ in range(3):  # merging again and again must not accumulate anything
            with student_adapter(model, out, fused=True):
                fused = velocity(model.transformer, x, 0.7, cond)
        after_teacher = velocity(model.transformer, x, 0.7, cond)
    assert not torch.allclose(plain, teacher, atol=1e-4)  # the student differs from the teacher
    assert torch.allclose(fused, plain, atol=1e-5)
    assert torch.equal(after_teacher, teacher)
    now = {n.replace(".base_layer", ""): p for n, p in model.transformer.named_parameters() if "lora_" not in n}
    assert now.keys() == before.keys() and all(torch.equal(before[n], now[n]) for n in before)
    clips, _ = sample_frames(model, SampleConfig(prompt="a red circle", seeds=[1], lora=str(out)).validate())
    assert clips.shape == (1, 17, 64, 64, 3)


def test_gradient_accumulation_steps_on_the_mean_gradient_of_its_micro_batches(mini_teacher_dir, tmp_path):
    """grad_accum=2 makes one fake-score step on the mean of the gradients that two single updates would
    compute from the same draws (the same weights: those two are recorded, not applied)."""

    def recorded(distiller, apply):
        grads = []
        step = distiller.opt_fake.step

        def record():
            grads.append([p.grad.clone() for p in distiller.fake_params])
            if apply:
                step()

        distiller.opt_fake.step = record
        return grads

    accumulated = Distiller(_cfg(mini_teacher_dir, batch_size=1, grad_accum=2, grad_clip=1e9), tmp_path / "a")
    single = Distiller(_cfg(mini_teacher_dir, batch_size=1, grad_clip=1e9), tmp_path / "b")
    got, parts = recorded(accumulated, apply=True), recorded(single, apply=False)
    accumulated.fake_update()
    single.fake_update()
    single.fake_update()
    assert len(got) == 1 and len(parts) == 2
    for g, g1, g2 in zip(got[0], *parts):
        assert torch.allclose(g, (g1 + g2) / 2, rtol=1e-5, atol=1e-8)
    assert not all(torch.allclose(g1, g2) for g1, g2 in zip(*parts))  # two different micro-batches
    with pytest.raises(ValueError, match="grad_accum"):
        _cfg(mini_teacher_dir, grad_accum=0).validate()


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
