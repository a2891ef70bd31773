"""Image-to-video: the conditioning channels against diffusers' WanImageToVideoPipeline, the widened
teacher, sampling from a first frame (library and CLI), and the trainer's I2V step."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_engine
from tiny_wan import save_tiny_wan_i2v

SHAPE = dict(num_frames=5, height=16, width=16)  # the tiny Wan's smallest video: 4k+1 frames, 16-px multiples


@pytest.fixture(scope="module")
def i2v_dir(tmp_path_factory):
    return save_tiny_wan_i2v(tmp_path_factory.mktemp("tiny_wan_i2v"))


@pytest.fixture(scope="module")
def i2v_model(i2v_dir):
    from engine.models.base import load_base_model

    model = load_base_model(str(i2v_dir), device="cpu")
    model.set_video_shape(**SHAPE)
    return model


def _frame(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)


def test_an_i2v_folder_loads_as_the_diffusers_i2v_pipeline_and_knows_its_task(i2v_model):
    from diffusers import WanImageToVideoPipeline

    from engine.models.base import load_base_model

    assert isinstance(i2v_model.pipe, WanImageToVideoPipeline) and i2v_model.task == "i2v"
    assert i2v_model.pipe.image_encoder is None  # Wan2.1's concatenation without CLIP image tokens
    assert i2v_model.latent_shape(2, **SHAPE) == (2, 4, 2, 2, 2)  # the latents, not the transformer's 12 inputs
    assert load_base_model("shapes-tiny", device="cpu").task == "t2v"


def test_a_hub_repo_loads_with_the_pipeline_class_its_model_index_names(i2v_dir, tmp_path, monkeypatch):
    import huggingface_hub
    from diffusers import WanImageToVideoPipeline, WanPipeline

    from engine.models.base import pipeline_class

    t2v_index = tmp_path / "model_index.json"
    t2v_index.write_text('{"_class_name": "WanPipeline"}')
    indexes = {"org/wan-i2v": i2v_dir / "model_index.json", "org/wan-t2v": t2v_index}

    def download(repo_id, filename, **_):  # the Hub's network, at its boundary
        if repo_id not in indexes:
            raise huggingface_hub.errors.LocalEntryNotFoundError(f"{repo_id}: not in the cache and offline")
        return str(indexes[repo_id])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert pipeline_class(None, "org/wan-i2v") is WanImageToVideoPipeline
    assert pipeline_class(None, "org/wan-t2v") is WanPipeline
    assert pipeline_class(None, "org/missing") is WanPipeline  # from_pretrained then reports the hub's error


def test_the_torch_free_task_of_a_folder_is_the_loaded_models(i2v_dir, i2v_model, tmp_path):
    import engine
    from engine.models.base import load_base_model
    from tiny_wan import save_tiny_wan

    t2v_dir = save_tiny_wan(tmp_path / "t2v")
    assert engine.base_task(str(i2v_dir)) == i2v_model.task == "i2v"
    assert engine.base_task(str(t2v_dir)) == load_base_model(str(t2v_dir), device="cpu").task == "t2v"
    assert engine.base_task("shapes-tiny") == "t2v" and engine.base_task("no/such/model") is None


def test_condition_channels_are_what_the_pipelines_prepare_latents_builds(i2v_model):
    frames = np.stack([_frame(1), _frame(2)])
    ours = i2v_model.condition_latents(frames)
    pipe = i2v_model.pipe
    # The pipeline takes one image per call (its conditioning video repeated over the batch).
    theirs = torch.cat(
        [
            pipe.prepare_latents(
                pipe.video_processor.preprocess(Image.fromarray(f), height=16, width=16),
                1,
                4,
                16,
                16,
                5,
                torch.float32,
                torch.device("cpu"),
            )[1]
            for f in frames
        ]
    )
    assert ours.shape == theirs.shape == (2, 8, 2, 2, 2)
    assert torch.equal(ours[:, :4], theirs[:, :4])  # the mask: the first latent frame given, the next not
    assert ours[:, :4, 0].eq(1).all() and ours[:, :4, 1:].eq(0).all()
    torch.testing.assert_close(ours[:, 4:], theirs[:, 4:], atol=1e-5, rtol=1e-5)


def test_condition_of_a_real_clip_starts_from_its_own_first_latent_frame(i2v_model):
    from engine.models.conditioning import condition_of_clips

    clips = np.random.default_rng(3).integers(0, 256, size=(2, 5, 16, 16, 3), dtype=np.uint8)
    latents = i2v_model.encode_video(clips)
    condition = condition_of_clips(i2v_model, latents)
    assert condition.shape == (2, 8, 2, 2, 2)
    assert torch.equal(condition[:, 4:, :1], latents[:, :, :1])
    direct = i2v_model.condition_latents(i2v_model.decode(latents[:, :, :1])[:, 0])
    torch.testing.assert_close(condition[:, :4], direct[:, :4])


def test_a_widened_t2v_teacher_computes_exactly_what_it_did_whatever_the_frame():
    from engine.generation.sampling import velocity
    from engine.models.base import BaseModel, load_base_model
    from engine.models.conditioning import image_to_video_pipeline

    t2v = load_base_model("shapes-tiny", device="cpu")
    i2v = BaseModel(pipe=image_to_video_pipeline(t2v.pipe), source="widened", meta=t2v.meta)
    assert i2v.task == "i2v" and i2v.transformer.config.in_channels == 36
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(t2v.latent_shape(2, t2v.num_frames, t2v.height, t2v.width), generator=gen)
    cond = t2v.encode_prompts(["a red circle", "a blue square"])
    condition = i2v.condition_latents(np.stack([_frame(4, 64), _frame(5, 64)]))
    with torch.no_grad():
        expected = velocity(t2v.transformer, x, 0.7, cond)
        got = velocity(i2v.transformer, x, 0.7, cond, condition)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


@pytest.mark.parametrize("sampler", ["teacher", "student"])
def test_sampling_from_a_first_frame_passes_the_frame_to_every_forward(i2v_model, tmp_path, sampler):
    from engine.config.sample import SampleConfig
    from engine.generation.generate import sample_frames

    extra = dict(steps=3) if sampler == "teacher" else dict(t_list=[0.999, 0.5, 0.0])
    videos = []
    for seed in (1, 2):
        path = tmp_path / f"frame{seed}.png"
        Image.fromarray(_frame(seed)).save(path)
        cfg = SampleConfig(base="tiny", prompt="a red circle", seeds=[3, 4], image=str(path), **SHAPE, **extra)
        frames, nfe = sample_frames(i2v_model, cfg.validate())
        assert frames.shape == (2, 5, 16, 16, 3) and nfe == (6 if sampler == "teacher" else 2)
        print(
            f"{sampler}: PSNR of the first decoded frame against the given one (random weights): "
            f"{_psnr(frames[:, 0], _frame(seed)[None]):.1f} dB"
        )
        videos.append(frames)
    assert not np.array_equal(videos[0], videos[1])  # same seeds, another frame: the frame reached the model


def test_a_frame_and_a_task_that_do_not_go_together_are_refused(i2v_model, mini_teacher_dir, tmp_path):
    from engine.config.sample import SampleConfig
    from engine.generation.generate import sample_frames
    from engine.models.base import load_base_model

    image = tmp_path / "frame.png"
    Image.fromarray(_frame(7, 64)).save(image)
    with pytest.raises(ValueError, match="is a text-to-video model: an image needs an image-to-video base"):
        sample_frames(
            load_base_model(str(mini_teacher_dir), device="cpu"),
            SampleConfig(prompt="a red circle", steps=1, image=str(image)).validate(),
        )

    with pytest.raises(ValueError, match="image-to-video model: give the first frame"):
        sample_frames(i2v_model, SampleConfig(prompt="a red circle", steps=1, **SHAPE).validate())
    with pytest.raises(ValueError, match="no image at"):
        SampleConfig(prompt="a red circle", image=str(tmp_path / "missing.png")).validate()
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    with pytest.raises(ValueError, match="not an image PIL can read"):
        sample_frames(i2v_model, SampleConfig(prompt="a red circle", steps=1, image=str(not_an_image), **SHAPE))


def test_sample_command_takes_an_image_or_a_videos_first_frame(i2v_dir, tmp_path):
    from engine.media.video import write_mp4
    from engine.models.conditioning import read_first_frame

    image = tmp_path / "frame.png"
    Image.fromarray(_frame(7, 32)).save(image)  # another size than the model's: resized
    result = run_engine(
        "sample",
        "--base",
        str(i2v_dir),
        "--image",
        str(image),
        "--prompt",
        "a red circle",
        "--seeds",
        "1-2",
        "--steps",
        "2",
        "--num-frames",
        "5",
        "--height",
        "16",
        "--width",
        "16",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").glob("seed*.mp4"))) == 2
    assert re.search(r"first frame against the given one: PSNR [\d.]+ dB mean, [\d.]+ dB lowest", result.stderr)
    # a video gives its first frame (the command reads --image with this same function)
    video = write_mp4(tmp_path / "clip.mp4", np.stack([_frame(7)] + [_frame(8)] * 4))
    first = read_first_frame(video, 16, 16)
    assert first.shape == (16, 16, 3) and _psnr(first, _frame(7)) > _psnr(first, _frame(8)) + 3


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    from engine.media.video import write_mp4

    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for i, caption in enumerate(["a red circle moving left", "a cat", "a dog moving left"]):
        write_mp4(folder / f"clip{i}.mp4", rng.integers(0, 255, (12, 40, 48, 3), dtype=np.uint8), fps=8)
        (folder / f"clip{i}.txt").write_text(caption)
    return folder


def _i2v_cfg(base, data, **kw):
    from engine.config.distill import DistillConfig

    values = dict(
        base=str(base),
        data=str(data),
        task="i2v",
        num_frames=5,
        height=16,
        width=16,
        steps=4,
        batch_size=2,
        student_update_freq=2,
        lora_rank=4,
        checkpoint_every=2,
        seed=3,
    )
    return DistillConfig(**{**values, **kw})


def test_dmd2_then_dfd_train_an_i2v_student_from_each_clips_first_frame(i2v_dir, clip_folder, tmp_path):
    import json
    import math

    from engine.distill.trainer import Distiller

    distiller = Distiller(_i2v_cfg(i2v_dir, clip_folder), tmp_path / "dmd2")
    real = distiller._real_batch()  # the condition is the real clip's own first frame: DFD's pairing
    assert torch.equal(real.condition[:, 4:, :1], real.latents[:, :, :1]) and real.condition[:, :4, 0].eq(1).all()
    dmd2 = distiller.train()
    dfd = Distiller(
        _i2v_cfg(i2v_dir, clip_folder, method="dfd", init=str(dmd2), data_forcing_prob=1.0), tmp_path / "dfd"
    ).train()
    for out in (dmd2, dfd):
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [1, 2, 3, 4]
        assert all(math.isfinite(v) for r in rows for v in r.values())
        assert (out / "pytorch_lora_weights.safetensors").is_file()
        assert json.loads((out / "lora_config.json").read_text())["task"] == "i2v"  # a lone copy of the LoRA says it
        assert len(list((out / "samples").glob("*.mp4"))) == 8  # previews from one real clip's first frame
    assert {
        r["data_forcing"]
        for r in map(json.loads, (dfd / "metrics.jsonl").read_text().splitlines())
        if "data_forcing" in r
    } == {1.0}


def test_a_run_whose_task_is_not_its_bases_is_refused(i2v_dir, clip_folder, tmp_path):
    from engine.distill.trainer import Distiller

    with pytest.raises(ValueError, match="task t2v needs a text-to-video base"):
        Distiller(_i2v_cfg(i2v_dir, clip_folder, task="t2v"), tmp_path / "t2v")


def test_pretrain_teacher_widens_shapes_tiny_into_an_i2v_teacher_that_samples_from_a_frame(tmp_path):
    from diffusers import WanImageToVideoPipeline

    from engine.config.fields import ConfigError
    from engine.config.sample import SampleConfig
    from engine.config.teacher import TeacherConfig
    from engine.generation.generate import sample_frames
    from engine.models.base import load_base_model
    from engine.pretrain.teacher import pretrain_teacher

    cfg = TeacherConfig(
        task="i2v", init="shapes-tiny", steps=2, batch_size=2, pool_clips=4, warmup_steps=1, balanced_detailed=0.5
    )
    meta = pretrain_teacher(cfg.validate(), tmp_path / "i2v", "pretrain-teacher --task i2v")
    assert meta["task"] == "i2v" and meta["lineage"] and meta["trained_steps"] == 2
    teacher = load_base_model(str(tmp_path / "i2v"), device="cpu")
    assert isinstance(teacher.pipe, WanImageToVideoPipeline) and teacher.transformer.config.in_channels == 36
    frame = tmp_path / "frame.png"
    Image.fromarray(_frame(1, 64)).save(frame)
    frames, _ = sample_frames(teacher, SampleConfig(prompt="a red circle", steps=2, image=str(frame)).validate())
    assert frames.shape == (1, 17, 64, 64, 3)
    with pytest.raises(ConfigError, match="image-to-video teacher: give task i2v"):
        pretrain_teacher(
            TeacherConfig(init=str(tmp_path / "i2v"), steps=1, batch_size=2, pool_clips=4),
            tmp_path / "t2v",
            "pretrain-teacher",
        )
