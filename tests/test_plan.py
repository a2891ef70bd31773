"""engine.plan: the planned peak of each stage against the peak measured in a real run at a size that runs
on a CPU, the attention model against torch's own kernel, the pre-flight refusal and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from engine.plan import BASES, PlanSpec, make_plan
from engine.plan.cache import cached_plan
from engine.plan.measure import measure_in_subprocess
from engine.plan.planner import GiB, Plan, StagePlan
from engine.plan.preflight import PlanDoesNotFit, check_plan, preflight
from engine.plan.spec import WAN_1_3B

MiB = 2**20
# Wan2.1's block structure, narrowed to run for real on a CPU in seconds (text_dim stays 4096: UMT5's width).
TINY = (dict(WAN_1_3B, num_attention_heads=2, attention_head_dim=64, ffn_dim=512, num_layers=2), None, 8, 16)
# Planned within 15% + 8 MiB of measured: the measurement is the process's peak RSS, which also holds the
# allocator's and the kernels' own scratch, a few MiB at these sizes.
REL, ABS = 0.15, 8 * MiB


@pytest.fixture(autouse=True)
def tiny_base(tmp_path, monkeypatch):
    BASES["tiny"] = TINY
    monkeypatch.setenv("DFD_PLAN_CACHE", str(tmp_path / "plans"))  # no test reads another's (or a user's) plans
    yield
    BASES.pop("tiny", None)


def small_spec(checkpointing: bool, **changes) -> PlanSpec:
    """A spec of the transformer stages alone, in fp32, at a size that runs for real on a CPU in seconds."""
    settings = dict(
        base="tiny",
        frames=9,
        height=256,
        width=256,
        batch=2,
        precision="fp32",
        rank=8,
        gradient_checkpointing=checkpointing,
        vae=False,
        text_encoder=False,
    )
    return PlanSpec(**{**settings, **changes})


def check_planned_against_measured(spec: PlanSpec, stage: str, bases: dict) -> None:
    """The stage's planned increment over what was resident within REL + ABS of the one measured for real."""
    planned = make_plan(spec, only=(stage,)).stage(stage)
    planned_increment = planned.peak - planned.resident
    measured = measure_in_subprocess(spec.to_dict(), stage, bases)
    assert abs(planned_increment - measured) <= REL * measured + ABS, (
        f"{stage}: planned {planned_increment / MiB:.1f} MiB, measured {measured / MiB:.1f} MiB"
    )


@pytest.mark.parametrize(
    "checkpointing,stage",
    [
        (False, "fake_update"),
        (False, "student_update_dmd2"),
        (False, "student_update_dfd"),
        (False, "sampling"),
        (True, "student_update_dfd"),
        (True, "sampling"),
        (True, "fake_update"),
    ],
)
def test_planned_peak_matches_the_measured_one(checkpointing, stage):
    check_planned_against_measured(small_spec(checkpointing), stage, {"tiny": TINY})


_ATTENTION = textwrap.dedent("""
    import json, sys, torch, torch.nn.functional as F
    from engine.plan.tracker import MemoryCounter
    from engine.plan.attention import planned_attention
    shape = (1, 2, 8192, 64)
    def step():
        q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
        F.scaled_dot_product_attention(q, k, v).sum().backward()
    if sys.argv[1] == "plan":
        from torch._subclasses.fake_tensor import FakeTensorMode
        with FakeTensorMode(), planned_attention():
            counter = MemoryCounter()
            with counter:
                step()
        print(counter.peak)
    else:
        def status(key):
            return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
        step()
        open("/proc/self/clear_refs", "w").write("5")
        before = status("VmRSS")
        step()
        print(status("VmHWM") - before)
""")


def test_attention_is_planned_as_the_kernel_that_keeps_no_n_by_n_matrix():
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", OMP_NUM_THREADS="1")
    out = {
        mode: int(
            subprocess.run(
                [sys.executable, "-c", _ATTENTION, mode], capture_output=True, text=True, env=env, check=True
            ).stdout.split()[-1]
        )
        for mode in ("plan", "measure")
    }
    n_by_n = 2 * 8192 * 8192 * 4  # the math path's softmax(QK^T) for two heads: 512 MiB
    assert out["measure"] < n_by_n / 8, f"torch's CPU kernel held {out['measure'] / MiB:.0f} MiB"
    assert abs(out["plan"] - out["measure"]) <= REL * out["measure"] + ABS, (
        f"planned {out['plan'] / MiB:.1f} MiB, measured {out['measure'] / MiB:.1f} MiB"
    )


def _plan(peak_gib: float, parts: dict | None = None, **spec) -> Plan:
    parts = parts or {"weights": 2.6 * GiB, "lora_optimizer": 1 * GiB, "activations": 8 * GiB, "temporaries": 0}
    plan = Plan(PlanSpec(**spec))
    plan.stages.append(StagePlan("student_update_dfd", int(peak_gib * GiB), parts, 0, 0))
    return plan


def test_a_plan_over_the_free_memory_is_refused_with_options_that_would_fit():
    plan = _plan(
        30,
        {"weights": 2.6 * GiB, "lora_optimizer": 1 * GiB, "activations": 26.4 * GiB, "temporaries": 0},
        batch=4,
        gradient_checkpointing=False,
    )
    with pytest.raises(PlanDoesNotFit) as err:
        check_plan(plan, free=24 * GiB, device="cuda:0")
    message = str(err.value)
    assert "30.0 GiB" in message and "24.0 GiB free" in message
    assert "gradient checkpointing" in message and "batch 2 per GPU" in message and "frames" in message
    check_plan(plan, free=40 * GiB)  # fits: no error

    # Wan2.2-A14B's planned H100 case on an int8 base: over by less than its adapters' share, so a smaller rank.
    # 92% of the H100's 79.1 GiB leaves 72.77 - (73.91 - 6.86) = 5.72 GiB for adapters that take 6.86 GiB at
    # rank 32: rank 26, kept to a multiple of 4
    parts = dict(weights=27.31 * GiB, lora_optimizer=6.86 * GiB, activations=12.57 * GiB, temporaries=27.17 * GiB)
    with pytest.raises(PlanDoesNotFit) as err:
        check_plan(_plan(73.91, parts, rank=32), free=int(79.1 * GiB))
    assert "LoRA rank 24 instead of 32" in str(err.value) and "windows of 77 frames" in str(err.value), str(err.value)


def test_the_trainers_preflight_plans_its_config_against_the_given_free_memory():
    cfg = SimpleNamespace(
        base="tiny",
        task="t2v",
        num_frames=9,
        height=256,
        width=256,
        batch_size=2,
        mixed_precision="no",
        gradient_checkpointing=False,
        lora_rank=8,
        guidance=5.0,
        student_update_freq=5,
        shard_base=False,
    )
    lines = []
    plan = preflight(cfg, "cuda:0", 1, lines.append, free=8 * GiB)
    assert plan is not None and lines and "peak" in lines[0] and "planned in" in lines[0]
    preflight(cfg, "cuda:0", 1, lines.append, free=8 * GiB)  # a repeated start: the kept plan, at once
    assert "read from the plan cache" in lines[1]
    with pytest.raises(PlanDoesNotFit, match="would run out of memory"):
        preflight(cfg, "cuda:0", 1, free=plan.peak())
    assert preflight(cfg, "cpu", 1) is None  # no device memory to compare with on a CPU


def test_a_plan_is_kept_by_its_spec_and_a_changed_spec_plans_afresh(tmp_path):
    only = ("sampling",)
    first, kept = cached_plan(small_spec(False), only)
    assert not kept
    again, kept = cached_plan(small_spec(False), only)
    assert kept and again.to_dict() == json.loads(json.dumps(first.to_dict()))
    files = list((tmp_path / "plans").glob("*.json"))
    assert len(files) == 1
    _, kept = cached_plan(small_spec(True), only)  # checkpointing on: another spec, another plan
    assert not kept and len(list((tmp_path / "plans").glob("*.json"))) == 2
    files[0].write_text('{"half a fi')  # an unreadable plan is planned afresh and replaced
    replanned, kept = cached_plan(small_spec(False), only)
    assert not kept and replanned.stage("sampling").peak == first.stage("sampling").peak
    assert json.loads(files[0].read_text())["stages"][0]["name"] == "sampling"


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "engine", "plan", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=900,
    )


def test_plan_command_prints_stages_flops_and_step_time_as_json(tmp_path):
    folder = tmp_path / "base"
    (folder / "transformer").mkdir(parents=True)
    (folder / "vae").mkdir()
    (folder / "transformer" / "config.json").write_text(json.dumps({**TINY[0], "patch_size": [1, 2, 2]}))
    (folder / "vae" / "config.json").write_text(json.dumps({"base_dim": 16, "z_dim": 16}))
    done = _cli(
        "--base",
        str(folder),
        "--frames",
        "9",
        "--height",
        "128",
        "--width",
        "128",
        "--batch",
        "1",
        "--stages",
        "fake_update,student_update_dfd,sampling,preview_decode",
        "--gpu",
        "H100",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert [s["name"] for s in plan["stages"]] == ["fake_update", "student_update_dfd", "sampling", "preview_decode"]
    for stage in plan["stages"]:
        assert stage["peak"] >= stage["resident"] > 0 and stage["flops"] > 0
    assert plan["step_flops"] > 0 and plan["step_seconds"]["H100"] > 0


def test_plan_command_refuses_a_bad_size_in_one_line():
    done = _cli("--frames", "80")
    assert done.returncode == 2 and "--frames 80" in done.stderr and "4k+1" in done.stderr


def test_the_distill_tabs_plan_shows_stages_fit_and_hours_and_keeps_the_plan(monkeypatch):
    from studio.distill_plan import plan_markdown
    from studio.distill_request import defaults_for

    base = "wan2.1-1.3b-random"  # the 1.3B's real config: text encoder, VAE and transformer at full width
    form = dict(defaults_for(base), base=base, method="dfd", num_frames=5, height=64, width=64, batch_size=1)
    form["steps"] = 3600
    text = plan_markdown(form, "4090", 40)
    assert "**Run peak" in text and "fits** a 4090" in text and "s per step** at 40% MFU" in text, text
    for stage in ("text encoding", "latent encoding", "fake-score update", "student update (DFD", "preview decode"):
        assert stage in text, text
    monkeypatch.setattr("subprocess.run", None)  # the same settings again: read back, no planning process
    assert plan_markdown(form, "4090", 40) == text
    assert plan_markdown(dict(form, base="shapes-tiny"), "4090", 40).startswith("**Cannot plan:** base 'shapes-tiny'")
    assert "MFU 0" in plan_markdown(form, "4090", 0)


def test_tiled_encoding_is_an_option_of_the_model_and_its_windows_are_cached_apart(tiny_wan_dir):
    import numpy as np
    import torch

    from engine.distill.folder_data import WindowEncoder
    from engine.models.base import load_base_model

    model = load_base_model(str(tiny_wan_dir), device="cpu", dtype=torch.float32)
    frames = np.random.default_rng(0).integers(0, 255, (1, 5, 64, 320, 3), dtype=np.uint8)  # wider than a tile
    whole_key = WindowEncoder(model).model_key
    whole = model.encode_video(frames)
    model.tiled_encode = True
    tiled = model.encode_video(frames)
    assert WindowEncoder(model).model_key == whole_key + "|tiled" and not model.vae.use_tiling
    assert tiled.shape == whole.shape and not torch.equal(tiled, whole)  # the seams differ, the latents agree
    assert (tiled - whole).abs().mean() < 0.25 * whole.abs().mean()
