"""A Hugging Face Space stand-in: a writable /data-like folder, HF_HOME pointing into it, a stand-in of the
`spaces` package (ZeroGPU), the README front matter a Space reads, the login's backoff and the HF allow-list,
and what a visitor may make the server read or fetch."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import pytest
import yaml
from conftest import ROOT

import app
from studio import access_from_env, distill, is_public, zerogpu
from studio.access import LOCAL
from studio.auth import (LoginThrottle, PasswordLogin, allowed_hf_from_env, hf_gate, hf_user_allowed, launch_auth,
                         orgs_of)

# --- persistent storage --------------------------------------------------------------------------------

def test_data_and_hf_cache_go_to_the_persistent_folder_when_it_is_writable(tmp_path):
    env = {"DFD_STUDIO_PERSISTENT_DIR": str(tmp_path)}
    assert app.use_persistent_storage(env) == tmp_path
    assert env["HF_HOME"] == str(tmp_path / ".huggingface")
    assert app.default_data_dir(env) == tmp_path / "studio_data"

    own = {"DFD_STUDIO_PERSISTENT_DIR": str(tmp_path), "HF_HOME": "/somewhere/mine"}
    app.use_persistent_storage(own)
    assert own["HF_HOME"] == "/somewhere/mine"  # a user's own cache is never overridden


def test_without_persistent_storage_nothing_moves(tmp_path):
    env = {"DFD_STUDIO_PERSISTENT_DIR": str(tmp_path / "absent")}
    assert app.use_persistent_storage(env) is None and "HF_HOME" not in env
    assert app.default_data_dir(env) == Path("studio_data")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if not os.access(read_only, os.W_OK):  # root can write anywhere: then the check cannot be shown
            assert app.persistent_root({"DFD_STUDIO_PERSISTENT_DIR": str(read_only)}) is None
    finally:
        read_only.chmod(0o755)


def test_hf_home_is_set_before_huggingface_hub_is_imported(tmp_path):
    """In a fresh process as app.main runs: huggingface_hub, imported after, caches under the storage."""
    probe = ("import app, os\napp.use_persistent_storage()\nimport huggingface_hub.constants as c\n"
             "print(c.HF_HUB_CACHE)")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_HUB_CACHE")}
    env["DFD_STUDIO_PERSISTENT_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()).is_relative_to(tmp_path / ".huggingface")


# --- the README front matter -----------------------------------------------------------------------------

def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_front_matter_asks_for_what_this_app_needs_on_a_space():
    meta = front_matter()
    assert (meta["sdk"], meta["app_file"], meta["hf_oauth"]) == ("gradio", "app.py", True)
    assert meta["suggested_hardware"] in {h.value for h in huggingface_hub.SpaceHardware}
    assert not meta["suggested_hardware"].startswith(("cpu", "zero", "t4"))  # a GPU that fits DFD on 1.3B
    assert meta["suggested_storage"] in {s.value for s in huggingface_hub.SpaceStorage}
    assert meta["startup_duration_timeout"] == "1h"
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in meta["preload_from_hub"]
    assert "manage-repos" in meta["hf_oauth_scopes"]  # Publish creates the repo: write-repos cannot


# --- ZeroGPU, with a stand-in of the `spaces` package ---------------------------------------------------

STAND_IN = '''
calls = []

def GPU(fn=None, duration=60):
    def decorate(f):
        calls.append(("decorated", f.__name__))
        def wrapped(*args, **kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            calls.append(("gpu", seconds))
            return f(*args, **kwargs)
        return wrapped
    return decorate(fn) if fn is not None else decorate
'''


@pytest.fixture
def zero_gpu_space(tmp_path, monkeypatch):
    (tmp_path / "spaces.py").write_text(textwrap.dedent(STAND_IN))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    zerogpu._gpu_runner.cache_clear()
    yield __import__("spaces")
    zerogpu._gpu_runner.cache_clear()
    sys.modules.pop("spaces", None)


def test_on_zerogpu_sampling_runs_inside_spaces_gpu_with_a_duration_that_fits(zero_gpu_space):
    zerogpu.prepare()
    assert zero_gpu_space.calls == [("decorated", "_call")]  # once, at start-up
    result = zerogpu.on_gpu(lambda a, b=0: a + b, zerogpu.sampling_seconds(3, 50))(2, b=3)
    assert result == 5 and zero_gpu_space.calls[-1] == ("gpu", 330)  # 30 s + 2 s x 3 clips x 50 steps
    zerogpu.on_gpu(str, zerogpu.sampling_seconds(1, 4))(1)
    assert zero_gpu_space.calls[-1] == ("gpu", zerogpu.MIN_SECONDS)
    assert zerogpu.sampling_seconds(64, 50) == zerogpu.MAX_SECONDS
    assert zero_gpu_space.calls.count(("decorated", "_call")) == 1


def test_on_zerogpu_distill_explains_and_refuses_to_launch(zero_gpu_space, data_dir):
    from test_studio_distill import form

    message, job_id = distill.launch(data_dir, form(), None, None)
    assert job_id is None and message == "**Cannot launch:** " + zerogpu.TRAINING_NOTE
    assert "dedicated GPU" in distill.check(data_dir, form(), None, None)


def test_everywhere_else_nothing_changes(monkeypatch, tmp_path):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert zerogpu.on_gpu(len, 300) is len
    (tmp_path / "spaces.py").write_text(STAND_IN)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not zerogpu.on_zerogpu({"SPACES_ZERO_GPU": "false"}) and zerogpu.on_zerogpu({"SPACES_ZERO_GPU": "true"})
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    assert not zerogpu.on_zerogpu({"SPACES_ZERO_GPU": "true"})  # the flag without the package: an ordinary host


# --- password login: slowed repeated failures -----------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_repeated_wrong_passwords_lock_the_user_name_with_exponential_backoff(caplog):
    clock = Clock()
    login = PasswordLogin("dfd", "right", LoginThrottle(clock))
    with caplog.at_level(logging.WARNING, logger="dfd.studio.auth"):
        assert [login("dfd", "wrong") for _ in range(3)] == [False] * 3
    assert login.throttle.locked_for("dfd") == 1.0  # the 3rd failure: 2^0 s
    assert not login("dfd", "right")  # while locked even the right password is refused, unchecked
    clock.now += 1.0
    assert not login("dfd", "wrong")
    assert login.throttle.locked_for("dfd") == 2.0  # the 4th: 2^1 s
    for _ in range(10):
        clock.now += 61
        login("dfd", "wrong")
    assert login.throttle.locked_for("dfd") == 60.0  # capped at a minute
    assert login.throttle.locked_for("ann") == 0  # per user name
    clock.now += 60
    assert login("dfd", "right") and login.throttle.locked_for("dfd") == 0  # after the lock, the right one works
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures[0] == "studio login failed for user 'dfd' (1 failures in a row)"
    assert not any("wrong" in r.getMessage() or "right" in r.getMessage() for r in caplog.records)


def test_a_wrong_user_name_is_refused_too():
    login = PasswordLogin("dfd", "right", LoginThrottle(Clock()))
    assert not login("ann", "right") and login("dfd", "right")


# --- Sign in with Hugging Face, restricted -----------------------------------------------------------

def test_the_hf_allow_list_lets_in_listed_users_and_members_of_listed_orgs():
    allowed = allowed_hf_from_env({"DFD_STUDIO_ALLOWED_HF": " Alice, my-org ,"})
    assert allowed == {"alice", "my-org"}
    assert hf_user_allowed("alice", [], allowed) and hf_user_allowed("ALICE", [], allowed)
    assert hf_user_allowed("bob", ["other", "My-Org"], allowed)
    assert not hf_user_allowed("bob", ["other"], allowed) and not hf_user_allowed(None, ["my-org"], allowed)
    assert not hf_user_allowed("bob", [], frozenset())


def test_orgs_come_from_the_userinfo_or_else_the_tokens_whoami():
    assert orgs_of({"orgs": [{"preferred_username": "my-org"}]}, "t") == ["my-org"]
    assert orgs_of({}, "t", whoami=lambda token: {"orgs": [{"name": "my-org"}]}) == ["my-org"]
    assert orgs_of({}, None) == []

    def unreachable(token):
        raise OSError("no network")

    assert orgs_of({}, "t", whoami=unreachable) == []


class Request:
    def __init__(self, info=None):
        self.scope = {"session": {}}
        self.session = {"oauth_info": info} if info else {}


def test_the_hf_gate_answers_with_the_user_name_or_none():
    gate = hf_gate(frozenset({"my-org"}), whoami=lambda token: {"orgs": [{"name": "my-org"}] if token == "m" else []})
    assert gate(Request({"userinfo": {"preferred_username": "bob"}, "access_token": "m"})) == "bob"
    assert gate(Request({"userinfo": {"preferred_username": "eve"}, "access_token": "x"})) is None
    assert gate(Request()) is None  # not signed in


def test_launch_arguments_for_each_login():
    assert launch_auth({}) == {}
    assert isinstance(launch_auth({"DFD_STUDIO_PASSWORD": "p"})["auth"], PasswordLogin)
    with pytest.raises(ValueError, match="not both"):
        launch_auth({"DFD_STUDIO_PASSWORD": "p", "DFD_STUDIO_ALLOWED_HF": "alice"})
    with pytest.raises(ValueError, match="needs Sign in with Hugging Face"):
        launch_auth({"DFD_STUDIO_ALLOWED_HF": "alice"})
    on_space = launch_auth({"DFD_STUDIO_ALLOWED_HF": "alice", "SPACE_ID": "me/studio", "OAUTH_CLIENT_ID": "x"})
    assert callable(on_space["auth_dependency"]) and "/login/huggingface" in on_space["auth_message"]


# --- what a visitor may make the server read or fetch ---------------------------------------------------

def test_who_can_reach_the_studio():
    assert not is_public("127.0.0.1", False, {}) and not is_public("localhost", False, {})
    assert is_public("0.0.0.0", False, {}) and is_public("127.0.0.1", True, {})
    assert is_public("127.0.0.1", False, {"SPACE_ID": "me/studio"})


def test_a_public_studio_refuses_folders_outside_the_allowed_roots(data_dir, tmp_path):
    from test_studio_distill import form

    outside = tmp_path / "videos"
    outside.mkdir()
    public = access_from_env(data_dir, True, {})
    message = distill.check(data_dir, form(data_source="folder", data_folder=str(outside)), None, None, public)
    assert message == (f"**Cannot launch:** {outside} is outside the folders this studio may read "
                       f"({data_dir.resolve()}); put the data folder there, or ask the owner to add its folder to "
                       "DFD_STUDIO_ALLOWED_PATHS.")
    link = data_dir / "link"
    data_dir.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)  # inside by name, outside once resolved
    assert "is outside the folders" in distill.check(data_dir, form(data_source="folder", data_folder=str(link)),
                                                     None, None, public)
    listed = access_from_env(data_dir, True, {"DFD_STUDIO_ALLOWED_PATHS": os.pathsep.join([str(tmp_path), "/nope"])})
    assert listed.check_path(str(outside)) == outside.resolve()
    passed = distill.check(data_dir, form(data_source="folder", data_folder=str(outside)), None, None, listed)
    assert "holds 0 videos and none with a caption" in passed  # past the roots: on to the folder's own check


def test_a_public_studio_confines_the_folders_a_data_set_config_names(data_dir, tmp_path):
    from test_studio_distill import _captioned_clips, form

    outside = _captioned_clips(tmp_path / "videos")
    public = access_from_env(data_dir, True, {})
    roots = f"({data_dir.resolve()}); put the data folder there, or ask the owner to add its folder to DFD_STUDIO_ALLOWED_PATHS"
    sets = data_dir / "sets"
    sets.mkdir(parents=True)
    (sets / "link").symlink_to(outside)
    for name, folder, named in [("absolute.yaml", str(outside), outside), ("relative.yaml", "../../videos", outside),
                                ("link.yaml", "link", outside),  # inside by name, outside once resolved
                                ("absent.yaml", str(tmp_path / "absent"), tmp_path / "absent")]:  # refused, not probed
        config = sets / name
        config.write_text(f"folders:\n  - path: {folder}\n")
        refused = f"{config}: folders[0].path {named.resolve()} is outside the folders this studio may read {roots}."
        values = form(data_source="folder", data_folder=str(config))
        assert distill.check(data_dir, values, None, None, public) == f"**Cannot launch:** {refused}"
        assert distill.folder_note(str(config), "shapes-tiny", access=public) == f"**Data refused:** {refused}"
        assert distill.check(data_dir, values, None, None, LOCAL).startswith(
            "**Ready.**" if name != "absent.yaml" else f"**Cannot launch:** {config}: folders[0].path")
    elsewhere = tmp_path / "dataset.yaml"  # the config file itself outside the roots
    elsewhere.write_text("folders: [videos]\n")
    assert distill.check(data_dir, form(data_source="folder", data_folder=str(elsewhere)), None, None, public) == \
        f"**Cannot launch:** {elsewhere} is outside the folders this studio may read {roots}."

    upload = tmp_path / "sent.yaml"
    upload.write_text(f"folders:\n  - path: {outside}\n")
    saved, note = distill.upload_data_config(data_dir, str(upload), access=public)
    assert saved is None and note == f"**Config refused:** sent.yaml: folders[0].path {outside.resolve()} is outside " \
                                     f"the folders this studio may read {roots}."
    listed = access_from_env(data_dir, True, {"DFD_STUDIO_ALLOWED_PATHS": str(tmp_path)})
    saved, note = distill.upload_data_config(data_dir, str(upload), access=listed)
    assert note == "**Received** sent.yaml: 2 usable clips of 2 videos."
    message, job_id = distill.launch(data_dir, form(data_source="folder", data_folder=saved, batch_size=2), None, None,
                                     listed)
    assert message.startswith("**Queued**"), message


def test_a_public_studio_refuses_a_base_folder_outside_the_roots(data_dir, mini_teacher_dir):
    from test_studio_distill import form

    public = access_from_env(data_dir, True, {})
    message = distill.check(data_dir, form(base=str(mini_teacher_dir)), None, None, public)
    assert message.startswith(f"**Cannot launch:** {mini_teacher_dir} is outside the folders this studio may read")
    assert distill.check(data_dir, form(base=str(mini_teacher_dir)), None, None, LOCAL).startswith("**Ready.**")


def test_a_public_studio_fetches_only_the_allowed_hub_models(data_dir):
    from test_studio_distill import form

    public = access_from_env(data_dir, True, {})
    message, job_id = distill.launch(data_dir, form(base="someone/huge-model"), None, None, public)
    assert job_id is None and message == (
        "**Cannot launch:** someone/huge-model is not among the hub models this studio may fetch "
        "(Wan-AI/Wan2.1-T2V-1.3B-Diffusers); pick one of those, or ask the owner to add it to DFD_STUDIO_ALLOWED_MODELS.")
    assert distill.check(data_dir, form(base="shapes-tiny"), None, None, public).startswith("**Ready.**")
    owners = access_from_env(data_dir, True, {"DFD_STUDIO_ALLOWED_MODELS": "Wan-AI/*, me/one"})
    owners.check_model("Wan-AI/Wan2.1-T2V-14B-Diffusers")
    owners.check_model("me/one")
    with pytest.raises(ValueError, match="not among the hub models"):
        owners.check_model("me/two")


def test_a_public_studio_caps_data_workers_at_the_machines_cpu_count(data_dir, monkeypatch):
    from engine.jobs import list_jobs
    from test_studio_distill import _captioned_clips, form

    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    clips = _captioned_clips(data_dir / "videos")  # inside the data dir: a public studio may read it
    values = dict(data_source="folder", data_folder=str(clips), batch_size=2)
    public = access_from_env(data_dir, True, {})
    message, job_id = distill.launch(data_dir, form(**values, data_workers=4), None, None, public)
    assert job_id is None and message == ("**Cannot launch:** data_workers 4 is more than this public studio allows: "
                                          "at most 3, the number of CPUs of this machine.")
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
    import engine
    import huggingface_hub

    monkeypatch.setattr(engine, "render", lambda *a, **k: pytest.fail("a refused request was sampled"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("a refused id was fetched"))


def test_compare_refuses_a_base_a_visitor_may_not_name_before_sampling_or_queuing(data_dir, mini_teacher_dir,
                                                                                  monkeypatch):
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


def test_diversity_refuses_bases_and_feature_models_a_visitor_may_not_name(data_dir, tiny_wan_dir, tmp_path,
                                                                          monkeypatch):
    import shutil

    import gradio as gr

    from studio import diversity, measures
    from studio.files import public_folder
    from test_features import save_tiny_encoders

    encoders = save_tiny_encoders(tmp_path / "encoders")  # outside the data folder
    base = shutil.copytree(tiny_wan_dir, data_dir / "models" / "wan")  # inside: a base the studio may read
    monkeypatch.delenv(measures.FEATURES_ENV, raising=False)
    _no_sampling(monkeypatch)
    public, shown = access_from_env(data_dir, True, {}), public_folder(data_dir)

    def plan(base_name, features):
        return diversity.plan(data_dir, shown, str(base_name), "a cat", 2, ["teacher"], features=features, access=public)

    with pytest.raises(ValueError, match=f"^{tiny_wan_dir} is outside the folders this studio may read"):
        plan(tiny_wan_dir, "")
    with pytest.raises(ValueError, match=("^the clip model in Feature models: openai/clip-vit-large-patch14 is not "
                                          "among the hub models this studio may fetch")):
        plan(base, "clip:openai/clip-vit-large-patch14")
    with pytest.raises(ValueError, match=(f"^the dinov2 model in Feature models: {encoders / 'dinov2'} is outside "
                                          "the folders this studio may read .*put the model folder there")):
        plan(base, f"dinov2:{encoders / 'dinov2'}")
    assert plan(base, "").features == ""  # no feature models: nothing to check

    owners = f"dinov2:{encoders / 'dinov2'}"  # the app's own DFD_STUDIO_FEATURES is the owner's choice: it passes
    monkeypatch.setenv(measures.FEATURES_ENV, owners)
    assert plan(base, owners).features == owners and plan(base, None).features == owners
    with pytest.raises(ValueError, match="the clip model in Feature models: .* is outside the folders"):
        plan(base, f"{owners},clip:{encoders / 'clip'}")

    listed = access_from_env(data_dir, True, {"DFD_STUDIO_ALLOWED_MODELS": "openai/*"})
    monkeypatch.undo()  # hub fetches allowed again: an allowed id goes on to the engine's reachability check
    with pytest.raises(ValueError, match="clip model openai/clip-vit-large-patch14 in Feature models cannot be reached"):
        diversity.plan(data_dir, shown, str(base), "a cat", 2, ["teacher"], features="clip:openai/clip-vit-large-patch14",
                       access=listed)

    with gr.Blocks():
        tab = diversity.build(data_dir, shown, "shapes-tiny", public)
    with pytest.raises(gr.Error, match="the clip model in Feature models: openai/x is not among the hub models"):
        tab["on_run"](str(base), "a cat", 2, ["teacher"], True, "clip:openai/x")
    assert tab["refresh_models"](str(tiny_wan_dir), ["teacher"])["choices"] == []
