"""What a visitor of a public studio (a Space, a shared link, a non-local host) may make the server read or
fetch: folders only under the allowed roots (also those a data-set config names), hub models only from the
allow-list, data workers capped at the CPU count, Compare and Diversity refusing a base or feature model
before anything is sampled or queued; a local studio takes paths and hub ids as typed (studio/access.py)."""

from __future__ import annotations

import os

import pytest

from form_helpers import captioned_clips, form
from studio import access_from_env, distill, is_public
from studio.access import LOCAL


def test_who_can_reach_the_studio():
    assert not is_public("127.0.0.1", False, {}) and not is_public("localhost", False, {})
    assert is_public("0.0.0.0", False, {}) and is_public("127.0.0.1", True, {})
    assert is_public("127.0.0.1", False, {"SPACE_ID": "me/studio"})


def test_a_public_studio_refuses_folders_outside_the_allowed_roots(data_dir, tmp_path):

    outside = tmp_path / "videos"
    outside.mkdir()
    public = access_from_env(data_dir, True, {})
    message = distill.check(data_dir, form(data_source="folder", data_folder=str(outside)), None, None, public)
    assert message == (
        f"**Cannot launch:** {outside} is outside the folders this studio may read "
        f"({data_dir.resolve() / 'uploads'}); put the data folder there, or ask the owner to add its "
        "folder to DFD_STUDIO_ALLOWED_PATHS."
    )
    link = data_dir / "uploads" / "link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)  # inside by name, outside once resolved
    assert "is outside the folders" in distill.check(
        data_dir, form(data_source="folder", data_folder=str(link)), None, None, public
    )
    listed = access_from_env(data_dir, True, {"DFD_STUDIO_ALLOWED_PATHS": os.pathsep.join([str(tmp_path), "/nope"])})
    assert listed.check_path(str(outside)) == outside.resolve()
    passed = distill.check(data_dir, form(data_source="folder", data_folder=str(outside)), None, None, listed)
    assert "holds 0 videos and none with a caption" in passed  # past the roots: on to the folder's own check


def test_a_public_studio_confines_the_folders_a_data_set_config_names(data_dir, tmp_path):

    outside = captioned_clips(tmp_path / "videos")
    public = access_from_env(data_dir, True, {})
    roots = (
        f"({data_dir.resolve() / 'uploads'}); put the data folder there, or ask the owner to add its folder to "
        "DFD_STUDIO_ALLOWED_PATHS"
    )
    sets = data_dir / "uploads" / "sets"
    sets.mkdir(parents=True)
    (sets / "link").symlink_to(outside)
    for name, folder, named in [
        ("absolute.yaml", str(outside), outside),
        ("relative.yaml", "../../../videos", outside),
        ("link.yaml", "link", outside),  # inside by name, outside once resolved
        ("absent.yaml", str(tmp_path / "absent"), tmp_path / "absent"),
    ]:  # refused, not probed
        config = sets / name
        config.write_text(f"folders:\n  - path: {folder}\n")
        refused = f"{config}: folders[0].path {named.resolve()} is outside the folders this studio may read {roots}."
        values = form(data_source="folder", data_folder=str(config))
        assert distill.check(data_dir, values, None, None, public) == f"**Cannot launch:** {refused}"
        assert distill.folder_note(str(config), "shapes-tiny", access=public) == f"**Data refused:** {refused}"
        assert distill.check(data_dir, values, None, None, LOCAL).startswith(
            "**Ready.**" if name != "absent.yaml" else f"**Cannot launch:** {config}: folders[0].path"
        )
    elsewhere = tmp_path / "dataset.yaml"  # the config file itself outside the roots
    elsewhere.write_text("folders: [videos]\n")
    assert (
        distill.check(data_dir, form(data_source="folder", data_folder=str(elsewhere)), None, None, public)
        == f"**Cannot launch:** {elsewhere} is outside the folders this studio may read {roots}."
    )

    upload = tmp_path / "sent.yaml"
    upload.write_text(f"folders:\n  - path: {outside}\n")
    saved, note = distill.upload_data_config(data_dir, str(upload), access=public)
    assert (
        saved is None
        and note
        == f"**Config refused:** sent.yaml: folders[0].path {outside.resolve()} is outside "
        f"the folders this studio may read {roots}."
    )
    listed = access_from_env(data_dir, True, {"DFD_STUDIO_ALLOWED_PATHS": str(tmp_path)})
    saved, note = distill.upload_data_config(data_dir, str(upload), access=listed)
    assert note == "**Received** sent.yaml: 2 usable clips of 2 videos."
    message, job_id = distill.launch(
        data_dir, form(data_source="folder", data_folder=saved, batch_size=2), None, None, listed
    )
    assert message.startswith("**Queued**"), message


def test_a_public_studio_refuses_a_base_folder_outside_the_roots(data_dir, mini_teacher_dir):

    public = access_from_env(data_dir, True, {})
    message = distill.check(data_dir, form(base=str(mini_teacher_dir)), None, None, public)
    assert message.startswith(f"**Cannot launch:** {mini_teacher_dir} is outside the folders this studio may read")
    assert distill.check(data_dir, form(base=str(mini_teacher_dir)), None, None, LOCAL).startswith("**Ready.**")


def test_a_public_studio_fetches_only_the_allowed_hub_models(data_dir):

    public = access_from_env(data_dir, True, {})
    message, job_id = distill.launch(data_dir, form(base="someone/huge-model"), None, None, public)
    assert job_id is None and message == (
        "**Cannot launch:** someone/huge-model is not among the hub models this studio may fetch "
        "(Wan-AI/Wan2.1-T2V-1.3B-Diffusers); pick one of those, or ask the owner to add it to "
        "DFD_STUDIO_ALLOWED_MODELS."
    )
    assert distill.check(data_dir, form(base="shapes-tiny"), None, None, public).startswith("**Ready.**")
    owners = access_from_env(data_dir, True, {"DFD_STUDIO_ALLOWED_MODELS": "Wan-AI/*, me/one"})
    owners.check_model("Wan-AI/Wan2.1-T2V-14B-Diffusers")
    owners.check_model("me/one")
    with pytest.raises(ValueError, match="not among the hub models"):
        owners.check_model("me/two")


def test_a_public_studio_caps_data_workers_at_the_machines_cpu_count(data_dir, monkeypatch):
    from engine.jobs import list_jobs

    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    clips = captioned_clips(data_dir / "uploads" / "videos")  # where uploads go: a public studio may read it
    values = dict(data_source="folder", data_folder=str(clips), batch_size=2)
    public = access_from_env(data_dir, True, {})
    message, job_id = distill.launch(data_dir, form(**values, data_workers=4), None, None, public)
    assert job_id is None and message == (
        "**Cannot launch:** data_workers 4 is more than this public studio allows: "
        "at most 3, the number of CPUs of this machine."
    )
    assert list_jobs(data_dir) == []
    assert distill.check(data_dir, form(**values, data_workers=3), None, None, public).startswith("**Ready.**")
    assert distill.check(data_dir, form(**values, data_workers=32), None, None, LOCAL).startswith("**Ready.**")
    message, job_id = distill.launch(data_dir, form(**values, data_workers=3), None, None, public)
    assert job_id is not None and list_jobs(data_dir)[0].config["data_workers"] == 3


def test_a_local_studio_takes_paths_and_hub_ids_as_typed(data_dir, tmp_path):
    local = access_from_env(data_dir, False, {})
    assert local.models is None and local.check_path(str(tmp_path)) == tmp_path
    local.check_model("anyone/any-model")
    limited = access_from_env(data_dir, False, {"DFD_STUDIO_ALLOWED_MODELS": "me/*"})
    with pytest.raises(ValueError, match="not among the hub models"):
        limited.check_model("anyone/any-model")


# --- Compare and Diversity: the same confinement as the Distill form ---------------------------------------


def _no_sampling(monkeypatch):
    """Any sampling or hub fetch fails the test: a refused request must stop before both."""
    import huggingface_hub

    import engine

    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("a refused request was sampled"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("a refused id was fetched"))


def test_compare_refuses_a_base_a_visitor_may_not_name_before_sampling_or_queuing(
    data_dir, mini_teacher_dir, monkeypatch
):
    import gradio as gr

    import engine.jobs as jobs_api
    from studio import compare
    from studio.files import public_folder

    _no_sampling(monkeypatch)
    public, shown = access_from_env(data_dir, True, {}), public_folder(data_dir)
    with pytest.raises(ValueError, match=f"^{mini_teacher_dir} is outside the folders this studio may read"):
        compare.compare(data_dir, shown, str(mini_teacher_dir), "a red circle", 1, None, None, access=public)
    with pytest.raises(ValueError, match="^someone/huge-model is not among the hub models this studio may fetch"):
        compare.queue(data_dir, shown, "someone/huge-model", "a red circle", 1, None, None, 50, 5.0, access=public)
    assert jobs_api.list_jobs(data_dir) == []  # nothing queued

    with gr.Blocks():
        tab = compare.build(data_dir, shown, "shapes-tiny", public)
    with pytest.raises(gr.Error, match="someone/huge-model is not among the hub models"):
        tab["on_run"]("someone/huge-model", "a red circle", 1, None, None, 50, 5.0, True)
    assert [u["choices"] for u in tab["refresh_students"](str(mini_teacher_dir), None, None)] == [[], []]
    note = tab["on_load"](str(mini_teacher_dir), "a red circle", 1, None, None, 50, 5.0)[-1]
    assert note.startswith(f"Could not sample: {mini_teacher_dir} is outside the folders this studio may read")


def test_diversity_refuses_bases_and_feature_models_a_visitor_may_not_name(
    data_dir, tiny_wan_dir, tmp_path, monkeypatch
):
    import shutil

    import gradio as gr

    from studio import diversity, measures
    from studio.files import public_folder
    from test_features import save_tiny_encoders

    encoders = save_tiny_encoders(tmp_path / "encoders")  # outside the data folder
    base = shutil.copytree(tiny_wan_dir, data_dir / "uploads" / "wan")  # inside: a base the studio may read
    monkeypatch.delenv(measures.FEATURES_ENV, raising=False)
    _no_sampling(monkeypatch)
    public, shown = access_from_env(data_dir, True, {}), public_folder(data_dir)

    def plan(base_name, features):
        return diversity.plan(
            data_dir, shown, str(base_name), "a cat", 2, ["teacher"], features=features, access=public
        )

    with pytest.raises(ValueError, match=f"^{tiny_wan_dir} is outside the folders this studio may read"):
        plan(tiny_wan_dir, "")
    with pytest.raises(
        ValueError,
        match=(
            "^the clip model in Feature models: openai/clip-vit-large-patch14 is not "
            "among the hub models this studio may fetch"
        ),
    ):
        plan(base, "clip:openai/clip-vit-large-patch14")
    with pytest.raises(
        ValueError,
        match=(
            f"^the dinov2 model in Feature models: {encoders / 'dinov2'} is outside "
            "the folders this studio may read .*put the model folder there"
        ),
    ):
        plan(base, f"dinov2:{encoders / 'dinov2'}")
    assert plan(base, "").features == ""  # no feature models: nothing to check

    owners = f"dinov2:{encoders / 'dinov2'}"  # the app's own DFD_STUDIO_FEATURES is the owner's choice: it passes
    monkeypatch.setenv(measures.FEATURES_ENV, owners)
    assert plan(base, owners).features == owners and plan(base, None).features == owners
    with pytest.raises(ValueError, match="the clip model in Feature models: .* is outside the folders"):
        plan(base, f"{owners},clip:{encoders / 'clip'}")

    listed = access_from_env(data_dir, True, {"DFD_STUDIO_ALLOWED_MODELS": "openai/*"})
    monkeypatch.undo()  # hub fetches allowed again: an allowed id goes on to the engine's reachability check
    with pytest.raises(
        ValueError, match="clip model openai/clip-vit-large-patch14 in Feature models cannot be reached"
    ):
        diversity.plan(
            data_dir,
            shown,
            str(base),
            "a cat",
            2,
            ["teacher"],
            features="clip:openai/clip-vit-large-patch14",
            access=listed,
        )

    with gr.Blocks():
        tab = diversity.build(data_dir, shown, "shapes-tiny", public)
    with pytest.raises(gr.Error, match="the clip model in Feature models: openai/x is not among the hub models"):
        tab["on_run"](str(base), "a cat", 2, ["teacher"], True, "clip:openai/x")
    assert tab["refresh_models"](str(tiny_wan_dir), ["teacher"])["choices"] == []
