"""Wan2.2-TI2V through the engine's Wan paths, on a tiny pipeline of the real classes: loading and its
two tasks, frame-replacement conditioning (engine/models/frame_replacement.py) against diffusers' own
WanImageToVideoPipeline with expand_timesteps, sampling t2v and i2v, one DMD2 and one DFD run of the
real trainer, and the refusal of a size the base cannot take."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_wan import save_captioned_clips, save_tiny_wan22_ti2v

SHAPE = dict(num_frames=5, height=32, width=32)  # the tiny TI2V's smallest video: 16-px VAE x 2-px patches


@pytest.fixture(scope="module")
def ti2v_dir(tmp_path_factory):
    return save_tiny_wan22_ti2v(tmp_path_factory.mktemp("tiny_wan22_ti2v"))


@pytest.fixture(scope="module")
def ti2v_pipe(ti2v_dir):
    from diffusers import WanImageToVideoPipeline

    return WanImageToVideoPipeline.from_pretrained(ti2v_dir)


@pytest.fixture(scope="module")
def ti2v_model(ti2v_dir):
    from engine.models.base import load_base_model

    model = load_base_model(str(ti2v_dir), device="cpu")
    model.set_video_shape(**SHAPE)
    return model


def _image(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, size=(32, 32, 3), dtype=np.uint8))


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_frame_replacement_sampling_is_the_pipelines_denoising_loop(ti2v_pipe, guidance):
    from engine.generation.sampling import teacher_sample, teacher_sigmas
    from engine.models.frame_replacement import FrameCondition

    pipe = ti2v_pipe
    image = pipe.video_processor.preprocess(_image(3), height=32, width=32)
    noise = torch.randn(1, 8, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    _, clean, mask = pipe.prepare_latents(image, 1, 8, 32, 32, 5, torch.float32, torch.device("cpu"), None, noise)
    condition = FrameCondition.first_frame(clean[:, :, :1], 2)
    assert torch.equal(condition.mask, mask)  # 0 on the given latent frame, 1 on the generated one
    cond = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(1))
    uncond = torch.randn(1, 32, 32, generator=torch.Generator().manual_seed(2))
    theirs = pipe(
        image=_image(3),
        prompt_embeds=cond,
        negative_prompt_embeds=uncond,
        guidance_scale=guidance,
        num_inference_steps=3,
        latents=noise.clone(),
        output_type="latent",
        **SHAPE,
    ).frames
    ours = teacher_sample(
        pipe.transformer, noise, cond, uncond, teacher_sigmas(pipe.scheduler, 3), guidance, condition=condition
    )
    # The given frame comes out as the clean frame, the generated one as the pipeline's.
    torch.testing.assert_close(ours[:, :, :1], clean[:, :, :1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_the_given_frames_velocity_predicts_the_clean_frame_and_trains_nothing(ti2v_pipe):
    from engine.core.flow import add_noise, x0_from_velocity
    from engine.generation.sampling import velocity
    from engine.models.frame_replacement import FrameCondition

    torch.manual_seed(0)
    x0 = torch.randn(2, 8, 2, 2, 2)
    condition = FrameCondition.first_frame(x0[:, :, :1], 2)
    x = add_noise(x0, torch.randn_like(x0), 0.7)
    v = velocity(ti2v_pipe.transformer, x, 0.7, torch.randn(2, 32, 32), condition)
    torch.testing.assert_close(x0_from_velocity(x, 0.7, v)[:, :, :1], x0[:, :, :1])
    params = [p for p in ti2v_pipe.transformer.parameters() if p.requires_grad]
    given = torch.autograd.grad(v[:, :, :1].square().sum(), params, retain_graph=True, allow_unused=True)
    generated = torch.autograd.grad(v[:, :, 1:].square().sum(), params, allow_unused=True)
    assert all(g is None or g.abs().max() == 0 for g in given)  # no loss on the given frame trains the network
    assert any(g is not None and g.abs().max() > 0 for g in generated)


def test_a_ti2v_folder_loads_as_one_base_for_text_and_image_to_video(ti2v_dir, ti2v_model):
    from diffusers import WanImageToVideoPipeline

    from engine.models.names import base_tasks

    assert isinstance(ti2v_model.pipe, WanImageToVideoPipeline) and ti2v_model.frame_replacement
    assert ti2v_model.tasks == base_tasks(str(ti2v_dir)) == ("t2v", "i2v")
    assert ti2v_model.vae.config.scale_factor_spatial == 16 and ti2v_model.vae.config.is_residual
    assert ti2v_model.latent_shape(1, **SHAPE) == (1, 8, 2, 2, 2)


def test_a_hub_ti2v_repo_named_as_a_wan_pipeline_knows_both_tasks(ti2v_dir, tmp_path, monkeypatch):
    import json
    import shutil

    from engine.models.names import base_tasks

    # The Diffusers release names WanPipeline with expand_timesteps in model_index.json: the Hub cache is
    # the only thing mocked (no network here), at huggingface_hub's boundary.
    index = json.loads((ti2v_dir / "model_index.json").read_text())
    cached = tmp_path / "model_index.json"
    cached.write_text(json.dumps({**index, "_class_name": "WanPipeline"}))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: str(cached))
    assert base_tasks("Wan-AI/Wan2.2-TI2V-5B-Diffusers") == ("t2v", "i2v")
    plain = tmp_path / "wan21"
    shutil.copytree(ti2v_dir, plain)
    (plain / "model_index.json").write_text(json.dumps({**index, "expand_timesteps": False}))
    assert base_tasks(str(plain)) == ("t2v",)


@pytest.mark.parametrize("sampler", ["teacher", "student"])
def test_sampling_makes_videos_from_text_alone_and_from_a_first_frame(ti2v_model, tmp_path, sampler):
    from engine.config.sample import SampleConfig
    from engine.generation.generate import sample_frames

    extra = dict(steps=3) if sampler == "teacher" else dict(t_list=[0.999, 0.5, 0.0])
    path = tmp_path / "frame.png"
    _image(5).save(path)
    videos = {}
    for name, image in (("t2v", None), ("i2v", str(path))):
        cfg = SampleConfig(base="tiny", prompt="a red circle", seeds=[3, 4], image=image, **SHAPE, **extra)
        frames, nfe = sample_frames(ti2v_model, cfg.validate())
        assert frames.shape == (2, 5, 32, 32, 3) and nfe == (6 if sampler == "teacher" else 2)
        videos[name] = frames
    assert not np.array_equal(videos["t2v"], videos["i2v"])  # the frame reached the model
    # Both seeds start from the same given frame: their first latent frames are the same clean one.
    assert np.array_equal(videos["i2v"][0, 0], videos["i2v"][1, 0])
    assert not np.array_equal(videos["t2v"][0, 0], videos["t2v"][1, 0])


def _cfg(base, data, **kw):
    from engine.config.distill import DistillConfig

    values = dict(
        base=str(base),
        data=str(data),
        task="i2v",
        steps=2,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        checkpoint_every=2,
        seed=3,
        **SHAPE,
    )
    return DistillConfig(**{**values, **kw})


def test_dmd2_then_dfd_train_a_ti2v_student_from_each_clips_first_frame(ti2v_dir, tmp_path):
    import json
    import math

    from engine.distill.trainer import Distiller
    from engine.models.frame_replacement import FrameCondition

    clips = save_captioned_clips(tmp_path / "clips")
    distiller = Distiller(_cfg(ti2v_dir, clips), tmp_path / "dmd2")
    real = distiller._real_batch()  # the given frame is the real clip's own first latent frame: DFD's pairing
    assert isinstance(real.condition, FrameCondition)
    assert torch.equal(real.condition.clean[:, :, :1], real.latents[:, :, :1])
    dmd2 = distiller.train()
    dfd_cfg = _cfg(ti2v_dir, clips, method="dfd", init=str(dmd2), data_forcing_prob=1.0)
    dfd = Distiller(dfd_cfg, tmp_path / "dfd").train()
    for out in (dmd2, dfd):
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [1, 2]
        assert all(math.isfinite(v) for r in rows for v in r.values() if isinstance(v, float))
        assert (out / "pytorch_lora_weights.safetensors").is_file()
        assert json.loads((out / "lora_config.json").read_text())["task"] == "i2v"


def test_a_size_past_the_bases_rotary_positions_is_refused_in_one_line_before_any_work(ti2v_dir, ti2v_model):
    from engine.models.names import ModelError, check_video_shape, rope_positions, video_factors

    with pytest.raises(ModelError, match="positive multiples of 32; got height 48"):
        ti2v_model.check_video_shape(5, 48, 32)
    # 1056 px / 32 = 33 positions, one past the tiny transformer's 32 (diffusers would fail on a reshape)
    with pytest.raises(ModelError, match=r"width 1056 is too large .* 33 positions .* has 32 .* at most 1024$"):
        ti2v_model.check_video_shape(5, 32, 1056)
    with pytest.raises(ModelError, match=r"num_frames 133 is too large .* at most 125$"):
        check_video_shape(*video_factors(ti2v_dir), 133, 32, 32, rope_positions(ti2v_dir))
    ti2v_model.check_video_shape(125, 32, 1024)  # the largest it takes


CARD_CHECK = """
# The card's pipeline call, on its latents, against the engine's student sampler from the same seed.
import json
from engine.generation.sampling import student_sample
from engine.models.frame_replacement import FrameCondition
assert video.shape == (5, 32, 32, 3), video.shape
kwargs = dict(num_inference_steps=len(T_LIST) - 1, guidance_scale=1.0, num_frames=5, height=32, width=32)
torch.manual_seed(1)
latents = pipe(image=image, prompt=PROMPT, output_type="latent", **kwargs).frames
embeds = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False, max_sequence_length=512)[0]  # the pipeline's
pixels = pipe.video_processor.preprocess(image, height=32, width=32)
clean = pipe.prepare_latents(pixels, 1, 8, 32, 32, 5, torch.float32, torch.device("cpu"))[1]
torch.manual_seed(1)
noise = torch.randn(latents.shape)
ours = student_sample(pipe.transformer, noise, embeds, tuple(T_LIST), condition=FrameCondition.first_frame(clean, 2))
print(json.dumps({"max_diff": float((ours - latents).abs().max()), "scale": float(ours.abs().max())}))
"""


def test_the_cards_diffusers_snippet_samples_a_ti2v_student_like_the_engine(ti2v_dir, tmp_path):
    import json
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from engine.distill.trainer import Distiller
    from engine.hub.card import CardInfo, model_card

    base = tmp_path / "base"
    shutil.copytree(ti2v_dir, base)
    (base / "dfd_studio.json").write_text(json.dumps({**SHAPE, "fps": 24}))  # the tiny base's own size
    student = Distiller(_cfg(base, save_captioned_clips(tmp_path / "clips")), tmp_path / "dmd2").train()
    t_list = [0.999, 0.75, 0.5, 0.0]
    info = CardInfo(repo_id="someone/ti2v", base=str(base), method="dmd2", steps=2, t_list=t_list, task="i2v")
    card = model_card(info)
    assert "WanImageToVideoPipeline" in card and "expand_timesteps" in card
    [code] = re.findall(r"```python\n(.*?)```", card, re.S)
    assert "num_frames=5, height=32, width=32" in code
    code = code.replace('"someone/ti2v"', repr(str(student))).replace('"<the base\'s local folder>"', repr(str(base)))
    code = code.replace('.to("cuda")', "").replace("torch_dtype=torch.bfloat16", "torch_dtype=torch.float32")
    _image(7).save(tmp_path / "first_frame.png")
    prompt = re.search(r'prompt=("[^"]+")', code).group(1)
    script = code + f"\nPROMPT = {prompt}\n" + CARD_CHECK
    root = Path(__file__).resolve().parents[1]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["max_diff"] < 1e-4 * max(1.0, result["scale"]), result


def test_the_card_of_a_hub_5b_student_names_its_base_and_recipe(monkeypatch, tmp_path):
    import json

    import huggingface_hub

    from engine.hub.card import CardInfo, model_card

    index = tmp_path / "model_index.json"  # the Diffusers release's model_index.json, as the Hub cache holds it
    index.write_text(json.dumps({"_class_name": "WanPipeline", "expand_timesteps": True}))
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda repo, name: str(index))
    hub = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
    for task, pipeline in (("t2v", "WanPipeline"), ("i2v", "WanImageToVideoPipeline")):
        info = CardInfo(repo_id="someone/x", base=hub, method="dfd", steps=2, t_list=[0.999, 0.0], task=task)
        card = model_card(info)
        assert f'base_model: "{hub}"' in card
        assert f'pipe = {pipeline}.from_pretrained("{hub}"' in card
        assert "num_frames=121, height=704, width=1280" in card and "24 fps" in card


def test_a_tiny_wan_asked_for_480x832_is_refused_by_the_command_in_one_line(tmp_path):
    from conftest import run_engine
    from tiny_wan import save_tiny_wan

    # Wan2.1's 8 x 2 pixels per token make 52 positions across 832, past the tiny transformer's 32: diffusers
    # would fail inside its rotary embedding ("shape '[1, 1, 52, -1]' is invalid") after loading everything.
    base = save_tiny_wan(tmp_path / "wan21")
    args = ["--prompt", "a cat", "--num-frames", "5", "--out", str(tmp_path / "out")]
    done = run_engine("sample", "--base", str(base), "--height", "480", "--width", "832", *args)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: width 832 is too large for this base: it makes 52 positions on that axis, its transformer's "
        "rotary embedding has 32 (rope_max_seq_len); give at most 512"
    )
    assert not (tmp_path / "out").exists()


def test_the_plan_of_a_ti2v_i2v_run_adds_no_channels(ti2v_dir):
    from engine.plan.spec import PlanSpec

    for base in ("wan2.2-5b", str(ti2v_dir)):
        transformer = PlanSpec(base=base, task="i2v", frames=5, height=64, width=64).check().configs()[0]
        assert transformer["in_channels"] == transformer["out_channels"]  # the frame replaces, it is not added
    wan21 = PlanSpec(base="wan2.1-1.3b", task="i2v").check().configs()[0]
    assert wan21["in_channels"] == 36  # Wan2.1's concatenation: widened as pretrain-teacher does


def test_a_student_of_another_base_is_refused_by_its_layers_before_the_size(ti2v_dir, tmp_path):
    import json

    from engine.distill.adapters import Adapters, save_student_lora
    from engine.distill.trainer import Distiller
    from engine.models.base import load_base_model
    from engine.models.names import ModelError

    other = load_base_model(str(ti2v_dir), device="cpu")
    save_student_lora(Adapters(other.transformer, rank=8), tmp_path / "rank8", {"base": "another-base"})
    assert json.loads((tmp_path / "rank8" / "lora_config.json").read_text())["base"] == "another-base"
    # 1056 px is past the tiny transformer's rotary positions too, but the student's sizes say more
    cfg = _cfg(ti2v_dir, tmp_path / "no-data", method="dfd", init=str(tmp_path / "rank8"), width=1056)
    with pytest.raises(ModelError, match=r"does not fit the base model .* it was trained on another-base, use that"):
        Distiller(cfg, tmp_path / "out", model=load_base_model(str(ti2v_dir), device="cpu"))


def test_a_clips_first_latent_frame_is_its_first_frames_condition(ti2v_model):
    """DFD pairs each real clip with its own first frame by taking its first latent frame as the given one
    (conditioning.condition_of_clips): the residual Wan2.2 VAE, like Wan2.1's, codes frame 0 alone."""
    frames = np.stack([np.asarray(_image(seed)) for seed in (4, 5)])
    rest = np.stack([np.asarray(_image(9))] * 4)
    clips = np.stack([np.concatenate([frame[None], rest]) for frame in frames])
    given = ti2v_model.condition_latents(frames, 5)
    torch.testing.assert_close(ti2v_model.encode_video(clips)[:, :, :1], given.clean[:, :, :1], atol=1e-5, rtol=1e-5)
