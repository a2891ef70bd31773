"""Wan2.2-A14B's two experts through the engine's one path, on tiny random two-expert pipelines of the real
diffusers classes: the expert each timestep goes to (diffusers' own choice), the teacher's samples (diffusers'
own denoising loop), one DMD2 and one DFD run of the real trainer, and the student's two LoRA files loaded by
diffusers' pipeline into both experts."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tiny_wan import A14B_BOUNDARY, each_experts_student_moved, save_captioned_clips, save_tiny_wan22_a14b

SHAPE = {"num_frames": 5, "height": 16, "width": 16}  # 2 latent frames of 2 x 2 tokens


@pytest.fixture(scope="module")
def a14b_t2v(tmp_path_factory):
    folder = save_tiny_wan22_a14b(tmp_path_factory.mktemp("a14b_t2v"), "t2v")
    # The release's recipe as a folder states it: the low-noise expert's own CFG.
    (folder / "dfd_studio.json").write_text(json.dumps({**SHAPE, "fps": 16, "guidance_2": 2.0}))
    return folder


@pytest.fixture(scope="module")
def a14b_i2v(tmp_path_factory):
    folder = save_tiny_wan22_a14b(tmp_path_factory.mktemp("a14b_i2v"), "i2v")
    (folder / "dfd_studio.json").write_text(json.dumps({**SHAPE, "fps": 16}))
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return save_captioned_clips(tmp_path_factory.mktemp("clips"))


def _calls(pipe):
    """(timestep, expert name) of every forward the pipeline makes, recorded at the experts themselves (the
    pipeline passes keywords; the engine's own calls, positional, are left out)."""
    seen = []
    for name in ("transformer", "transformer_2"):

        def record(module, args, kwargs, name=name):
            if "timestep" in kwargs:
                seen.append((kwargs["timestep"].clone(), name))

        getattr(pipe, name).register_forward_pre_hook(record, with_kwargs=True)
    return seen


def test_files_tell_two_experts_and_their_task(a14b_t2v, a14b_i2v, tmp_path):
    from engine.models.names import base_experts, base_task
    from tiny_wan import save_tiny_wan

    assert base_experts(str(a14b_t2v)) == A14B_BOUNDARY["t2v"] and base_task(str(a14b_t2v)) == "t2v"
    assert base_experts(str(a14b_i2v)) == A14B_BOUNDARY["i2v"] and base_task(str(a14b_i2v)) == "i2v"
    assert base_experts(str(save_tiny_wan(tmp_path / "one"))) is None


def test_each_timestep_goes_to_the_expert_diffusers_picks(a14b_t2v):
    from engine.models.base import load_base_model

    model = load_base_model(str(a14b_t2v), device="cpu")
    pipe, experts = model.pipe, model.transformer
    seen = _calls(pipe)
    cond = torch.randn(1, 8, 32)
    # 16 steps of the shifted schedule put timesteps on both sides of 875
    pipe(prompt_embeds=cond, negative_prompt_embeds=cond, num_inference_steps=16, output_type="latent", **SHAPE)
    assert {name for _, name in seen} == {"transformer", "transformer_2"}
    for timestep, name in seen:
        assert bool(experts.high_noise(timestep).all()) == (name == "transformer")
    # At the boundary itself diffusers runs the high-noise expert (t >= boundary), and so do we.
    at = torch.tensor([875.0, 874.9])
    assert experts.high_noise(at).tolist() == [True, False]


def test_a_batch_of_mixed_times_is_split_and_joined_in_order(a14b_t2v):
    from engine.generation.sampling import velocity
    from engine.models.base import load_base_model

    model = load_base_model(str(a14b_t2v), device="cpu")
    experts = model.transformer
    x, cond = torch.randn(3, 4, 2, 2, 2), torch.randn(3, 8, 32)
    t = torch.tensor([0.2, 0.95, 0.5])
    mixed = velocity(experts, x, t, cond)
    for i, expert in enumerate((model.pipe.transformer_2, model.pipe.transformer, model.pipe.transformer_2)):
        alone = velocity(expert, x[i : i + 1], t[i : i + 1], cond[i : i + 1])
        torch.testing.assert_close(mixed[i : i + 1], alone, atol=1e-5, rtol=1e-5)


def test_the_teacher_samples_as_diffusers_does_with_a_guidance_per_expert(a14b_t2v):
    from engine.generation.sampling import teacher_sample, teacher_sigmas
    from engine.models.base import load_base_model
    from engine.models.experts import teacher_guidance

    model = load_base_model(str(a14b_t2v), device="cpu")
    assert model.transformer.guidance_2 == 2.0  # from the folder's dfd_studio.json
    cond, uncond = torch.randn(1, 8, 32), torch.randn(1, 8, 32)
    noise = torch.randn(model.latent_shape(1, **SHAPE), generator=torch.Generator().manual_seed(0))
    theirs = model.pipe(
        prompt_embeds=cond,
        negative_prompt_embeds=uncond,
        latents=noise.clone(),
        guidance_scale=4.0,
        guidance_scale_2=2.0,
        num_inference_steps=12,
        output_type="latent",
        **SHAPE,
    ).frames
    sigmas = teacher_sigmas(model.pipe.scheduler, 12)
    guidance = lambda s: teacher_guidance(model.transformer, s, 4.0)  # noqa: E731
    ours = teacher_sample(model.transformer, noise, cond, uncond, sigmas, guidance)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    # The wrong recipe (one scale on both experts) is told apart: the comparison above can fail.
    one_scale = teacher_sample(model.transformer, noise, cond, uncond, sigmas, 4.0)
    assert (one_scale - theirs).abs().max() > 1e-3


def test_dmd2_then_dfd_train_one_lora_per_expert_through_the_trainer(a14b_i2v, clips, tmp_path):
    from diffusers import WanImageToVideoPipeline

    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller
    from engine.models.experts import LOW_NOISE_LORA_FILE
    from engine.models.students import LORA_FILE

    def cfg(**kw):
        # t_list: two student times on each side of I2V-A14B's boundary (0.9), so each expert's student trains
        values = dict(base=str(a14b_i2v), data=str(clips), task="i2v", steps=4, batch_size=3, student_update_freq=2)
        values.update(lora_rank=4, checkpoint_every=2, seed=3, t_list=[0.99, 0.95, 0.6, 0.3, 0.0], **SHAPE)
        return DistillConfig(**{**values, **kw})

    dmd2 = Distiller(cfg(), tmp_path / "dmd2").train()
    dfd = Distiller(cfg(method="dfd", init=str(dmd2), data_forcing_prob=1.0), tmp_path / "dfd").train()
    drawn = set()  # the student times the updates drew, over both runs
    for out in (dmd2, dfd):
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [1, 2, 3, 4]
        assert all(math.isfinite(v) for r in rows for v in r.values())
        assert (out / LORA_FILE).is_file() and (out / LOW_NOISE_LORA_FILE).is_file()
        drawn |= {float(k.removeprefix("real_gap@t")) for r in rows for k in r if k.startswith("real_gap@t")}
    assert {t >= A14B_BOUNDARY["i2v"] for t in drawn} == {True, False}  # both experts' times were drawn
    each_experts_student_moved(WanImageToVideoPipeline.from_pretrained(str(a14b_i2v)), dfd)


def test_both_experts_loras_load_into_diffusers_pipeline_and_run_as_ours(a14b_t2v, tmp_path):
    from diffusers import WanPipeline

    from engine.config.sample import SampleConfig
    from engine.distill.adapters import STUDENT, Adapters, save_student_lora
    from engine.generation.generate import sample_frames
    from engine.generation.sampling import velocity
    from engine.models.base import load_base_model
    from engine.models.experts import LOW_NOISE_LORA_FILE
    from engine.models.students import LORA_FILE

    model = load_base_model(str(a14b_t2v), device="cpu")
    adapters = Adapters(model.transformer, rank=4)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in adapters.parameters(STUDENT):
            p.copy_(torch.randn_like(p) * 0.2)
    lora = save_student_lora(adapters, tmp_path / "student", extra={"base": str(a14b_t2v), "t_list": [0.95, 0.5, 0.0]})
    x, cond = torch.randn(2, 4, 2, 2, 2), torch.randn(2, 8, 32)
    t = torch.tensor([0.95, 0.5])  # one sample per expert
    with adapters.using(STUDENT), torch.no_grad():
        ours = velocity(model.transformer, x, t, cond)

    pipe = WanPipeline.from_pretrained(str(a14b_t2v))
    pipe.load_lora_weights(str(lora), weight_name=LORA_FILE, adapter_name="student")
    pipe.load_lora_weights(
        str(lora), weight_name=LOW_NOISE_LORA_FILE, adapter_name="student", load_into_transformer_2=True
    )
    with torch.no_grad():
        high = velocity(pipe.transformer, x[:1], t[:1], cond[:1])
        low = velocity(pipe.transformer_2, x[1:], t[1:], cond[1:])
    torch.testing.assert_close(ours, torch.cat([high, low]), atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the teacher differs: the LoRAs did something
        assert (velocity(pipe.transformer, x[:1], t[:1], cond[:1]) - high).abs().max() == 0
    pipe.disable_lora()
    with torch.no_grad():
        assert (velocity(pipe.transformer, x[:1], t[:1], cond[:1]) - high).abs().max() > 1e-4

    # The engine's own sampler loads the same folder into both experts of a fresh base and samples with it.
    fresh = load_base_model(str(a14b_t2v), device="cpu")
    videos, nfe = sample_frames(fresh, SampleConfig(base=str(a14b_t2v), prompt="a cat", seeds=[1], lora=str(lora)))
    assert videos.shape == (1, 5, 16, 16, 3) and nfe == 2


CHECK_EXPERTS_AGAINST_THE_ENGINE = """
# The card's pipeline call, on its latents, against the engine's student sampler on both experts, same seed.
import json
from engine.generation.sampling import student_sample
from engine.models.experts import two_experts
assert video.shape == (5, 16, 16, 3), video.shape
torch.manual_seed(1)
kwargs = dict(num_inference_steps=len(T_LIST) - 1, guidance_scale=1.0, guidance_scale_2=1.0, num_frames=5,
              height=16, width=16)
latents = pipe(PROMPT, output_type="latent", **kwargs).frames
embeds = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False, max_sequence_length=512)[0]
torch.manual_seed(1)
noise = torch.randn(latents.shape)
ours = student_sample(two_experts(pipe), noise, embeds, tuple(T_LIST))
lora = {n for n, p in pipe.transformer_2.named_parameters() if "lora_B" in n and p.abs().max() > 0}
print(json.dumps({"max_diff": float((ours - latents).abs().max()), "scale": float(ours.abs().max()),
                  "low_noise_lora": len(lora)}))
"""


def test_the_cards_snippet_loads_both_experts_loras_and_samples_like_the_engine(a14b_t2v, tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    from engine.distill.adapters import STUDENT, Adapters, save_student_lora
    from engine.hub import publish
    from engine.hub.card import CardInfo, model_card, training_record
    from engine.models.base import load_base_model
    from engine.models.experts import LOW_NOISE_LORA_FILE
    from engine.models.students import student_t_list

    model = load_base_model(str(a14b_t2v), device="cpu")
    adapters = Adapters(model.transformer, rank=4)
    torch.manual_seed(6)
    with torch.no_grad():
        for p in adapters.parameters(STUDENT):
            p.copy_(torch.randn_like(p) * 0.1)
    t_list = [0.999, 0.937, 0.833, 0.624, 0.0]  # the paper's: two times on each side of T2V-A14B's 0.875
    extra = {"base": str(a14b_t2v), "t_list": t_list, "steps": 10}
    student = save_student_lora(adapters, tmp_path / "student", extra=extra)
    record = training_record(student)
    assert record["boundary_ratio"] == A14B_BOUNDARY["t2v"]
    card = model_card(CardInfo(repo_id="me/a14b-dmd2", base=str(a14b_t2v), method="dmd2", t_list=t_list, **record))
    assert f"`{LOW_NOISE_LORA_FILE}` on `transformer_2` (times 0.833, 0.624)" in card
    assert "**two experts**" in card and "load_into_transformer_2=True" in card
    staged = publish.stage_folder(student, tmp_path / "staged", card, dtype="fp32")
    assert (staged / LOW_NOISE_LORA_FILE).is_file() and student_t_list(staged) == t_list
    [code] = re.findall(r"```python\n(.*?)```", card, re.S)
    assert code.count("\npipe.load_lora_weights(") == 2 and "guidance_scale_2=1.0" in code
    code = (
        code.replace('"me/a14b-dmd2"', repr(str(staged)))  # the pushed repo, here its staged folder
        .replace('"<the base\'s local folder>"', repr(str(a14b_t2v)))
        .replace("torch.bfloat16", "torch.float32")
        .replace('.to("cuda")', "")
    )  # this test runs on a CPU
    prompt = re.search(r'pipe\(("[^"]+")', code).group(1)
    script = code + f"\nPROMPT = {prompt}\n" + CHECK_EXPERTS_AGAINST_THE_ENGINE
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["low_noise_lora"] > 0  # the second file did land in transformer_2
    assert result["max_diff"] < 1e-4 * max(1.0, result["scale"]), result


def test_the_causal_student_on_two_experts_is_refused_before_any_work(a14b_t2v, clips, tmp_path):
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller

    cfg = DistillConfig(base=str(a14b_t2v), data=str(clips), task="ar", steps=2, batch_size=2, **SHAPE)
    with pytest.raises(ValueError, match="task ar .* not available on a two-expert base"):
        Distiller(cfg, tmp_path / "ar")
    assert not (tmp_path / "ar").exists()


def test_the_engines_teacher_sampler_gives_each_expert_its_own_guidance(a14b_t2v):
    from engine.config.sample import SampleConfig
    from engine.generation.generate import sample_frames
    from engine.generation.sampling import teacher_sigmas
    from engine.models.base import load_base_model

    model = load_base_model(str(a14b_t2v), device="cpu")
    high = sum(s >= A14B_BOUNDARY["t2v"] for s in teacher_sigmas(model.pipe.scheduler, 6)[:-1])
    assert 0 < high < 6
    # CFG off on the high-noise expert (one forward a step), on at the folder's 2.0 on the low-noise one (two)
    cfg = SampleConfig(base=str(a14b_t2v), prompt="a cat", seeds=[1], steps=6, guidance=1.0)
    videos, nfe = sample_frames(model, cfg)
    assert videos.shape == (1, 5, 16, 16, 3) and nfe == high + 2 * (6 - high)


def test_a_student_is_refused_on_a_base_with_another_number_of_experts(a14b_t2v, tmp_path):
    from engine.config.sample import SampleConfig
    from engine.distill.adapters import STUDENT, Adapters, save_student_lora
    from engine.generation.generate import sample_frames
    from engine.models.base import load_base_model
    from engine.models.names import ModelError
    from tiny_wan import save_tiny_wan

    one = save_tiny_wan(tmp_path / "one")  # Wan2.1's layout, one transformer of the experts' very config
    (one / "dfd_studio.json").write_text(json.dumps({**SHAPE, "fps": 16}))
    students = {}
    for name, base in (("two", a14b_t2v), ("one", one)):
        adapters = Adapters(load_base_model(str(base), device="cpu").transformer, rank=4)
        with torch.no_grad():
            for p in adapters.parameters(STUDENT):
                p.fill_(0.01)
        students[name] = save_student_lora(adapters, tmp_path / f"student-{name}", extra={"base": str(base)})
    with pytest.raises(ModelError, match="match no LoRA layer"):
        sample_frames(load_base_model(str(one), device="cpu"), SampleConfig(base=str(one), lora=str(students["two"])))
    with pytest.raises(ModelError, match="has no LoRA for the low-noise expert"):
        model = load_base_model(str(a14b_t2v), device="cpu")
        sample_frames(model, SampleConfig(base=str(a14b_t2v), lora=str(students["one"])))


def test_the_i2v_teacher_samples_from_a_frame_as_diffusers_does_on_both_experts(a14b_i2v):
    import numpy as np
    from PIL import Image

    from engine.generation.sampling import teacher_sample, teacher_sigmas
    from engine.models.base import load_base_model
    from engine.models.experts import teacher_guidance

    model = load_base_model(str(a14b_i2v), device="cpu")
    model.transformer.guidance_2 = 2.0
    frame = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    cond, uncond = torch.randn(1, 8, 32), torch.randn(1, 8, 32)
    noise = torch.randn(model.latent_shape(1, **SHAPE), generator=torch.Generator().manual_seed(0))
    seen = _calls(model.pipe)
    theirs = model.pipe(
        image=Image.fromarray(frame),
        prompt_embeds=cond,
        negative_prompt_embeds=uncond,
        latents=noise.clone(),
        guidance_scale=3.0,
        guidance_scale_2=2.0,
        num_inference_steps=10,
        output_type="latent",
        **SHAPE,
    ).frames
    assert {name for _, name in seen} == {"transformer", "transformer_2"}  # both experts ran
    sigmas = teacher_sigmas(model.pipe.scheduler, 10)
    condition = model.condition_latents(frame[None], SHAPE["num_frames"])
    guidance = lambda s: teacher_guidance(model.transformer, s, 3.0)  # noqa: E731
    ours = teacher_sample(model.transformer, noise, cond, uncond, sigmas, guidance, condition=condition)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_a_t_list_on_one_side_of_the_boundary_is_noted_when_the_run_starts(a14b_i2v, clips, tmp_path):
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Callbacks, Distiller

    class Notes(Callbacks):
        def __init__(self):
            self.lines = []

        def log(self, message):
            self.lines.append(message)

    notes = Notes()
    cfg = DistillConfig(
        base=str(a14b_i2v), data=str(clips), task="i2v", batch_size=2, t_list=[0.99, 0.95, 0.0], **SHAPE
    )
    Distiller(cfg, tmp_path / "run", callbacks=notes)
    assert any("on one side of the experts' boundary 0.9" in line for line in notes.lines), notes.lines
