"""The model card's code runs as written: an image-to-video student's diffusers snippet samples from the frame
as the engine does, a causal student's command streams 65 frames from the staged repo, a student's command
samples from the staged repo, and the diffusers snippet samples on the student's times as the engine does."""

from __future__ import annotations

import json
from pathlib import Path

from card_helpers import card_front, card_info
from engine.hub import publish
from engine.hub.card import CardInfo, model_card, training_record
from engine.models.students import SHIPPED_DIR

# --- an image-to-video student --------------------------------------------------------------------------

CHECK_I2V_AGAINST_THE_ENGINE = """
# The card's pipeline call, on its latents, against the engine's student sampler from the same seed and frame.
import json
from engine.generation.sampling import student_sample
from engine.models.base import load_base_model
from engine.models.conditioning import read_first_frame
assert video.shape == (5, 16, 16, 3), video.shape
assert [round(float(s), 4) for s in pipe.scheduler.sigmas] == T_LIST
torch.manual_seed(1)
kwargs = dict(num_inference_steps=len(T_LIST) - 1, guidance_scale=1.0, num_frames=5, height=16, width=16)
latents = pipe(image=image, prompt=PROMPT, output_type="latent", **kwargs).frames
embeds = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False, max_sequence_length=512)[0]  # __call__'s default
condition = load_base_model(BASE, device="cpu").condition_latents(read_first_frame(FRAME, 16, 16)[None], 5)
torch.manual_seed(1)
noise = torch.randn(latents.shape)
ours = student_sample(pipe.transformer, noise, embeds, tuple(T_LIST), condition=condition)
print(json.dumps({"max_diff": float((ours - latents).abs().max()), "scale": float(ours.abs().max())}))
"""


def test_an_i2v_students_card_says_so_and_its_snippet_samples_from_the_frame_like_the_engine(tmp_path):
    import re
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from engine.hub import publish
    from engine.models.students import student_t_list
    from tiny_wan import save_captioned_clips, save_small_i2v, train_tiny_i2v_student

    base = save_small_i2v(tmp_path / "i2v")
    student = train_tiny_i2v_student(base, save_captioned_clips(tmp_path / "clips"), tmp_path / "student")
    record = training_record(student)
    assert record["task"] == "i2v"  # from the run's distill_config.json
    card = model_card(
        CardInfo(repo_id="me/i2v-dmd2", base=str(base), method="dmd2", t_list=student_t_list(student), **record)
    )
    front = card_front(card)
    assert front["pipeline_tag"] == "image-to-video" and "image-to-video" in front["tags"]
    assert "A 4-step image-to-video student LoRA" in card and "This is an **image-to-video** LoRA" in card
    assert "--image first_frame.png" in card and "through the WanImageToVideo node" in card
    t2v = model_card(CardInfo(repo_id="me/t2v", base="shapes-tiny", method="dmd2", steps=4, t_list=[0.999, 0.0]))
    assert "WanImageToVideoPipeline" not in t2v and "pipeline_tag: text-to-video" in t2v

    frame = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(frame)
    staged = publish.stage_folder(student, tmp_path / "staged", card)
    [code] = re.findall(r"```python\n(.*?)```", card, re.S)
    assert "WanImageToVideoPipeline.from_pretrained" in code and "pipe(image=image, prompt=" in code
    code = (
        code.replace('"me/i2v-dmd2"', repr(str(staged)))  # the pushed repo, here its staged folder
        .replace('"<the base\'s local folder>"', repr(str(base)))
        .replace('"first_frame.png"', repr(str(frame)))
        .replace("torch.bfloat16", "torch.float32")
        .replace('.to("cuda")', "")
    )  # this test runs on a CPU
    prompt = re.search(r"prompt=(\"[^\"]+\")", code).group(1)
    script = (
        code + f"\nPROMPT = {prompt}\nBASE = {str(base)!r}\nFRAME = {str(frame)!r}\n" + CHECK_I2V_AGAINST_THE_ENGINE
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["max_diff"] < 1e-4 * max(1.0, result["scale"]), result


# --- a causal (autoregressive) student ---------------------------------------------------------------------


def test_a_causal_students_card_says_so_and_its_command_streams_65_frames_from_the_staged_repo(tmp_path):
    import re
    import shlex

    from conftest import run_engine
    from engine.config.build import build_distill_config
    from engine.distill.trainer import Distiller
    from engine.hub import publish
    from engine.models.students import student_t_list
    from mp4_probe import probe_frame_count

    cfg = build_distill_config(
        values=dict(task="ar", steps=2, batch_size=2, student_update_freq=2, lora_rank=4, shapes_pool_clips=16, seed=3)
    )
    student = Distiller(cfg, tmp_path / "run").train()
    record = training_record(student)
    assert record["causal"] == {"chunk_frames": 2, "trained_latent_frames": 5, "window_frames": 3}  # lora_config.json
    card = model_card(
        CardInfo(repo_id="me/shapes-ar", base="shapes-tiny", method="dmd2", t_list=student_t_list(student), **record)
    )
    front = card_front(card)
    assert {"causal", "autoregressive", "text-to-video"} <= set(front["tags"])
    assert "A 4-step causal (autoregressive) text-to-video student LoRA" in card
    assert "(per chunk, plus one that commits the chunk to the cache)" in card
    assert (
        "the first latent frame alone, then 2 latent frames (8 video frames) each; it was trained on 5 latent "
        "frames (17 video frames)"
    ) in card and "Its cache keeps the newest 3 latent frames" in card
    assert "diffusers' `WanPipeline` alone does **not** run it causally" in card and "so it streams" in card
    assert "```python" not in card and "sampler `lcm`" not in card  # no bidirectional recipe for it
    plain = model_card(
        CardInfo(
            repo_id="me/t2v",
            base="shapes-tiny",
            method="dmd2",
            steps=4,
            t_list=[0.999, 0.0],
            **training_record(tmp_path / "no-such-folder"),
        )
    )
    assert "causal" not in plain and "```python" in plain

    staged = publish.stage_folder(student, tmp_path / "staged", card)  # what a download of the repo holds
    [command] = re.findall(r"```bash\n(python -m engine sample .*)\n```", card)
    assert "--num-frames 65" in command
    args = shlex.split(
        command.replace("<this repo, downloaded>", str(staged))
        .replace('"..."', '"a red circle"')
        .replace("--seeds 1-4", "--seeds 1")
        .replace("samples/", str(tmp_path / "long"))
    )[3:]
    sampled = run_engine(*args)
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert probe_frame_count(tmp_path / "long" / "seed1.mp4") == 65
    assert "5 network evaluations each per chunk (a causal student)" in sampled.stderr  # 4 steps and the commit


def test_a_students_card_command_samples_as_written_from_the_staged_repo(tmp_path):
    import re
    import shlex

    from conftest import run_engine
    from engine.hub import publish
    from engine.models.students import student_t_list

    student = Path("engine/assets/students/dmd2")
    card = model_card(
        CardInfo(
            repo_id="me/shapes-dmd2",
            base="shapes-tiny",
            method="dmd2",
            t_list=student_t_list(student),
            steps=1250,
            student_update_freq=2,
        )
    )
    assert "| student updates | 625 (every 2nd step) |" in card
    staged = publish.stage_folder(student, tmp_path / "staged", card)
    [command] = re.findall(r"```bash\n(python -m engine sample .*)\n```", card)
    args = shlex.split(
        command.replace("<this repo, downloaded>", str(staged))
        .replace('"..."', '"a red circle"')
        .replace("--seeds 1-4", "--seeds 1")
        .replace("samples/", str(tmp_path / "out"))
    )[3:]
    sampled = run_engine(*args)
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert (tmp_path / "out" / "seed1.mp4").is_file()


CHECK_AGAINST_THE_ENGINE = """
# The card's pipeline call, on its latents, against the engine's student sampler from the same seed.
import json
from engine.generation.sampling import student_sample
assert video.shape == (17, 64, 64, 3), video.shape
assert [round(float(s), 4) for s in pipe.scheduler.sigmas] == T_LIST
torch.manual_seed(1)
kwargs = dict(num_inference_steps=len(T_LIST) - 1, guidance_scale=1.0, num_frames=17, height=64, width=64,
              max_sequence_length=16)
latents = pipe(PROMPT, output_type="latent", **kwargs).frames
embeds = pipe.encode_prompt(PROMPT, do_classifier_free_guidance=False, max_sequence_length=16)[0]
torch.manual_seed(1)
noise = torch.randn(latents.shape)
ours = student_sample(pipe.transformer, noise, embeds, tuple(T_LIST))
print(json.dumps({"max_diff": float((ours - latents).abs().max()), "scale": float(ours.abs().max())}))
"""


def test_the_cards_diffusers_snippet_samples_on_the_students_times_like_the_engine(tmp_path):
    import re
    import subprocess
    import sys

    card = model_card(card_info(base="shapes-tiny", t_list=[0.999, 0.937, 0.833, 0.624, 0.0]))
    staged = publish.stage_folder(SHIPPED_DIR / "dfd", tmp_path / "staged", card)
    [code] = re.findall(r"```python\n(.*?)```", card, re.S)
    code = code.replace('"someone/shapes-dfd"', repr(str(staged)))  # the pushed repo, here its staged folder
    prompt = re.search(r'pipe\(("[^"]+")', code).group(1)
    script = code + f"\nPROMPT = {prompt}\n" + CHECK_AGAINST_THE_ENGINE
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["max_diff"] < 1e-4 * max(1.0, result["scale"]), result
