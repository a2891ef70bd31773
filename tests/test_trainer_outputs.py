"""What a distillation run on a real (tiny) Wan pipeline gives: a student LoRA that diffusers' WanPipeline loads
and samples in four steps, a ComfyUI export under the original Wan module names, a run of the real Wan classes
from a video folder in bf16, and fused student sampling that matches the adapter."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from engine.distill.trainer import Distiller
from trainer_helpers import tiny_config as _cfg


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
