"""The Compare tab's callbacks, called directly with real parts: a real SQLite data folder, the tiny shapes
teacher of the test fixtures and its one-step students (conftest `mini_students`): teacher and students side by
side, the teacher's CFG, the students' lists, refusals, a reload, a Wan base left to the worker, and each
clip's own figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine
from engine.evaluation import clip_metrics as engine_metrics
from lineup_helpers import (  # noqa: F401 (small_wan: fixture)
    small_wan,
)
from studio import compare, compare_plan, lineup, measures
from studio.files import public_folder

# --- Compare --------------------------------------------------------------------------------------------


def test_compare_shows_teacher_dmd2_and_dfd_side_by_side_with_nfe_and_time(data_dir, mini_students, mini_teacher_dir):
    base, public = str(mini_teacher_dir), public_folder(data_dir)
    assert compare.student_choices(data_dir, base, "dmd2") == [("DMD2 (shipped)", "dmd2")]

    result = compare.compare(data_dir, public, base, "a red circle", 3, "dmd2", "dfd", steps=3, guidance=5.0)

    for slot in compare.SLOTS:
        assert Path(result.videos[slot]).is_relative_to(public) and Path(result.videos[slot]).stat().st_size > 0
    assert "NFE 6" in result.captions["teacher"] and "NFE 4" in result.captions["dmd2"]
    assert result.captions["dfd"].startswith("**DFD (shipped) · 4 steps** · NFE 4 · ")
    from engine.media.video import read_mp4

    assert read_mp4(result.composite).shape[0] == read_mp4(result.videos["teacher"]).shape[0]  # in step

    again = compare.compare(data_dir, public, base, "a red circle", 3, "dmd2", "dfd", steps=3, guidance=5.0)
    assert again.composite == result.composite  # cached: same settings and weights, same files


def test_compare_without_students_shows_the_teacher_and_says_how_to_get_students(data_dir, mini_teacher_dir):
    result = compare.compare(
        data_dir, public_folder(data_dir), str(mini_teacher_dir), "a shape", 0, None, None, steps=2
    )
    assert result.videos.get("dmd2") is None and "No DMD2 student" in result.captions["dmd2"]
    assert Path(result.videos["teacher"]).is_file()
    with pytest.raises(ValueError, match="the prompt is empty"):
        compare.compare(data_dir, public_folder(data_dir), str(mini_teacher_dir), " ", 0, None, None)
    with pytest.raises(ValueError, match="no student 'j-gone'"):
        compare.compare(data_dir, public_folder(data_dir), str(mini_teacher_dir), "a shape", 0, "j-gone", None)


def _compare_tab(data_dir, base):
    import gradio as gr

    with gr.Blocks():
        return compare.build(data_dir, public_folder(data_dir), base)


def test_the_teacher_cfg_starts_at_the_cfg_the_shipped_students_were_distilled_with(data_dir, monkeypatch):
    """shapes-tiny's shipped students learnt from the teacher at CFG 3 (their run configs say so); the teacher
    beside them is sampled at 3, not the sampler's 5, and the slider says why."""
    from conftest import ROOT

    monkeypatch.setattr("engine.models.students.SHIPPED_DIR", ROOT / "engine" / "assets" / "students")  # the repo's
    shipped = {s.name: engine.training_guidance(s.lora_dir) for s in engine.shipped_students()}
    assert shipped["dmd2"] == shipped["dfd"] == 3.0
    tab = _compare_tab(data_dir, "shapes-tiny")
    assert tab["guidance"].value == 3.0 and "distilled from the teacher at CFG 3" in tab["guidance"].info
    update = tab["follow_students"]("shapes-tiny", "dmd2", None)
    assert update["value"] == 3.0 and "set to 3" in update["info"]
    assert tab["follow_students"]("shapes-tiny", None, None)["value"] == lineup.DEFAULT_GUIDANCE  # no student


def test_opening_compare_lists_the_students_again_leaving_a_listed_one_as_it_is(data_dir, monkeypatch):
    """Opening the tab sends no value for a box whose student is still listed: opened while a reload's restore
    is on its way, it would otherwise put back the student from before the reload over the restored one."""
    from conftest import ROOT

    monkeypatch.setattr("engine.models.students.SHIPPED_DIR", ROOT / "engine" / "assets" / "students")  # the repo's
    tab = _compare_tab(data_dir, "shapes-tiny")
    listed = tab["refresh_students"]("shapes-tiny", None, None)
    assert listed[0]["value"] and listed[1]["value"]
    dmd2_u, dfd_u = tab["list_students"]("shapes-tiny", listed[0]["value"], "no-such-student")
    assert "value" not in dmd2_u and dmd2_u["choices"] == listed[0]["choices"]
    assert dfd_u["value"] == listed[1]["value"]  # one no longer listed gives way to the first listed


def test_students_of_different_training_cfgs_are_each_named(
    data_dir, mini_students, mini_teacher_dir, tmp_path, monkeypatch
):
    from conftest import copy_student

    shipped = tmp_path / "shipped"
    copy_student(mini_students / "dmd2", shipped / "dmd2")
    copy_student(mini_students / "dfd", shipped / "dfd")
    config = json.loads((shipped / "dfd" / "lora_config.json").read_text())
    (shipped / "dfd" / "lora_config.json").write_text(json.dumps({**config, "guidance": 2.5}))  # the LoRA's own wins
    monkeypatch.setattr("engine.models.students.SHIPPED_DIR", shipped)
    base = str(mini_teacher_dir)
    assert engine.training_guidance(shipped / "dmd2") == 5.0  # from the run's distill_config.json beside it
    assert lineup.teacher_cfg(data_dir, base, ["dfd"]) == (
        2.5,
        "the students were distilled from the teacher at CFG 2.5",
    )
    value, why = lineup.teacher_cfg(data_dir, base, ["dmd2", "dfd"])
    assert value == 5.0 and why == (
        "the students were distilled from different teachers: DMD2 (shipped) at CFG 5, DFD (shipped) at CFG 2.5"
    )
    assert lineup.teacher_cfg(data_dir, base, ["gone"])[0] == lineup.DEFAULT_GUIDANCE
    assert lineup.bases(data_dir)[:2] == ["shapes-tiny", "shapes-tiny-i2v"] and base in lineup.bases(data_dir)


def test_a_refused_compare_is_one_lasting_line_and_touches_no_output(data_dir):
    tab = _compare_tab(data_dir, "shapes-tiny")
    shown = tab["on_click"]("shapes-tiny", "  ", 1, "dmd2", "dfd", 50, 3.0, False, None, 0)
    *kept, error, last = shown
    assert error == "**Cannot compare:** the prompt is empty; pick one of the world's prompts or type one"
    assert all(u == {"__type__": "update"} for u in [*kept, last])  # nothing marked, nothing forgotten


def test_a_reload_shows_the_last_compare_again_from_the_cache(data_dir, mini_students, mini_teacher_dir, monkeypatch):
    base = str(mini_teacher_dir)
    monkeypatch.setattr(engine, "accelerator_present", lambda: False)
    tab = _compare_tab(data_dir, base)
    shown = tab["on_click"](base, "a red circle", 2, "dmd2", None, 3, 2.0, False, None, 0)
    last, composite = json.loads(shown[-1]), shown[len(tab["outputs"]) - 2]
    assert (
        shown[-2] == ""
        and last["job_ids"] is None
        and last["request"][:7] == [base, "a red circle", 2, "dmd2", None, 3, 2.0]
    )
    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("a remembered result is read from the cache"))
    opened = tab["open_page"](shown[-1], base, "a cat", 1, None, None, 50, 5.0)
    form, outputs = opened[:8], opened[8:-2]
    assert form[:3] == [base, "a red circle", 2] and form[3]["value"] == "dmd2" and form[5:7] == [3, 2.0]
    assert outputs[-2] == composite and "seed 2" in outputs[-1]
    fresh = tab["open_page"]({"request": ["no", "such"]}, base, "", 1, None, None, 50, 5.0)  # not a request any more
    assert fresh[-3].startswith("Could not sample: the prompt is empty")  # the first-open comparison, as before


def test_the_compare_tab_leaves_a_wan_base_to_the_worker_when_the_page_opens(data_dir, small_wan):
    import gradio as gr

    with gr.Blocks():
        tab = compare.build(data_dir, public_folder(data_dir), str(small_wan))
    assert tab["as_jobs"].value is True
    shown = tab["on_load"](str(small_wan), "a cat", 1, None, None, 50, 5.0)
    assert shown[2] is None and "Press Compare" in shown[-1]  # nothing sampled in the web process


# --- Compare: each clip's own figures ------------------------------------------------------------------


def test_compare_shows_each_clips_own_adherence_and_colour_figures(data_dir, mini_students, mini_teacher_dir):
    base, public = str(mini_teacher_dir), public_folder(data_dir)
    result = compare.compare(data_dir, public, base, "a red circle moving left", 2, "dmd2", "dfd", steps=3)

    meta = json.loads((Path(result.composite).parent / "meta.json").read_text())
    figures = {slot: meta["slots"][slot]["figures"] for slot in compare.SLOTS}
    expected = {"saturation", "contrast", "motion", "sharpness"} | (
        {"named correct"} if engine_metrics.recognizer() is not None else set()
    )
    assert all(set(f) == expected for f in figures.values()), figures
    for slot in compare.SLOTS:  # shown under the clip, in the order of compare_plan.FIGURES
        assert result.captions[slot].split("  \n")[1] == " · ".join(f"{k} {v:.3g}" for k, v in figures[slot].items())
    assert figures["teacher"] != figures["dmd2"]  # each slot measures its own clip

    clip = lineup.render(lineup.teacher(base), "a red circle moving left", [2], steps=3).clips  # the same clip again
    again, _ = measures.clip_metrics(base, "a red circle moving left", clip)
    assert {k: again[k] for k in figures["teacher"]} == figures["teacher"]
    assert "Under each clip: its own figures" in result.note and "DFD_STUDIO_FEATURES" not in result.note


def test_compare_on_a_wan_base_gives_each_clips_clip_adherence_with_the_apps_feature_models(
    data_dir, small_wan, tmp_path, monkeypatch
):
    from test_features import save_tiny_encoders

    encoders = save_tiny_encoders(tmp_path)
    monkeypatch.setattr(engine, "accelerator_present", lambda: False)
    monkeypatch.delenv(measures.FEATURES_ENV, raising=False)
    public = public_folder(data_dir)
    without = compare.compare(data_dir, public, str(small_wan), "a cat", 1, None, None, steps=1)
    assert "adherence" not in without.captions["teacher"] and compare_plan.NO_ADHERENCE in without.note

    monkeypatch.setenv(measures.FEATURES_ENV, f"clip:{encoders / 'clip'},dinov2:{encoders / 'dinov2'}")
    monkeypatch.setattr(engine_metrics, "encoder", lambda spec: pytest.fail("one clip has no diversity to encode"))
    shown = compare.compare(data_dir, public, str(small_wan), "a cat", 1, None, None, steps=1)
    assert shown.composite != without.composite  # measured by other models: cached apart
    figures = shown.captions["teacher"].split("  \n")[1]
    assert figures.startswith("adherence ") and -1 <= float(figures.split(" · ")[0].split()[1]) <= 1
    assert compare_plan.NO_ADHERENCE not in shown.note
