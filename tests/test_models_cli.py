"""Base models through the real command line: a pretrained teacher's pipeline folder reloads in a fresh
process, `sample` writes one mp4 per seed (a shipped student by its name), bad inputs are one-line errors,
the bundled teacher records the command that made it and a continued one the chain, and pretraining's time
shift. The tiny random Wan2.1 of the real classes is tests/test_models_wan.py; refused bases, students and
paths tests/test_models_refusals.py."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, run_engine
from engine.media.video import read_mp4
from engine.models.base import BUILTIN_MODELS, STUDIO_META, load_base_model
from engine.shapes import world
from mp4_probe import probe_frame_count


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, mini_teacher_dir):
    # continued from the session's mini teacher: a fresh one fits its autoencoder on 1500 clips first (~20 s
    # here), which conftest's mini_teacher_dir already runs in-process with fewer clips
    out = tmp_path_factory.mktemp("teacher") / "shapes-mini"
    result = run_engine(
        "pretrain-teacher",
        "--out",
        str(out),
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--pool-clips",
        "8",
        "--init",
        str(mini_teacher_dir),
    )
    assert result.returncode == 0, result.stderr
    return out


FORWARD_CHECKSUM = """
import sys, torch
sys.path.insert(0, {root!r})
from engine.models.base import load_base_model
m = load_base_model({folder!r}, device="cpu")
torch.manual_seed(0)
x = torch.randn(1, 16, 5, 8, 8)
emb = m.encode_prompts(["a red circle moving left on a dark background"])
with torch.no_grad():
    v = m.transformer(hidden_states=x, timestep=torch.tensor([500.0]), encoder_hidden_states=emb, return_dict=False)[0]
print(repr(float(v.double().sum())))
"""


def test_pretrained_teacher_is_a_diffusers_folder_that_reloads_identically_in_a_fresh_process(trained_dir):
    index = json.loads((trained_dir / "model_index.json").read_text())
    assert index["_class_name"] == "WanPipeline"
    assert index["transformer"] == ["diffusers", "WanTransformer3DModel"]
    assert index["vae"] == ["engine.shapes.autoencoder", "PatchPCAAutoencoder"]
    meta = json.loads((trained_dir / STUDIO_META).read_text())
    assert meta["made_by"].startswith("python -m engine pretrain-teacher --out")
    assert meta["trained_steps"] == 3 and meta["teacher_config"]["batch_size"] == 4

    code = FORWARD_CHECKSUM.format(root=str(ROOT), folder=str(trained_dir))
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert fresh.returncode == 0, fresh.stderr

    model = load_base_model(str(trained_dir), device="cpu")
    torch.manual_seed(0)
    x = torch.randn(1, 16, 5, 8, 8)
    emb = model.encode_prompts(["a red circle moving left on a dark background"])
    with torch.no_grad():
        v = model.transformer(
            hidden_states=x, timestep=torch.tensor([500.0]), encoder_hidden_states=emb, return_dict=False
        )[0]
    assert float(fresh.stdout) == pytest.approx(float(v.double().sum()), rel=1e-5)  # no weight left at random


def test_sample_command_writes_one_valid_mp4_per_seed_and_prints_the_paths(trained_dir, tmp_path):
    result = run_engine(
        "sample",
        "--base",
        str(trained_dir),
        "--prompt",
        "a red circle",
        "--seeds",
        "1-3",
        "--steps",
        "4",
        "--scale",
        "2",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    paths = result.stdout.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["seed1.mp4", "seed2.mp4", "seed3.mp4"]
    for p in paths:
        assert probe_frame_count(p) == 17
        assert read_mp4(p).shape == (17, 128, 128, 3)
    assert "sampling 3 video(s)" in result.stderr  # the progress bar


def test_a_shipped_student_is_sampled_by_its_name_in_its_own_four_steps(tmp_path, capsys):
    from engine.cli.main import main  # in this process: the command's code, without paying for a second torch import

    assert (
        main(
            [
                "sample",
                "--lora",
                "dfd",
                "--prompt",
                "a red circle moving left on a dark background",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    path = printed.out.split()[0]
    assert path.endswith("seed1.mp4") and probe_frame_count(path) == 17
    assert "4 network evaluations each" in printed.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompt", "   "], "the prompt is empty"),
        (["--prompt", "x", "--base", "no-such-model"], "unknown model 'no-such-model'"),
        (["--prompt", "x", "--base", "/no/such/folder"], "is not a folder"),
        (["--prompt", "x", "--num-frames", "16"], "num_frames must be 4k+1"),
        (["--prompt", "x", "--height", "63"], "height must be a positive even number"),
        (["--prompt", "x", "--width", "66"], "multiples of 16"),
        (["--prompt", "x", "--seeds", "8-1"], "bad seed range '8-1'"),
        (["--prompt", "x", "--seeds", "one"], "bad seeds 'one'"),
        (["--prompt", "x", "--steps", "0"], "steps must be between 1 and 1000"),
        (
            ["--prompt", "x", "--lora", "dfdx"],
            "no student 'dfdx': give a LoRA folder or a shipped student (dfd, dfd-ar, dfd-i2v, dmd2",
        ),
    ],
)
def test_bad_inputs_give_a_one_line_error_and_exit_code_2(trained_dir, tmp_path, args, message):
    base = [] if "--base" in args else ["--base", str(trained_dir)]
    result = run_engine("sample", *base, *args, "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_bundled_teacher_is_registered_and_records_the_command_that_made_it():
    folder = BUILTIN_MODELS["shapes-tiny"]
    meta = json.loads((folder / STUDIO_META).read_text())
    # Made by pretrain-teacher, possibly continued (--init): the chain starts with a run from scratch.
    chain = meta.get("lineage", []) + [meta]
    assert all(m["made_by"].startswith("python -m engine pretrain-teacher ") for m in chain)
    assert chain[0]["made_by"].startswith("python -m engine pretrain-teacher --out engine/assets/shapes-tiny")
    assert meta.get("total_trained_steps", meta["trained_steps"]) == sum(m["trained_steps"] for m in chain)
    assert all("radius" in m["world_ranges"] for m in chain)  # the world each stage trained on
    assert meta["world_ranges"] == world.continuous_ranges()  # the last stage saw today's world
    if meta["teacher_config"].get("lr_schedule") == "constant":  # an intermediate save equals a shorter run
        assert meta["trained_steps"] <= meta["teacher_config"]["steps"]
    else:
        assert meta["trained_steps"] == meta["teacher_config"]["steps"]
    model = load_base_model("shapes-tiny", device="cpu")
    assert (model.num_frames, model.height, model.width) == (17, 64, 64)
    assert type(model.vae).__name__ == "PatchPCAAutoencoder"


def test_pretrain_teacher_continues_a_teacher_and_records_the_chain_of_commands(trained_dir, tmp_path):
    out = tmp_path / "continued"
    result = run_engine(
        "pretrain-teacher",
        "--init",
        str(trained_dir),
        "--out",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--pool-clips",
        "8",
        "--lr",
        "3e-4",
        "--lr-schedule",
        "constant",
        "--time-shift",
        "3",
        "--balanced-detailed",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / STUDIO_META).read_text())
    first = json.loads((trained_dir / STUDIO_META).read_text())
    assert meta["trained_steps"] == 2 and meta["total_trained_steps"] == first["total_trained_steps"] + 2
    assert [m["made_by"] for m in meta["lineage"]] == [m["made_by"] for m in first["lineage"]] + [first["made_by"]]
    assert meta["lineage"][-1]["world_ranges"] == first["world_ranges"]  # each stage keeps the world it saw
    assert meta["teacher_config"]["init"] == str(trained_dir) and meta["teacher_config"]["lr_schedule"] == "constant"
    assert meta["teacher_config"]["num_layers"] == first["teacher_config"]["num_layers"]  # sizes come from --init
    assert meta["teacher_config"]["time_shift"] == 3.0 and meta["teacher_config"]["balanced_detailed"] == 0.5

    missing = run_engine("pretrain-teacher", "--init", str(tmp_path / "nope"), "--out", str(out), "--steps", "2")
    assert missing.returncode == 2 and "no such folder" in missing.stderr
    bad_shift = run_engine("pretrain-teacher", "--out", str(out), "--steps", "2", "--time-shift", "0")
    assert bad_shift.returncode == 2 and "--time-shift must be positive" in bad_shift.stderr
    bad_balance = run_engine("pretrain-teacher", "--out", str(out), "--steps", "2", "--balanced-detailed", "1")
    assert bad_balance.returncode == 2 and "--balanced-detailed must be in [0, 1)" in bad_balance.stderr


def _with_tokenizer_words(src, dst, words):
    """A copy of the teacher at src whose tokenizer knows these words instead of the world's."""
    import shutil

    from engine.shapes.text import build_tokenizer

    shutil.copytree(src, dst)
    shutil.rmtree(dst / "tokenizer")
    build_tokenizer(words, 16).save_pretrained(dst / "tokenizer")
    return dst


def test_a_teacher_made_before_a_word_was_renamed_continues_with_the_worlds_words(trained_dir, tmp_path):
    # A world whose fourth shape is renamed (cross -> diamond): the teacher continues under the new name.
    old_words = ["cross" if w == "diamond" else w for w in world.vocabulary()]
    older = _with_tokenizer_words(trained_dir, tmp_path / "older", old_words)
    out = tmp_path / "continued"
    from engine.config.teacher import TeacherConfig
    from engine.pretrain.teacher import pretrain_teacher

    pretrain_teacher(TeacherConfig(init=str(older), steps=2, batch_size=4, pool_clips=8).validate(), out, "test")
    meta = json.loads((out / STUDIO_META).read_text())
    assert meta["renamed_words"] == {"cross": "diamond"}
    old_ids = load_base_model(str(older), device="cpu").pipe.tokenizer
    new_ids = load_base_model(str(out), device="cpu").pipe.tokenizer
    # the new word takes the old one's id, so it keeps that word's frozen text embedding
    assert new_ids("a diamond").input_ids == old_ids("a cross").input_ids
    assert new_ids("a cross").input_ids == old_ids("a diamond").input_ids  # both unknown now: <unk>
    assert "renamed_words" not in json.loads((trained_dir / STUDIO_META).read_text())

    grown = _with_tokenizer_words(trained_dir, tmp_path / "grown", world.vocabulary() + ["hexagon"])
    refused = run_engine("pretrain-teacher", "--init", str(grown), "--out", str(tmp_path / "x"), "--steps", "2")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "renamed, not added or removed" in refused.stderr


def test_time_shift_moves_training_noise_levels_up_and_keeps_the_ends():
    from engine.distill.losses import shifted_time

    def shifted_times(u, shift):  # as pretrain-teacher draws them: the whole [0, 1], no clipping
        return shifted_time(u, shift, t_min=0.0, t_max=1.0)

    u = torch.linspace(0, 1, 11)
    assert torch.equal(shifted_times(u, 1.0), u)
    shifted = shifted_times(u, 3.0)
    assert shifted[0] == 0 and shifted[-1] == 1 and float(shifted[5]) == pytest.approx(0.75)
    assert bool((shifted[1:-1] > u[1:-1]).all()) and bool((shifted.diff() > 0).all())
