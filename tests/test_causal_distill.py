"""Self-Forcing training of the causal student (task ar) through the real trainer: the rollout's gradient
truncation, the teacher and fake score left bidirectional, exact resume, DFD post-training of a causal
student, and the command line from `distill --task ar` to a 65-frame `sample`."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_engine
from engine.config.build import build_distill_config
from engine.distill.adapters import FAKE
from engine.distill.trainer import Distiller, latest_checkpoint
from engine.generation.sampling import velocity
from engine.models.causal import chunk_bounds
from trainer_helpers import StopAt, student_tensors


def _ar(base=None, **kw):
    values = dict(
        task="ar",
        steps=4,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        lr_student=1e-3,
        lr_fake=1e-3,
        checkpoint_every=2,
        seed=3,
        shapes_pool_clips=16,
    )
    if base is not None:
        values["base"] = str(base)
    values.update(kw)
    return build_distill_config(values=values)


@pytest.mark.parametrize("student_input", ["paired", "backward"])
def test_the_rollout_takes_gradient_through_one_step_per_chunk(mini_teacher_dir, tmp_path, student_input):
    d = Distiller(_ar(mini_teacher_dir, student_input=student_input), tmp_path)
    chunks = len(chunk_bounds(5, d.cfg.chunk_frames))
    forwards = []
    hook = d.transformer.register_forward_pre_hook(lambda module, args: forwards.append(torch.is_grad_enabled()))
    try:
        real = d._real_batch()
        x, t_student = d._student_sample(real, grad=True)
    finally:
        hook.remove()
    assert x.shape == real.latents.shape and x.requires_grad
    assert sum(forwards) == chunks  # Self-Forcing's truncation: one forward with gradient per chunk
    exit_step = min(range(len(d.cfg.t_list)), key=lambda i: abs(d.cfg.t_list[i] - float(t_student[0])))
    no_grad = exit_step * chunks if student_input == "backward" else 0  # the steps before the exit step
    assert len(forwards) - sum(forwards) == no_grad + chunks - 1  # and one commit per chunk but the last


def test_the_teacher_and_fake_score_stay_bidirectional_while_the_student_is_causal(mini_teacher_dir, tmp_path):
    from engine.models.base import load_base_model

    x = torch.randn(1, 16, 5, 8, 8, generator=torch.Generator().manual_seed(0))
    plain = load_base_model(str(mini_teacher_dir), device="cpu")
    cond = plain.encode_prompts(["a red circle"])
    with torch.no_grad():
        before = velocity(plain.transformer, x, 0.5, cond)
        d = Distiller(_ar(mini_teacher_dir), tmp_path, model=plain)
        with d.adapters.teacher():
            teacher = velocity(d.transformer, x, 0.5, cond)
        with d.adapters.using(FAKE):
            fake = velocity(d.transformer, x, 0.5, cond)
    assert torch.equal(teacher, before)  # the processors are installed, yet the teacher is the bidirectional model
    assert torch.equal(fake, before)  # the fake adapter starts at zero: the same bidirectional network


def test_an_ar_run_updates_the_student_and_resumes_bit_identically_on_shapes_tiny(tmp_path):
    cfg = _ar()
    assert cfg.base == "shapes-tiny" and cfg.chunk_frames == 2
    Distiller(cfg, tmp_path / "straight").train()
    with pytest.raises(KeyboardInterrupt):
        Distiller(cfg, tmp_path / "crashed", callbacks=StopAt(3)).train()
    assert latest_checkpoint(tmp_path / "crashed").name == "step-0000002"
    Distiller(cfg, tmp_path / "crashed").train()
    a, b = student_tensors(tmp_path / "straight"), student_tensors(tmp_path / "crashed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(a[k].abs().max() > 0 for k in a if "lora_B" in k)  # the student moved
    info = json.loads((tmp_path / "straight" / "lora_config.json").read_text())
    assert info["causal"] is True and info["chunk_frames"] == 2 and info["window_frames"] == 3
    rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [("loss_student" in r) for r in rows] == [False, True, False, True]
    record = json.loads((tmp_path / "straight" / "samples" / "previews.json").read_text())
    assert record["task"] == "ar" and len(list((tmp_path / "straight" / "samples").glob("step4-*.mp4"))) == 8


def test_dfd_post_trains_a_causal_student(mini_teacher_dir, tmp_path):
    Distiller(_ar(mini_teacher_dir), tmp_path / "dmd2").train()
    cfg = _ar(mini_teacher_dir, method="dfd", init=str(tmp_path / "dmd2"), data_forcing_prob=1.0)
    Distiller(cfg, tmp_path / "dfd").train()
    rows = [json.loads(line) for line in (tmp_path / "dfd" / "metrics.jsonl").read_text().splitlines()]
    assert [r["data_forcing"] for r in rows if "loss_student" in r] == [1.0, 1.0]
    assert json.loads((tmp_path / "dfd" / "lora_config.json").read_text())["method"] == "dfd"
    with pytest.raises(ValueError, match="has 3-frame chunks, not 2; set chunk_frames to 3"):
        _ar(mini_teacher_dir, method="dfd", init=str(tmp_path / "dmd2"), chunk_frames=2)


def test_ar_needs_a_text_to_video_base_and_a_chunk_size(mini_teacher_dir):
    from types import SimpleNamespace

    from engine.models.conditioning import check_task

    check_task("ar", SimpleNamespace(task="t2v", source="teacher"))
    with pytest.raises(ValueError, match="task ar needs a text-to-video base, but i2v-teacher is an image-to-video"):
        check_task("ar", SimpleNamespace(task="i2v", source="i2v-teacher"))
    with pytest.raises(ValueError, match="chunk_frames must be between 1 and 1024, got 0"):
        _ar(mini_teacher_dir, chunk_frames=0)


def test_distill_task_ar_on_the_command_line(tmp_path):
    # `sample --num-frames 65` of such a student runs in test_card_snippets.py, from the card's own command
    out = tmp_path / "ar"
    result = run_engine(
        "distill",
        "--task",
        "ar",
        "--steps",
        "3",
        "--student-update-freq",
        "3",
        "--batch-size",
        "2",
        "--shapes-pool-clips",
        "16",
        "--lora-rank",
        "4",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "pytorch_lora_weights.safetensors").is_file()
    assert json.loads((out / "lora_config.json").read_text())["causal"] is True
