"""The frozen base in int8 (torchao weight-only) on a tiny random Wan transformer, on the CPU: the blocks'
Linear weights become Int8Tensors, the forward stays close to the unquantized one, the student LoRA trains
on top (peft's TorchaoLoraLinear), the teacher forward runs with the adapters off, a real shapes-world run
(t2v and the causal ar task) trains and saves a LoRA with the plain run's keys, and the untried
combinations are refused; on a tiny random two-expert base (Wan2.2-A14B), both experts are quantized and each
expert's student trains."""

from __future__ import annotations

import json

import pytest
import torch

from engine.config.distill import ConfigError, DistillConfig
from engine.distill.adapters import STUDENT, Adapters
from engine.distill.base_int8 import check_base_int8, quantize_blocks
from tiny_wan import (
    A14B_BOUNDARY,
    each_experts_student_moved,
    save_captioned_clips,
    save_tiny_wan22_a14b,
    tiny_transformer,
)

SHAPE = {"num_frames": 5, "height": 16, "width": 16}  # the two-expert base's clips: 2 latent frames of 2 x 2 tokens


def _network(int8: bool):
    torch.manual_seed(0)
    net = tiny_transformer()
    if int8:
        assert quantize_blocks(net) == 2 * (4 + 4 + 2)  # per block: self and cross attention's 4, the MLP's 2
    return net


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 4, 3, 8, 8, generator=g), torch.tensor([500.0]), torch.randn(1, 6, 32, generator=g)


def test_the_blocks_linear_weights_are_int8_and_the_forward_stays_close():
    from torchao.quantization import Int8Tensor

    plain, quantized = _network(False), _network(True)
    for name, module in quantized.named_modules():
        if isinstance(module, torch.nn.Linear):
            assert isinstance(module.weight, Int8Tensor) == name.startswith("blocks."), name
            if name.startswith("blocks."):
                assert module.weight.qdata.dtype == torch.int8
                assert module.weight.scale.shape == (module.out_features, 1)
    with torch.no_grad():
        want = plain(*_inputs(), return_dict=False)[0]
        got = quantized(*_inputs(), return_dict=False)[0]
    rel = ((got - want).norm() / want.norm()).item()
    assert 0 < rel < 0.02, rel  # measured 0.0016 on this network (fp32 base, per-row int8)


def test_the_student_lora_trains_on_the_int8_base_and_the_teacher_runs_without_it():
    net = _network(True)
    adapters = Adapters(net, rank=4)
    for p in adapters.parameters(STUDENT):  # non-zero B: every LoRA weight gets a gradient
        torch.nn.init.normal_(p, std=0.1)
    assert "TorchaoLoraLinear" in type(net.blocks[0].attn1.to_q).__name__
    adapters.use(STUDENT)
    out = net(*_inputs(), return_dict=False)[0]
    out.square().mean().backward()
    grads = [p.grad for p in adapters.parameters(STUDENT)]
    assert grads and all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    adapters.use(None)
    with torch.no_grad():
        teacher = net(*_inputs(), return_dict=False)[0]
        assert torch.isfinite(teacher).all() and not torch.allclose(teacher, out.detach())
        adapters.use(STUDENT)
        assert torch.allclose(net(*_inputs(), return_dict=False)[0], out.detach())


def test_a_real_run_on_an_int8_base_trains_a_student_with_the_plain_runs_keys(tmp_path, mini_teacher_dir):
    from engine.distill.trainer import Distiller
    from trainer_helpers import student_tensors

    students, logs = [], []
    for int8, task in ((False, "t2v"), (True, "t2v"), (True, "ar")):
        cfg = DistillConfig(
            base=str(mini_teacher_dir), steps=2, batch_size=2, student_update_freq=2, lora_rank=4,
            shapes_pool_clips=16, base_int8=int8, task=task,
        ).validate()  # fmt: skip
        distiller = Distiller(cfg, tmp_path / f"run{int8}{task}")
        students.append(student_tensors(distiller.train()))
        logs.append(type(distiller.transformer.blocks[0].ffn.net[2].base_layer.weight).__name__)
    plain, int8, causal = students
    assert plain.keys() == int8.keys() == causal.keys()
    assert logs == ["Parameter", "Int8Tensor", "Int8Tensor"], logs
    for student in (int8, causal):
        assert all(torch.isfinite(t).all() for t in student.values())
        # DMD2 starts the student's B at zero: a trained student has moved it.
        assert any(t.abs().sum() > 0 for name, t in student.items() if "lora_B" in name)


def test_untried_combinations_are_refused_in_one_line():
    DistillConfig(base_int8=True).validate()
    with pytest.raises(ConfigError, match="base_int8 and block_swap"):
        DistillConfig(base_int8=True, block_swap=2, gradient_checkpointing=True).validate()
    with pytest.raises(ConfigError, match="base_int8 and shard_base"):
        DistillConfig(base_int8=True, shard_base=True).validate()
    with pytest.raises(ValueError, match="over 2 processes"):
        check_base_int8(world=2)


@pytest.mark.parametrize("experts", [False, True], ids=["one network", "two experts"])
def test_the_plans_weights_part_counts_a_byte_per_block_linear_weight_plus_a_row_scale(tmp_path, monkeypatch, experts):
    from engine.models.experts import networks_of
    from engine.plan import BASES, PlanError, PlanSpec, make_plan
    from engine.plan.build import transformer_with_adapters
    from engine.plan.spec import EXPERTS, WAN_1_3B

    tiny = dict(WAN_1_3B, num_attention_heads=2, attention_head_dim=64, ffn_dim=512, num_layers=4)
    monkeypatch.setitem(BASES, "tiny4", (tiny, None, 8, 16))
    if experts:  # Wan2.2-A14B's shape: two such networks, both held on the device
        monkeypatch.setitem(EXPERTS, "tiny4", 0.875)
    monkeypatch.setenv("DFD_PLAN_CACHE", str(tmp_path / "plans"))

    def spec(**kw):
        return PlanSpec(base="tiny4", frames=5, height=128, width=128, rank=8, vae=False, text_encoder=False, **kw)

    only = ("fake_update", "sampling")
    plain, int8 = make_plan(spec(), only), make_plan(spec(base_int8=True), only)
    net, _ = transformer_with_adapters(spec(), torch.bfloat16)
    networks = networks_of(net)
    linears = [
        m
        for network in networks
        for n, m in network.blocks.named_modules()
        if isinstance(m, torch.nn.Linear) and "lora_" not in n
    ]
    assert len(linears) == 4 * 10 * len(networks)  # per block: self and cross attention's 4, the MLP's 2
    saved = sum(m.weight.numel() - 4 * m.out_features for m in linears)  # bf16's 2 bytes -> 1 + an fp32 row scale
    for name in only:
        a, b = plain.stage(name), int8.stage(name)
        assert a.parts["weights"] - b.parts["weights"] == saved, name
        assert a.peak - b.peak == saved - max(m.weight.numel() * 2 for m in linears), name
        assert "int8 frozen base: block Linear weights" in b.note and "unmeasured" in b.note
    with pytest.raises(PlanError, match="--base-int8: one GPU"):
        spec(base_int8=True, gpus=2, sharding="ddp").check()


@pytest.fixture(scope="module")
def a14b_t2v(tmp_path_factory):
    """A tiny random Wan2.2-A14B of the real classes (two experts), with the clip size of its runs."""
    folder = save_tiny_wan22_a14b(tmp_path_factory.mktemp("a14b_t2v"), "t2v")
    (folder / "dfd_studio.json").write_text(json.dumps({**SHAPE, "fps": 16}))
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return save_captioned_clips(tmp_path_factory.mktemp("clips"))


def test_an_int8_base_quantizes_both_experts_and_trains_each_experts_student(a14b_t2v, clips, tmp_path):
    from diffusers import WanPipeline
    from torchao.quantization import Int8Tensor

    from engine.distill.trainer import Distiller

    cfg = DistillConfig(
        base=str(a14b_t2v),
        data=str(clips),
        steps=4,
        batch_size=3,
        student_update_freq=1,
        lora_rank=4,
        seed=3,
        t_list=[0.99, 0.95, 0.6, 0.3, 0.0],  # student times on both sides of the boundary: both experts train
        base_int8=True,
        **SHAPE,
    )
    distiller = Distiller(cfg, tmp_path / "int8")
    out = distiller.train()
    for expert in (distiller.transformer.transformer, distiller.transformer.transformer_2):
        weights = [  # the base's Linears, not the adapters' lora_A / lora_B
            m.weight for n, m in expert.blocks.named_modules() if isinstance(m, torch.nn.Linear) and "lora_" not in n
        ]
        assert weights and all(isinstance(w, Int8Tensor) for w in weights)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    drawn = {float(k.removeprefix("real_gap@t")) for r in rows for k in r if k.startswith("real_gap@t")}
    assert {t >= A14B_BOUNDARY["t2v"] for t in drawn} == {True, False}  # both experts' times were drawn
    # the plain base (not quantized) takes them: the files are a plain run's kind
    each_experts_student_moved(WanPipeline.from_pretrained(str(a14b_t2v)), out)
