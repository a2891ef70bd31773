"""`python -m engine evaluate` on a base outside the shapes world: a tiny random Wan pipeline of the real
classes, the user's prompt file and held-out clips, tiny random CLIP and DINOv2 encoders. Run in-process
through engine.cli.main.main (a subprocess would import torch again for nothing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli.main import main
from test_features import save_tiny_encoders

SIZE = ["--num-frames", "5", "--height", "32", "--width", "32"]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    return save_tiny_encoders(tmp_path_factory.mktemp("encoders"))


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """Three captioned mp4 clips of 12 frames at 16 fps (the tiny Wan's rate), sidecar captions."""
    from engine.media.video import write_mp4

    folder = tmp_path_factory.mktemp("held-out")
    rng = np.random.default_rng(0)
    for i, caption in enumerate(["a red circle moving left", "a dog", "a cat"]):
        frames = np.repeat(rng.integers(0, 255, (12, 1, 1, 3), dtype=np.uint8), 48, axis=1).repeat(64, axis=2)
        frames[:, 10:30, 5 + i * 3 : 25 + i * 3] = 255  # a bright patch, so the clips differ and move
        write_mp4(folder / f"clip{i}.mp4", frames, fps=16)
        (folder / f"clip{i}.txt").write_text(caption)
    (folder / "notes.pdf").write_text("not a video")
    return folder


def _evaluate(capsys, *args) -> tuple[int, str, str]:
    try:
        code = main(["evaluate", *args])
    except SystemExit as exit_:  # argparse and CliError end this way
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_wan_base_is_measured_on_the_users_prompts_with_clip_and_dinov2(
    tiny_wan_dir, encoders, held_out, tmp_path, capsys
):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle moving left\n\n# a comment line\na cat\n")
    out = tmp_path / "out.json"
    features = f"clip:{encoders / 'clip'},dinov2:{encoders / 'dinov2'}"
    args = [
        "--base",
        str(tiny_wan_dir),
        "--models",
        "teacher@2,teacher@1:cfg=1",
        "--prompts",
        str(prompts),
        "--seeds",
        "2",
        "--features",
        features,
        "--real",
        str(held_out),
        "--device",
        "cpu",
        "--batch",
        "1",
        "--json",
        str(out),
        "--md",
        str(tmp_path / "out.md"),
        "--plot",
        str(tmp_path / "out.png"),
        *SIZE,
    ]
    code, stdout, stderr = _evaluate(capsys, *args)
    assert code == 0, stderr
    result = json.loads(out.read_text())
    assert result["world"] is None and "recognizer_heldout_accuracy" not in result  # no shapes recognizer
    assert set(result["models"]) == {"real", "teacher@2", "teacher@1:cfg=1"}
    assert result["adherence"] == str(encoders / "clip") and result["device"] == "cpu"
    teacher = result["models"]["teacher@2"]
    assert teacher["nfe"] == 4 and result["models"]["teacher@1:cfg=1"]["nfe"] == 1
    assert teacher["seconds_per_video"] > 0
    for name, entry in result["models"].items():
        assert 0 < entry["diversity_clip"] <= 2 and 0 < entry["diversity_dinov2"] <= 2, name
        assert -1 <= entry["adherence"] <= 1 and 0 <= entry["saturation"] <= 1 and entry["saturation_spread"] >= 0
        assert entry["contrast"] >= 0 and entry["motion"] >= 0 and entry["saturation_gap"] >= 0
    real = result["per_prompt"]["real"]["(held-out clips)"]
    assert real["clips"] == 3 and real["skipped"] == 1 and real["motion"] > 0  # notes.pdf is named, not read
    assert result["models"]["real"]["motion_gap"] == 0.0
    assert set(result["per_prompt"]["teacher@2"]) == {"a red circle moving left", "a cat"}
    table = (tmp_path / "out.md").read_text()
    assert "| CLIP adherence |" in table and "| diversity dinov2 |" in table and "| motion gap |" in table
    assert (tmp_path / "out.png").stat().st_size > 5_000 and "| teacher@2 |" in stdout

    # the same command again: every (model, prompt) is read back, nothing is sampled
    parts = sorted((tmp_path / "out.parts").glob("*.json"))
    assert len(parts) == 5  # real once, 2 prompts x 2 teachers
    code, _, stderr = _evaluate(capsys, *args)
    assert code == 0 and "resumed: 5 model x prompt results" in stderr
    again = json.loads(out.read_text())
    assert again["models"] == result["models"]

    # a changed setting is measured again: the fingerprint differs
    code, _, stderr = _evaluate(
        capsys, *[a if a != "2" or i != args.index("--seeds") + 1 else "3" for i, a in enumerate(args)]
    )
    assert code == 0 and "resumed" not in stderr
    assert json.loads(out.read_text())["models"]["teacher@2"]["diversity_clip"] != teacher["diversity_clip"]


def test_a_jsonl_prompt_file_gives_each_prompt_its_own_seeds(tiny_wan_dir, encoders, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "a dog", "seeds": [7, 8, 9]}) + "\n" + json.dumps({"prompt": "a cat"}))
    code, _, stderr = _evaluate(
        capsys,
        "--base",
        str(tiny_wan_dir),
        "--models",
        "teacher@1",
        "--prompts",
        str(prompts),
        "--seeds",
        "2",
        "--features",
        f"dinov2:{encoders / 'dinov2'}",
        "--json",
        str(tmp_path / "o.json"),
        *SIZE,
    )
    assert code == 0, stderr
    result = json.loads((tmp_path / "o.json").read_text())
    assert set(result["models"]) == {"teacher@1"}  # no --real: no reference, no gaps
    assert "saturation_gap" not in result["per_prompt"]["teacher@1"]["a dog"]
    assert result["adherence"] is None and "No prompt adherence" in result["notes"][0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--prompts", "all"], "the built-in prompt set 'all' holds captions of the shapes world"),
        (["--prompts", "missing.txt"], "no prompt file at missing.txt"),
        (["--models", "real"], "set --real to a folder of captioned videos, or leave 'real' out of --models"),
        (["--seeds", "1"], "--seeds must be between 2 and 64"),
        (["--batch", "0"], "--batch must be at least 1 video"),
        (["--num-frames", "6"], "--num-frames must be 4k+1"),
        (["--device", "tpu"], "--device must be cpu, cuda, cuda:N or mps"),
        (["--real", "nowhere"], "--real is nowhere, which is not a folder"),
    ],
)
def test_bad_settings_are_refused_in_one_line_naming_the_flag(tiny_wan_dir, tmp_path, capsys, args, expected):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a dog\n")
    base = [
        "--base",
        str(tiny_wan_dir),
        "--models",
        "teacher@1",
        "--prompts",
        str(prompts),
        "--seeds",
        "2",
        "--device",
        "cpu",
        *SIZE,
    ]
    for i in range(0, len(args), 2):  # the case's flags replace the defaults
        if args[i] in base:
            base[base.index(args[i]) + 1] = args[i + 1]
        else:
            base += args[i : i + 2]
    code, _, stderr = _evaluate(capsys, *base)
    assert code == 2 and expected in stderr and "Traceback" not in stderr, stderr


def test_a_prompt_file_with_a_bad_line_is_named_by_line(tmp_path):
    from engine.evaluation.prompts import read_prompt_file

    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "a dog"}\n{"prompt": "a dog", "seeds": [1]}\n')
    with pytest.raises(ValueError, match=r"p.jsonl line 2: \"seeds\" needs 2 to 256 different seeds"):
        read_prompt_file(bad)
    bad.write_text('{"prompt": "a dog"}\n{"prompt": "a dog"}\n')
    with pytest.raises(ValueError, match="line 2 repeats the prompt of line 1"):
        read_prompt_file(bad)
