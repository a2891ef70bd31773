"""Image-to-video on the shapes world is measured from one first frame per prompt: every model and seed
starts from it, the real reference is the world's continuations of it, and only motion is a free mode."""

import json
import zlib

import numpy as np
import pytest

from engine.shapes import world


def test_mode_tv_takes_a_free_factors_true_frequencies_where_they_are_not_its_marginal():
    from engine.evaluation import metrics

    named = {"shape": "circle", "colour": "red", "background": "dark"}
    predicted = [{**named, "motion": m} for m in ("left", "left", "down", "down")]
    assert metrics.mode_tv(named, predicted) == pytest.approx(0.5 * (0.1 + 0.25 + 0.2 + 0.35))
    truth = {"motion": {"left": 0.5, "right": 0.0, "up": 0.0, "down": 0.5}}
    assert metrics.mode_tv(named, predicted, truth) == 0.0 and metrics.mode_coverage(named, predicted) == 2


def test_evaluate_samples_every_model_from_each_prompts_first_frame(mini_i2v_teacher, tmp_path):
    from engine.evaluation.evaluate import evaluate

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\na shape moving left\n")
    result = evaluate(["teacher@2"], str(prompts), seeds=3, base=str(mini_i2v_teacher))
    assert result["task"] == "i2v" and set(result["models"]) == {"real", "teacher@2"}
    for prompt in ("a red circle", "a shape moving left"):
        first = world.conditioning_clip(prompt)
        assert first == world.sample_clips(world.parse_caption(prompt), 1, zlib.crc32(prompt.encode()) + 7919)[1][0]
        real, model = result["per_prompt"]["real"][prompt], result["per_prompt"]["teacher@2"][prompt]
        assert real["first_frame_of"] == model["first_frame_of"] == json.loads(json.dumps(vars(first)))
        assert real["first_frame_psnr"] > 100  # the continuations start exactly on the frame
        posterior, _ = world.motion_posterior(first)
        assert {c["motion"] for c in real["clip_factors"]} <= {m for m, p in posterior.items() if p > 0} or real[
            "frame_consistency"
        ] < 1  # the recognizer's reading, not the truth
        assert 0 <= model["frame_consistency"] <= 1 and np.isfinite(model["first_frame_psnr"])
        assert model["mode_coverage"] <= 3  # motions only: shape, colour and background are the frame's
    assert result["per_prompt"]["teacher@2"]["a shape moving left"]["mode_tv"] is None  # motion named: no free mode
    assert result["models"]["teacher@2"]["first_frame_psnr"] is not None


def test_an_i2v_study_trains_its_students_for_the_i2v_task(mini_i2v_teacher, tmp_path):
    from engine.evaluation.study_plan import plan

    runs = plan(tmp_path, [0], str(mini_i2v_teacher), 10, 2, ["dfd-p0.5"])
    assert [r.name for r in runs] == ["dmd2", "dfd-p0.5"]
    assert all(r.command[r.command.index("--task") + 1] == "i2v" for r in runs)
    assert "--task" not in plan(tmp_path, [0], "shapes-tiny", 10, 2, ["dfd-p0.5"])[0].command
    causal = plan(tmp_path, [0], "shapes-tiny", 10, 2, ["dfd-p0.5"], causal=True)
    assert all(r.command[r.command.index("--task") + 1] == "ar" for r in causal)
    with pytest.raises(ValueError, match="causal \\(ar\\) students need a text-to-video one"):
        plan(tmp_path, [0], str(mini_i2v_teacher), 10, 2, ["dfd-p0.5"], causal=True)


def test_a_frame_replacement_base_is_studied_as_i2v_by_its_record(tmp_path):
    """A frame-replacement teacher keeps the text-to-video channels; its dfd_studio.json (task i2v, its frame law)
    is what makes the study train image-to-video students, as evaluate reads it."""
    from engine.evaluation.study_plan import plan
    from engine.models.names import base_task, resolve_model

    shipped = resolve_model("shapes-tiny")[1]
    base = tmp_path / "ti2v"
    base.mkdir()
    for part in shipped.iterdir():  # the shipped teacher's files, linked, under a record of its own
        if part.name != "dfd_studio.json":
            (base / part.name).symlink_to(part)
    meta = json.loads((shipped / "dfd_studio.json").read_text())
    (base / "dfd_studio.json").write_text(json.dumps({**meta, "task": "i2v", "i2v_frames": "mixed"}))
    assert base_task(str(base)) == "t2v"  # by its channels
    runs = plan(tmp_path / "study", [0], str(base), 10, 2, ["dfd-p0.5"])
    assert all(r.command[r.command.index("--task") + 1] == "i2v" for r in runs)
