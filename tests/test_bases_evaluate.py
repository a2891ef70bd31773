"""`python -m engine evaluate` on the Wan2.2 and Cosmos bases, on tiny random pipelines of the real classes:
a Wan2.2-TI2V base is measured from text (its image-to-video students are refused in one line), the two
experts of an A14B base sample as the sampler routes them, and an image-to-video base outside the shapes
world (Cosmos-Predict2.5) is measured from the user's first frames, and a missing or unreadable frame is refused
in one line before any sampling. Run in-process through
engine.cli.main.main."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli.main import main
from tiny_cosmos import save_tiny_cosmos
from tiny_wan import save_tiny_wan, save_tiny_wan22_a14b, save_tiny_wan22_ti2v

FROM_A_FRAME = (
    'evaluate it on first frames of yours (--frames FOLDER, or an "image" per JSONL prompt), or compare '
    "from a frame in the studio's Compare or Diversity tab"
)


def _evaluate(capsys, base, *args) -> tuple[int, str]:
    try:
        code = main(["evaluate", "--base", str(base), "--seeds", "2", "--device", "cpu", *args])
    except SystemExit as exit_:  # argparse and CliError end this way
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red circle moving left\na cat\n")
    return path


@pytest.mark.parametrize("kind", ["ti2v", "a14b"])
def test_a_wan22_base_is_measured_from_text(kind, prompts, tmp_path, capsys):
    save = save_tiny_wan22_ti2v if kind == "ti2v" else save_tiny_wan22_a14b
    base = save(tmp_path / kind)
    out = tmp_path / "out.json"
    size = ["--num-frames", "5", "--height", "32", "--width", "32"]
    code, err = _evaluate(capsys, base, "--models", "teacher@2", "--prompts", str(prompts), "--json", str(out), *size)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["task"] == "t2v" and set(result["per_prompt"]["teacher@2"]) == {"a red circle moving left", "a cat"}
    assert result["models"]["teacher@2"]["nfe"] == 4 and result["models"]["teacher@2"]["motion"] >= 0


def test_an_i2v_student_of_a_ti2v_base_is_refused_in_one_line(prompts, tmp_path, capsys):
    base = save_tiny_wan22_ti2v(tmp_path / "ti2v")
    student = tmp_path / "i2v-student"
    student.mkdir()
    (student / "pytorch_lora_weights.safetensors").write_bytes(b"")  # not read: refused before any loading
    (student / "lora_config.json").write_text(json.dumps({"base": str(base), "method": "dmd2", "task": "i2v"}))
    code, err = _evaluate(capsys, base, "--models", f"teacher@2,{student}", "--prompts", str(prompts))
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"error: --models: {student} is an image-to-video student (task i2v in its lora_config.json) and "
        f"evaluate measures {base} from text alone; leave it out and {FROM_A_FRAME}"
    )


def _frame(path, seed: int, size=(16, 16)):
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def cosmos(tmp_path):
    return save_tiny_cosmos(tmp_path / "cosmos")


def test_an_image_to_video_base_is_measured_from_the_users_frames(cosmos, tmp_path, capsys):
    """One prompt's frame from its JSONL row (relative to the file), the other's from --frames by its name."""
    (tmp_path / "given").mkdir()
    (tmp_path / "folder").mkdir()
    _frame(tmp_path / "given" / "cat.png", 1)
    _frame(tmp_path / "folder" / "a-dog-runs.png", 2, size=(24, 20))  # another size: resized to the base's
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"prompt": "a cat sits", "image": "given/cat.png"}, {"prompt": "A dog runs!"}]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, md = tmp_path / "out.json", tmp_path / "out.md"
    code, err = _evaluate(
        capsys,
        cosmos,
        *("--models", "teacher@2", "--prompts", str(prompts), "--frames", str(tmp_path / "folder")),
        *("--json", str(out), "--md", str(md)),
    )
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["task"] == "i2v" and set(result["per_prompt"]["teacher@2"]) == {"a cat sits", "A dog runs!"}
    for row in result["per_prompt"]["teacher@2"].values():
        assert row["first_frame_psnr"] > 0 and row["motion"] >= 0
    assert result["models"]["teacher@2"]["first_frame_psnr"] is not None
    assert "first frame PSNR" in md.read_text()


def test_a_prompt_without_a_frame_is_refused_in_one_line(cosmos, prompts, tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    _frame(tmp_path / "folder" / "a-cat.png", 1)
    folder = ["--frames", str(tmp_path / "folder")]
    code, err = _evaluate(capsys, cosmos, "--models", "teacher@2", "--prompts", str(prompts), *folder)
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        f"error: the prompt 'a red circle moving left' has no first frame "
        f"(no a-red-circle-moving-left.png (or .jpg, .webp) in {tmp_path / 'folder'})"
    ), line


def test_an_image_to_video_base_without_frames_is_refused_in_one_line(cosmos, prompts, capsys):
    code, err = _evaluate(capsys, cosmos, "--models", "teacher@2", "--prompts", str(prompts))
    assert code == 2
    assert "has no first frame (no frames folder is given)" in err.strip().splitlines()[-1]


def test_an_unreadable_frame_is_refused_before_any_sampling(cosmos, tmp_path, capsys):
    bad = tmp_path / "cat.png"
    bad.write_text("not an image")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "a cat", "image": "cat.png"}) + "\n")
    out = tmp_path / "out.json"
    code, err = _evaluate(capsys, cosmos, "--models", "teacher@2", "--prompts", str(prompts), "--json", str(out))
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: the first frame of the prompt 'a cat': {bad} is not an image"), line
    assert not out.exists()


def test_a_ti2v_base_given_frames_is_measured_from_them(prompts, tmp_path, capsys):
    base = save_tiny_wan22_ti2v(tmp_path / "ti2v")
    (tmp_path / "folder").mkdir()
    for seed, name in enumerate(("a-red-circle-moving-left", "a-cat")):
        _frame(tmp_path / "folder" / f"{name}.png", seed, size=(32, 32))
    out = tmp_path / "out.json"
    size = ["--num-frames", "5", "--height", "32", "--width", "32", "--frames", str(tmp_path / "folder")]
    code, err = _evaluate(capsys, base, "--models", "teacher@2", "--prompts", str(prompts), "--json", str(out), *size)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result["task"] == "i2v" and result["models"]["teacher@2"]["first_frame_psnr"] is not None


def test_frames_given_to_a_text_to_video_base_are_refused_in_one_line(prompts, tmp_path, capsys):
    base = save_tiny_wan(tmp_path / "t2v")
    (tmp_path / "folder").mkdir()
    code, err = _evaluate(
        capsys, base, "--models", "teacher@2", "--prompts", str(prompts), "--frames", str(tmp_path / "folder")
    )
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"error: --base {base} is a text-to-video model and the prompts give first frames; leave out --frames "
        'and the prompts\' "image", or evaluate an image-to-video base'
    )
