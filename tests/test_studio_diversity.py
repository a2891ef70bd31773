"""The Diversity tab's callbacks, called directly with real parts: a real SQLite data folder, the tiny shapes
teacher of the test fixtures and its one-step students (conftest `mini_students`): the video and still grids
and the metrics table, bad requests, the feature models typed on the page, and a Wan base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine
import engine.jobs as jobs_api
from engine.evaluation import clip_metrics as engine_metrics
from lineup_helpers import (  # noqa: F401 (small_wan: fixture)
    small_wan,
)
from studio import diversity, measures
from studio.files import public_folder

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


def gr_error():
    import gradio as gr

    return gr.Error
