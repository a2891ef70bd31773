"""`python -m engine evaluate` on the Wan2.2 and Cosmos bases, on tiny random pipelines of the real classes:
a Wan2.2-TI2V base is measured from text (its image-to-video students are refused in one line), the two
experts of an A14B base sample as the sampler routes them, and an image-to-video base outside the shapes
world (Cosmos-Predict2.5) is refused in one line that says where to measure it. Run in-process through
engine.cli.main.main."""

from __future__ import annotations

import json

import pytest

from engine.cli.main import main
from tiny_cosmos import save_tiny_cosmos
from tiny_wan import save_tiny_wan22_a14b, save_tiny_wan22_ti2v

FROM_A_FRAME = (
    "compare them from a first frame of yours in the studio's Compare or Diversity tab, "
    "or with `python -m engine sample --image FRAME.png`"
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


def test_an_image_to_video_base_outside_the_shapes_world_is_refused_in_one_line(prompts, tmp_path, capsys):
    base = save_tiny_cosmos(tmp_path / "cosmos")
    code, err = _evaluate(capsys, base, "--models", "teacher@2", "--prompts", str(prompts))
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"error: --base {base} is an image-to-video model: evaluate measures those on the shapes world only, "
        f"where each prompt's first frame comes from the world; {FROM_A_FRAME}"
    )
