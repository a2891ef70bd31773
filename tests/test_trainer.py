"""The distillation engine on a real (tiny) Wan pipeline: adapters, updates, checkpoints, resume, gradient
checkpointing and accumulation, and the refusals the paper's validity condition calls for. What a run writes
for diffusers and ComfyUI is tests/test_trainer_outputs.py; what it logs and previews
tests/test_trainer_logging.py."""

from __future__ import annotations

import json

import pytest
import torch

from engine.distill.adapters import FAKE, STUDENT
from engine.distill.trainer import Distiller, TrainingDiverged, latest_checkpoint
from trainer_helpers import StopAt, student_tensors
from trainer_helpers import tiny_config as _cfg


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


def test_gradient_checkpointing_changes_memory_not_the_update(mini_teacher_dir, tmp_path):
    def fake_after_one_update(checkpointing):
        d = Distiller(_cfg(mini_teacher_dir, gradient_checkpointing=checkpointing), tmp_path / str(checkpointing))
        d.fake_update()
        d.student_update()
        return d.adapters.state_dict(FAKE), d.adapters.state_dict(STUDENT)

    plain, recomputed = fake_after_one_update(False), fake_after_one_update(True)
    for a, b in zip(plain, recomputed):
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_video_size_overrides_are_for_folder_data(mini_teacher_dir):
    with pytest.raises(ValueError, match="for folder data"):
        _cfg(mini_teacher_dir, height=32).validate()
    with pytest.raises(ValueError, match="mixed_precision"):
        _cfg(mini_teacher_dir, mixed_precision="fp8").validate()


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
