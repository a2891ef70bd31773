"""A Cosmos-Predict2.5 student, on a tiny random Cosmos2_5_PredictBasePipeline: a DMD2 and a DFD run of the
real trainer from each clip's first frame, the LoRA read back by the pipeline's CosmosLoraLoaderMixin, the
card (its snippet run on the pipeline, its licence) and the sample command on the student's t_list."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_engine
from tiny_cosmos import SIZE, StubGuardrail, save_tiny_cosmos
from tiny_cosmos import random_frame as _frame


@pytest.fixture(scope="module")
def cosmos_dir(tmp_path_factory):
    return save_tiny_cosmos(tmp_path_factory.mktemp("tiny_cosmos"))


@pytest.fixture(scope="module")
def cosmos_model(cosmos_dir):
    from engine.models.base import load_base_model

    return load_base_model(str(cosmos_dir), device="cpu")


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    from engine.media.video import write_mp4

    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(0)
    for i, caption in enumerate(["a red circle moving left", "a cat", "a dog moving left"]):
        write_mp4(folder / f"clip{i}.mp4", rng.integers(0, 255, (12, 40, 48, 3), dtype=np.uint8), fps=8)
        (folder / f"clip{i}.txt").write_text(caption)
    return folder


def _cfg(base, data, **kw):
    from engine.config.distill import DistillConfig

    values = dict(
        base=str(base),
        data=str(data),
        task="i2v",
        num_frames=5,
        height=16,
        width=16,
        steps=2,
        batch_size=2,
        student_update_freq=1,
        lora_rank=4,
        checkpoint_every=2,
        seed=3,
    )
    return DistillConfig(**{**values, **kw})


@pytest.fixture(scope="module")
def trained(cosmos_dir, clip_folder, tmp_path_factory):
    from engine.distill.trainer import Distiller
    from engine.models.frame_replacement import FrameCondition

    out = tmp_path_factory.mktemp("runs")
    distiller = Distiller(_cfg(cosmos_dir, clip_folder), out / "dmd2")
    real = distiller._real_batch()  # the condition is the clip's own first latent frame (DFD's pairing)
    assert isinstance(real.condition, FrameCondition) and real.condition.mask_channel  # Cosmos' indicator channel
    assert torch.equal(real.condition.clean[:, :, :1], real.latents[:, :, :1])
    dmd2 = distiller.train()
    dfd = Distiller(
        _cfg(cosmos_dir, clip_folder, method="dfd", init=str(dmd2), data_forcing_prob=1.0), out / "dfd"
    ).train()
    return dmd2, dfd


def test_dmd2_and_dfd_train_a_cosmos_student_from_each_clips_first_frame(trained):
    dmd2, dfd = trained
    for out in (dmd2, dfd):
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [1, 2]
        assert all(math.isfinite(v) for r in rows for v in r.values())
        assert json.loads((out / "lora_config.json").read_text())["task"] == "i2v"
    assert {json.loads(line).get("data_forcing") for line in (dfd / "metrics.jsonl").read_text().splitlines()} == {1.0}


def test_the_student_lora_loads_in_the_cosmos_pipeline_and_computes_what_the_engine_does(
    cosmos_dir, cosmos_model, trained
):
    """CosmosLoraLoaderMixin.load_lora_weights reads the student's file; the pipeline's transformer then
    gives, on the pipeline's own call, what the engine's student does, and not the base's output."""
    from diffusers import Cosmos2_5_PredictBasePipeline, CosmosTransformer3DModel

    from engine.generation.generate import student_adapter, teacher_only
    from engine.models.cosmos import CosmosFlowTransformer

    dfd = trained[1]
    pipe = Cosmos2_5_PredictBasePipeline.from_pretrained(cosmos_dir, safety_checker=StubGuardrail())
    pipe.load_lora_weights(str(dfd), weight_name="pytorch_lora_weights.safetensors")
    torch.manual_seed(5)
    x = torch.randn(1, 4, 2, 2, 2)
    mask = torch.zeros(1, 1, 2, 2, 2)
    call = dict(
        hidden_states=x,
        timestep=torch.full((1, 1, 2, 1, 1), 0.7),
        encoder_hidden_states=pipe.encode_prompt("a cat", do_classifier_free_guidance=False, max_sequence_length=16)[0],
        condition_mask=mask,
        padding_mask=torch.zeros(1, 1, 2, 2),
        return_dict=False,
    )
    with torch.no_grad():
        from_pipeline = pipe.transformer(**call)[0]
        with student_adapter(cosmos_model, dfd, fused=False):
            from_engine = cosmos_model.transformer(**call)[0]
        with teacher_only(cosmos_model):
            base = CosmosTransformer3DModel.forward(cosmos_model.transformer, **call)[0]
    assert isinstance(cosmos_model.transformer, CosmosFlowTransformer)
    torch.testing.assert_close(from_pipeline, from_engine, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(from_pipeline, base, atol=1e-4)


def _to_tensor(image) -> torch.Tensor:
    """torchvision.transforms.functional.to_tensor for an RGB PIL image: (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


def test_the_cards_snippet_runs_the_student_in_the_cosmos_pipeline_like_the_engine(
    cosmos_dir, cosmos_model, trained, tmp_path, monkeypatch
):
    """The card names Cosmos2_5_PredictBasePipeline and the guardrail; its snippet runs on the tiny
    pipeline (the guardrail and torchvision's to_tensor stubbed at the pipeline's boundary, neither can
    be installed here) and gives, on the generated frames, the engine's Euler steps on the student."""
    import re
    import types

    from diffusers.pipelines.cosmos import pipeline_cosmos2_5_predict

    from engine.generation.generate import student_adapter
    from engine.generation.sampling import velocity
    from engine.hub.card import CardInfo, model_card
    from engine.models.students import student_t_list

    dfd = trained[1]
    t_list = student_t_list(dfd)
    card = model_card(
        CardInfo(repo_id="me/cosmos-dfd", base=str(cosmos_dir), method="dfd", steps=2, t_list=t_list, task="i2v")
    )
    assert (
        "Cosmos2_5_PredictBasePipeline" in card and "cosmos_guardrail" in card and "NVIDIA Open Model License" in card
    )
    assert "WanImageToVideoPipeline" not in card
    frame_file = tmp_path / "frame.png"
    frame = _frame(9)
    Image.fromarray(frame).save(frame_file)
    [code] = re.findall(r"```python\n(.*?)```", card, re.S)
    code = (
        code.replace('"me/cosmos-dfd"', repr(str(dfd)))
        .replace('"<the base\'s local folder>"', repr(str(cosmos_dir)))
        .replace('"first_frame.png"', repr(str(frame_file)))
        .replace("torch.bfloat16", "torch.float32")
        .replace('.to("cuda")', "")
    )  # this test runs on a CPU
    monkeypatch.setattr(pipeline_cosmos2_5_predict, "CosmosSafetyChecker", StubGuardrail, raising=False)
    fake_tv = types.SimpleNamespace(
        transforms=types.SimpleNamespace(functional=types.SimpleNamespace(to_tensor=_to_tensor))
    )
    monkeypatch.setattr(pipeline_cosmos2_5_predict, "torchvision", fake_tv, raising=False)
    scope: dict = {}
    exec(compile(code, "card snippet", "exec"), scope)
    assert len(scope["video"]) == SIZE["num_frames"] and scope["video"][0].size == (SIZE["width"], SIZE["height"])

    prompt = re.search(r'prompt="([^"]+)"', code).group(1)
    latents = scope["pipe"](
        image=Image.open(frame_file),
        prompt=prompt,
        num_inference_steps=len(t_list) - 1,
        guidance_scale=1.0,
        num_frames=5,
        height=16,
        width=16,
        max_sequence_length=SIZE["text_len"],
        generator=torch.Generator().manual_seed(1),
        output_type="latent",
    ).frames
    x = torch.randn(latents.shape, generator=torch.Generator().manual_seed(1))
    condition = cosmos_model.condition_latents(frame[None])
    emb = cosmos_model.encode_prompts([prompt])
    with torch.no_grad(), student_adapter(cosmos_model, dfd, fused=False):
        for t, t_next in zip(t_list[:-1], t_list[1:]):
            x = x + (t_next - t) * velocity(cosmos_model.transformer, x, t, emb, condition)
    torch.testing.assert_close(latents[:, :, 1:], x[:, :, 1:], atol=1e-4, rtol=1e-3)


def test_sample_command_runs_the_cosmos_student_on_its_t_list_from_an_image(cosmos_dir, trained, tmp_path):
    image = tmp_path / "frame.png"
    Image.fromarray(_frame(6)).save(image)
    result = run_engine(
        "sample",
        "--base",
        str(cosmos_dir),
        "--lora",
        str(trained[1]),
        "--image",
        str(image),
        "--prompt",
        "a red circle",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out").glob("seed*.mp4"))) == 1


def test_the_card_of_a_cosmos_student_carries_nvidias_open_model_license(cosmos_dir):
    from card_helpers import card_front
    from engine.hub.card import CardInfo, model_card

    nvidia = {
        "license": "other",
        "license_name": "nvidia-open-model-license",
        "license_link": "https://www.nvidia.com/en-us/agreements/enterprise-software/nvidia-open-model-license/",
    }
    t_list = [1.0, 0.75, 0.5, 0.25, 0.0]
    for base in (str(cosmos_dir), "nvidia/Cosmos-Predict2.5-2B"):
        info = CardInfo(repo_id="me/c", base=base, method="dmd2", steps=2, t_list=t_list, task="i2v", license="mit")
        card = model_card(info)
        front = card_front(card)
        assert {k: front.get(k) for k in nvidia} == nvidia, base
        assert "shared under the base's license, the [NVIDIA Open Model License](" in card and "\nmit." not in card
    wan = card_front(model_card(CardInfo(repo_id="me/w", base="shapes-tiny", method="dmd2", steps=2, t_list=t_list)))
    assert wan["license"] == "apache-2.0" and "license_name" not in wan  # any other base: the licence picked
