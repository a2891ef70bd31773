"""The plan of an int8 frozen base (base_int8) against the same stages run for real on an int8 base, at a width
where one Linear's dequantized weight (32 MiB here) is more than the tolerance: the weights' saving leaves the
stage's increment alone, and the one dequantized layer is the only temporary the int8 base adds."""

from __future__ import annotations

import pytest

from engine.plan import BASES, PlanSpec, make_plan
from engine.plan.measure import measure_in_subprocess
from engine.plan.spec import WAN_1_3B
from test_plan import ABS, REL

MiB = 2**20
# Wan2.1's block structure at 1024 wide with the 1.3B's 8192-wide feed-forward: each such Linear is 32 MiB in fp32.
WIDE = (dict(WAN_1_3B, num_attention_heads=8, attention_head_dim=128, ffn_dim=8192, num_layers=2), None, 8, 16)


@pytest.fixture(autouse=True)
def wide_base(tmp_path, monkeypatch):
    monkeypatch.setitem(BASES, "wide", WIDE)
    monkeypatch.setenv("DFD_PLAN_CACHE", str(tmp_path / "plans"))


@pytest.mark.parametrize("stage", ["fake_update", "student_update_dfd"])
def test_planned_peak_of_an_int8_base_matches_the_measured_one(stage):
    def spec(int8: bool) -> PlanSpec:
        return PlanSpec(
            base="wide",
            frames=5,
            height=128,
            width=128,
            batch=1,
            precision="fp32",
            rank=8,
            gradient_checkpointing=True,
            vae=False,
            text_encoder=False,
            base_int8=int8,
        )

    plain, int8 = (make_plan(spec(flag), only=(stage,)).stage(stage) for flag in (False, True))
    assert int8.resident < plain.resident and int8.peak < plain.peak  # the saving, before and during the stage
    planned_increment = int8.peak - int8.resident
    measured = measure_in_subprocess(spec(True).to_dict(), stage, {"wide": WIDE})
    assert abs(planned_increment - measured) <= REL * measured + ABS, (
        f"{stage}: planned {planned_increment / MiB:.1f} MiB, measured {measured / MiB:.1f} MiB"
    )
