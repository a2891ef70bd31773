"""The Compare and Diversity tabs' callbacks, called directly with real parts: a real SQLite data folder, the
tiny shapes teacher of the test fixtures and its one-step students (conftest `mini_students`), in this process
and through real `sample` jobs run by the real worker in its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
import engine.jobs as jobs_api
import storage
from engine.evaluation import clip_metrics as engine_metrics
from studio import compare, compare_plan, diversity, lineup, measures
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


def _run_worker_until_idle(data_dir) -> None:
    """The real worker, in its own process, until the queue is empty."""
    worker = subprocess.run(
        [sys.executable, "-m", "engine", "worker", "--data-dir", str(data_dir), "--exit-when-idle", "--poll", "0.2"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]


def test_compare_and_diversity_through_sample_jobs_wait_for_the_worker_then_show_what_the_in_process_path_would(
    data_dir, mini_students, mini_teacher_dir
):
    # both tabs' jobs in one queue, so one worker process serves them (each worker start costs ~8 s here)
    base, public = str(mini_teacher_dir), public_folder(data_dir)
    request = (base, "a blue square", 2, "dmd2", None, 2, 5.0)
    result, pending = compare.queue(data_dir, public, *request)
    assert result is None and len(pending.job_ids) == 2
    assert [jobs_api.get(data_dir, i).kind for i in pending.job_ids] == ["sample", "sample"]
    assert compare.poll(data_dir, public, pending) == (None, "0 of 2 sample jobs done; the worker runs one at a time.")
    grid_request = (base, "a green shape", 2, ["teacher", "dfd"], 2, 5.0)
    grid, grid_pending = diversity.queue(data_dir, public, *grid_request)
    assert grid is None and [jobs_api.get(data_dir, i).kind for i in grid_pending.job_ids] == ["sample", "sample"]
    assert diversity.poll(data_dir, public, grid_pending)[0] is None

    _run_worker_until_idle(data_dir)

    result, progress = compare.poll(data_dir, public, pending)
    assert progress == "" and Path(result.composite).is_file()
    assert "NFE 4" in result.captions["teacher"] and "NFE 4" in result.captions["dmd2"]
    assert "model loading included" in result.note
    cached, again = compare.queue(data_dir, public, *request)  # the same request later: no new jobs
    assert again is None and cached.composite == result.composite

    grid, progress = diversity.poll(data_dir, public, grid_pending)
    assert progress == "" and Path(grid.grid_video).is_file() and Path(grid.still_image).is_file()
    assert list(grid.table.model) == ["teacher", "DFD (shipped)"] and list(grid.table.NFE) == [4, 4]
    cached, again = diversity.queue(data_dir, public, *grid_request)
    assert again is None and cached.grid_video == grid.grid_video
    in_process = diversity.run(data_dir, public, *grid_request)  # same settings and weights: the same cached files
    assert in_process.grid_video == grid.grid_video


def test_a_failed_sample_job_stops_the_wait_with_its_reason(data_dir, mini_teacher_dir):
    from studio import sample_jobs

    [job_id] = sample_jobs.submit(data_dir, [lineup.teacher(str(mini_teacher_dir))], "a shape", [1], 2, 5.0)
    db = storage.open_database(data_dir)
    storage.jobs.claim_next(db)
    storage.jobs.transition(db, job_id, "failed", error="out of memory on the accelerator")
    with pytest.raises(ValueError, match=f"the sample job {job_id} is failed \\(out of memory on the accelerator\\)"):
        sample_jobs.collect(data_dir, [job_id])


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


# --- Diversity ------------------------------------------------------------------------------------------


def test_diversity_writes_a_video_grid_a_still_grid_and_a_metrics_table(data_dir, mini_students, mini_teacher_dir):
    base, public = str(mini_teacher_dir), public_folder(data_dir)
    keys = [k for _, k in diversity.model_choices(data_dir, base)]
    assert keys == ["teacher", "dmd2", "dfd"]

    result = diversity.run(data_dir, public, base, "a red shape", 3, keys, steps=2)

    assert Path(result.grid_video).is_relative_to(public) and Path(result.still_image).suffix == ".png"
    assert list(result.table.model) == ["teacher", "DMD2 (shipped)", "DFD (shipped)"]
    assert list(result.table.NFE) == [4, 4, 4]
    if engine_metrics.recognizer() is None:
        assert result.note == engine_metrics.NO_RECOGNIZER and result.table.diversity.isna().all()
    else:
        assert result.table.diversity.between(0, 1).all() and (result.table["modes covered"] >= 1).all()
        assert set(result.bars.metric) == {
            "diversity",
            "modes covered",
            "mode TV",
            "named correct",
            "saturation",
            "contrast",
            "motion",
            "sharpness",
        }  # a chart each, on its own axis
        assert result.modes == 3  # "a red shape" leaves 64 combinations free; 3 seeds show 3 at most
        headers = list(diversity._outputs(result)[2].columns)
        assert "modes covered ↑ (of 3)" in headers and "mode TV ↓" in headers and "diversity ↑" in headers
        assert "Modes covered is out of 3: the most 3 seeds of this prompt can show." in result.note


def test_diversity_explains_bad_requests(data_dir, mini_teacher_dir):
    public = public_folder(data_dir)
    with pytest.raises(ValueError, match="no model is ticked"):
        diversity.run(data_dir, public, str(mini_teacher_dir), "a shape", 8, [])
    with pytest.raises(ValueError, match="between 2 and 16"):
        diversity.run(data_dir, public, str(mini_teacher_dir), "a shape", 1, ["teacher"])


def test_feature_models_come_from_the_page_with_the_apps_setting_as_their_default(monkeypatch, tmp_path):
    from test_features import save_tiny_encoders

    encoders = save_tiny_encoders(tmp_path)
    monkeypatch.setattr(engine, "world_of", lambda base: None)
    monkeypatch.delenv(measures.FEATURES_ENV, raising=False)
    clips = np.random.default_rng(0).integers(0, 255, (3, 5, 16, 16, 3), dtype=np.uint8)
    values, note = measures.clip_metrics("some/video-model", "a cat", clips)
    assert note == measures.NO_FEATURES and "Feature models" in note
    assert values["diversity"] is None and values["saturation"] > 0 and values["motion"] > 0

    monkeypatch.setenv(measures.FEATURES_ENV, f"dinov2:{encoders / 'dinov2'}")
    assert measures.default_features() == f"dinov2:{encoders / 'dinov2'}"
    values, note = measures.clip_metrics("some/video-model", "a cat", clips)  # None: the app's default
    assert values["diversity"] > 0 and note.startswith("Diversity by dinov2:") and "adherence" not in values

    typed = f"clip:{encoders / 'clip'},dinov2:{encoders / 'dinov2'}"  # what the page's box says wins
    values, _ = measures.clip_metrics("some/video-model", "a cat", clips, typed)
    assert values["diversity"] == values["diversity clip"] and values["diversity dinov2"] > 0
    assert -1 <= values["adherence"] <= 1


def test_a_feature_model_that_cannot_be_reached_is_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"^the dinov2 model .*nowhere in Feature models is not a model folder"):
        measures.check_features(f"dinov2:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="bad feature model 'siglip:x' in Feature models"):
        measures.check_features("siglip:x")
    with pytest.raises(ValueError, match="dinov2 model nobody/no-such-encoder in Feature models cannot be reached"):
        measures.check_features("dinov2:nobody/no-such-encoder")  # HF_HUB_OFFLINE: not in the cache


@pytest.fixture(scope="module")
def small_wan(tiny_wan_dir, tmp_path_factory):
    """The tiny random Wan pipeline at 5 frames of 32 x 32, the size its dfd_studio.json names."""
    import json
    import shutil

    folder = tmp_path_factory.mktemp("small-wan") / "pipe"
    shutil.copytree(tiny_wan_dir, folder)
    (folder / "dfd_studio.json").write_text(json.dumps({"num_frames": 5, "height": 32, "width": 32, "fps": 16}))
    return folder


def _diversity_tab(data_dir, base):
    import gradio as gr

    with gr.Blocks():
        return diversity.build(data_dir, public_folder(data_dir), base)


def test_the_diversity_tab_measures_a_wan_base_with_the_feature_models_typed_on_the_page(
    data_dir, small_wan, tmp_path, monkeypatch
):
    from test_features import save_tiny_encoders

    encoders = save_tiny_encoders(tmp_path)
    monkeypatch.setattr(engine, "accelerator_present", lambda: False)
    monkeypatch.setattr(
        engine_metrics, "recognizer", lambda: pytest.fail("a non-shapes base must not need the shapes recognizer")
    )
    base = str(small_wan)
    tab = _diversity_tab(data_dir, base)
    assert tab["as_jobs"].value is True  # a base outside the built-in world goes to the worker by default
    assert tab["refresh_placement"]("shapes-tiny")["value"] is False  # the built-in world on a CPU: here
    features = f"clip:{encoders / 'clip'},dinov2:{encoders / 'dinov2'}"

    shown = tab["on_run"](base, "a red circle", 2, ["teacher"], False, features)  # unticked: in this process

    table, charts, note = shown[2], dict(zip(diversity.BARS, shown[4:-3])), shown[-3]
    assert list(table.model) == ["teacher"] and table.NFE[0] == 100
    for column in (
        "diversity clip",
        "diversity dinov2",
        "adherence",
        "saturation",
        "saturation spread",
        "contrast",
        "motion",
    ):
        assert table[diversity.heading(column)].notna().all(), column
    assert "diversity clip ↑" in table and "adherence ↑" in table and "saturation" in table  # which way is better
    assert not [c for c in table if c.startswith("modes covered")] and note.startswith("Diversity by clip:")
    assert {m for m, chart in charts.items() if chart["visible"]} == {
        "diversity",
        "diversity clip",
        "diversity dinov2",
        "adherence",
        "saturation",
        "contrast",
        "motion",
        "sharpness",
    }
    assert "↑: higher is better" in note and "CFG 5" in note  # no student ticked: the sampler's CFG
    motion = table["motion"].max()  # its own axis, from zero to just over its bar: not a shared 0-1
    assert charts["motion"]["y_lim"] == [0.0, pytest.approx(motion * 1.15)]

    with pytest.raises(gr_error(), match="Feature models"):
        tab["on_run"](base, "a red circle", 2, ["teacher"], False, f"dinov2:{tmp_path / 'nowhere'}")


def test_a_wan_base_never_samples_in_the_web_process_on_a_gpu(data_dir, small_wan, monkeypatch):
    monkeypatch.setattr(engine, "accelerator_present", lambda: True)
    tab = _diversity_tab(data_dir, str(small_wan))
    with pytest.raises(gr_error(), match="sampled by the worker on this machine's GPU.*tick Run as sample jobs"):
        tab["on_run"](str(small_wan), "a cat", 2, ["teacher"], False, "")
    shown = tab["on_run"](str(small_wan), "a cat", 2, ["teacher"], True, "")  # ticked: queued for the worker
    pending = shown[-2]
    assert [jobs_api.get(data_dir, i).kind for i in pending.job_ids] == ["sample"]
    assert jobs_api.get(data_dir, pending.job_ids[0]).config["base"] == str(small_wan)
    assert "Queued sample jobs" in shown[-3]


def test_the_compare_tab_leaves_a_wan_base_to_the_worker_when_the_page_opens(data_dir, small_wan):
    import gradio as gr

    with gr.Blocks():
        tab = compare.build(data_dir, public_folder(data_dir), str(small_wan))
    assert tab["as_jobs"].value is True
    shown = tab["on_load"](str(small_wan), "a cat", 1, None, None, 50, 5.0)
    assert shown[2] is None and "Press Compare" in shown[-1]  # nothing sampled in the web process


def gr_error():
    import gradio as gr

    return gr.Error


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


def test_one_clip_has_no_diversity_but_its_adherence_and_colour(tmp_path, monkeypatch):
    from test_features import save_tiny_encoders

    encoders = save_tiny_encoders(tmp_path)
    clip = np.random.default_rng(1).integers(0, 255, (1, 5, 16, 16, 3), dtype=np.uint8)
    monkeypatch.setattr(engine_metrics, "encoder", lambda spec: pytest.fail("one clip has no diversity to encode"))
    values, note = engine_metrics.clip_metrics(
        clip, "a cat", None, f"clip:{encoders / 'clip'},dinov2:{encoders / 'dinov2'}"
    )
    assert values["diversity"] is None and "diversity clip" not in values and -1 <= values["adherence"] <= 1
    assert values["saturation"] > 0 and "one clip has no diversity" in note
    if engine_metrics.recognizer() is not None:
        shapes, _ = engine_metrics.clip_metrics(clip, "a red circle", "shapes")
        assert shapes["diversity"] is None and shapes["named correct"] in (0.0, 1.0)
