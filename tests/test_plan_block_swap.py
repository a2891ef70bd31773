"""Block swap in the plan: the planner runs the engine's own BlockSwap hooks on fake tensors, so the weights
part of each stage drops by the swapped blocks less the one on the device, and the bytes each stage copies
from the host (timed at the link's nominal rate) are those the hooks moved."""

from __future__ import annotations

import pytest
import torch

from engine.plan import BASES, PlanError, PlanSpec, make_plan
from engine.plan.build import transformer_with_adapters
from engine.plan.spec import WAN_1_3B
from engine.plan.timing import transfer_seconds

# Wan2.1's block structure, narrowed to plan in seconds; four blocks.
TINY = (dict(WAN_1_3B, num_attention_heads=2, attention_head_dim=64, ffn_dim=512, num_layers=4), None, 8, 16)


@pytest.fixture(autouse=True)
def tiny_base(tmp_path, monkeypatch):
    BASES["tiny4"] = TINY
    monkeypatch.setenv("DFD_PLAN_CACHE", str(tmp_path / "plans"))
    yield
    BASES.pop("tiny4", None)


def _spec(block_swap: int) -> PlanSpec:
    return PlanSpec(
        base="tiny4",
        frames=5,
        height=128,
        width=128,
        precision="bf16",
        rank=8,
        vae=False,
        text_encoder=False,
        block_swap=block_swap,
    )


def test_the_weights_part_drops_by_the_swapped_blocks_and_the_transfers_are_counted():
    only = ("fake_update", "student_update_dfd", "sampling")
    plain, swapped = make_plan(_spec(0), only), make_plan(_spec(3), only)
    net, _ = transformer_with_adapters(_spec(0), torch.bfloat16)
    block = sum(p.numel() * 2 for n, p in net.blocks[0].named_parameters() if "lora_" not in n)
    for name in only:
        a, b = plain.stage(name), swapped.stage(name)
        assert a.parts["weights"] - b.parts["weights"] == 2 * block, name  # 3 on the host, 1 on the device
        assert a.peak - b.peak == pytest.approx(2 * block, rel=0.05), name  # the peak's moment may shift a little
        assert a.transfer == 0 and "block swap: 3 blocks" in b.note
    # fake update: the student's no-grad forward (3 blocks in), the fake score's checkpointed forward (3),
    # its backward's recomputes (the last block is still there: 2). Student update: its forward (3), the fake
    # score's and the teacher's no-grad forwards (3 + 3), its backward (2). Sampling: one forward (3).
    assert swapped.stage("fake_update").transfer == 8 * block
    assert swapped.stage("student_update_dfd").transfer == 11 * block
    assert swapped.stage("sampling").transfer == 3 * block
    k = swapped.spec.student_update_freq
    assert swapped.step_transfer() == ((k - 1) * 8 + 11) * block / k
    assert transfer_seconds(31.5e9, "4090") == pytest.approx(1.0)  # 31.5 GB/s: PCIe 4.0 x16


def test_block_swap_without_checkpointing_or_with_fsdp2_or_too_many_blocks_is_refused():
    with pytest.raises(PlanError, match="up to the base's 4 transformer blocks"):
        _spec(5).check()
    with pytest.raises(PlanError, match="needs gradient checkpointing"):
        PlanSpec(base="tiny4", frames=5, height=128, width=128, block_swap=2, gradient_checkpointing=False).check()


def test_block_swap_is_a_run_option_checked_by_name():
    from engine.config.distill import DistillConfig
    from engine.config.fields import ConfigError

    DistillConfig(block_swap=2, gradient_checkpointing=True).validate()
    with pytest.raises(ConfigError, match="block_swap needs gradient_checkpointing"):
        DistillConfig(block_swap=2).validate()
    with pytest.raises(ConfigError, match="block_swap and shard_base"):
        DistillConfig(block_swap=2, gradient_checkpointing=True, shard_base=True).validate()


def test_the_distill_tabs_plan_shows_the_stages_notes_and_block_swaps_time():
    from studio.distill_plan import plan_markdown
    from studio.distill_request import defaults_for

    base = "wan2.1-1.3b-random"
    form = dict(defaults_for(base), base=base, method="dfd", num_frames=5, height=64, width=64, batch_size=1)
    form.update(gradient_checkpointing=True, block_swap=20)
    text = plan_markdown(form, "4090", 40)
    assert "Notes:" in text, text
    assert "- fake-score update: block swap: 20 blocks' weights" in text, text
    assert "s of it block swap's copies" in text, text
    assert "- text encoding" not in text  # the text encoder is not the transformer: nothing swapped there


def test_a_run_over_the_free_memory_is_told_how_many_blocks_to_swap():
    from engine.plan.planner import GiB, Plan, StagePlan
    from engine.plan.preflight import PlanDoesNotFit, check_plan

    # the 14B's weights (26.6 GiB over 40 blocks: ~0.67 GiB a block) with 10 GiB of the rest, on a 32 GiB card
    parts = {"weights": 26.6 * GiB, "lora_optimizer": 2 * GiB, "activations": 6 * GiB, "temporaries": 4 * GiB}
    plan = Plan(PlanSpec(base="wan2.1-14b", frames=81, height=480, width=832).check())
    plan.stages.append(StagePlan("student_update_dfd", int(sum(parts.values())), parts, 0, 0))
    with pytest.raises(PlanDoesNotFit) as err:
        check_plan(plan, free=32 * GiB)
    over = sum(parts.values()) - 32 * GiB * 0.92
    blocks = int(over // (26.6 * GiB / 40)) + 1
    assert f"block_swap {blocks} " in str(err.value), str(err.value)
