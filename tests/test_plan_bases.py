"""The plan knows every base the engine loads at its real config: Wan2.2-A14B (two 14B experts, both on the
device as the engine holds them) and Cosmos-Predict2.5-2B (its CosmosFlowTransformer with 1024-wide projected
prompts, Qwen2.5-VL-7B as text encoder). Planned at a small clip size: the weights are the full networks'."""

from __future__ import annotations

import pytest
import torch
from diffusers import WanTransformer3DModel

from engine.plan import PlanSpec, build, make_plan
from engine.plan.spec import WAN_14B, PlanError


@pytest.fixture(autouse=True)
def plan_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DFD_PLAN_CACHE", str(tmp_path / "plans"))


def _frozen_bytes(module) -> int:
    """What the plan counts as a network's weights: its frozen parameters and its buffers (rotary tables)."""
    frozen = [p for n, p in module.named_parameters() if "lora_" not in n] + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in frozen)


def _small(base: str, task: str = "t2v", **kw) -> PlanSpec:
    spec = PlanSpec(base=base, task=task, frames=5, height=64, width=64, rank=8, vae=False, text_encoder=False, **kw)
    return spec.check()


def test_wan22_a14b_holds_both_experts_and_their_adapters_on_the_device():
    spec = _small("wan2.2-a14b")
    plan = make_plan(spec, ("sampling",))
    sampling = plan.stage("sampling")
    expert = build._on_meta(lambda: WanTransformer3DModel(**WAN_14B), torch.bfloat16)  # as the plan builds it
    assert sampling.parts["weights"] == 2 * _frozen_bytes(expert)  # 2 x 14.3 B parameters in bf16
    experts, adapters = build.transformer_with_adapters(spec, torch.bfloat16)
    lora_tensors = [p for n, p in experts.named_parameters() if "lora_" in n]
    lora = sum(p.numel() * 4 for p in lora_tensors)
    assert lora == 2 * sum(p.numel() * 4 for p in adapters.parameters("student"))  # student and fake, fp32
    # the adapters of both experts, Adam's two moments and its step count per tensor
    assert sampling.parts["lora_optimizer"] == 3 * lora + 4 * len(lora_tensors)
    assert "both experts" in sampling.note
    assert spec.base == "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    with pytest.raises(PlanError, match="not on a two-expert base"):
        _small("wan2.2-a14b", block_swap=4)


def test_cosmos_predict25_2b_plans_its_transformer_text_encoder_and_an_i2v_condition():
    from engine.models.cosmos import COSMOS_2B_TRANSFORMER, CosmosFlowTransformer
    from engine.plan.stages import Inputs

    t2v, i2v = _small("cosmos-predict2.5-2b"), _small("cosmos-predict2.5-2b", task="i2v")
    assert t2v.text_width() == 1024 and Inputs(t2v, torch.float32).condition is None
    condition = Inputs(i2v, torch.float32).condition  # the given frame replaces the first latent frame
    assert i2v.condition_channels() == 0 and condition.mask_channel
    assert condition.clean.shape == (1, 16, 2, 8, 8) and condition.mask[0, 0, :, 0, 0].tolist() == [0.0, 1.0]
    network = build._on_meta(lambda: CosmosFlowTransformer(**COSMOS_2B_TRANSFORMER), torch.bfloat16)
    plan = make_plan(PlanSpec(**dict(i2v.to_dict(), text_encoder=True)), ("text_encoding", "sampling"))
    assert plan.stage("sampling").parts["weights"] == _frozen_bytes(network)
    text = plan.stage("text_encoding")
    qwen = build.text_encoder(PlanSpec(base="cosmos-predict2.5-2b").check(), torch.bfloat16)
    assert text.parts["weights"] == _frozen_bytes(qwen) and 15 * 2**30 < text.parts["weights"] < 16 * 2**30
    assert "Qwen2.5-VL-7B" in text.note
