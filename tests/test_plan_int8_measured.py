"""The plan of an int8 frozen base (base_int8) against the same stages run for real on an int8 base, at a width
where one Linear's dequantized weight (32 MiB here) is more than the tolerance: the weights' saving leaves the
stage's increment alone, and the one dequantized layer is the only temporary the int8 base adds."""

from __future__ import annotations

import pytest

from engine.plan import BASES, PlanSpec, make_plan
from engine.plan.spec import WAN_1_3B
from test_plan import check_planned_against_measured, small_spec

# Wan2.1's block structure at 1024 wide with the 1.3B's 8192-wide feed-forward: each such Linear is 32 MiB in fp32.
WIDE = (dict(WAN_1_3B, num_attention_heads=8, attention_head_dim=128, ffn_dim=8192, num_layers=2), None, 8, 16)


@pytest.fixture(autouse=True)
def wide_base(tmp_path, monkeypatch):
    monkeypatch.setitem(BASES, "wide", WIDE)
    monkeypatch.setenv("DFD_PLAN_CACHE", str(tmp_path / "plans"))


@pytest.mark.parametrize("stage", ["fake_update", "student_update_dfd"])
def test_planned_peak_of_an_int8_base_matches_the_measured_one(stage):
    def spec(int8: bool) -> PlanSpec:
        return small_spec(True, base="wide", frames=5, height=128, width=128, batch=1, base_int8=int8)

    plain, int8 = (make_plan(spec(flag), only=(stage,)).stage(stage) for flag in (False, True))
    assert int8.resident < plain.resident and int8.peak < plain.peak  # the saving, before and during the stage
    check_planned_against_measured(spec(True), stage, {"wide": WIDE})
