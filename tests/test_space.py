"""A Hugging Face Space stand-in: a writable /data-like folder, HF_HOME pointing into it, a stand-in of the
`spaces` package (ZeroGPU), the README front matter a Space reads, the HF allow-list
(the login's throttle and the public studio's identity rules: test_security_identity.py).
What a visitor of a public studio may make the server read or fetch: test_access.py."""

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
from studio import distill, zerogpu
from studio.auth import PasswordLogin, allowed_hf_from_env, hf_gate, hf_user_allowed, launch_auth, orgs_of

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
    from form_helpers import form

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

    assert orgs_of({}, "t", whoami=unreachable) is None  # not known: refused now, asked again next time


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
    assert launch_auth({}) == {}  # a local studio: its user is the owner
    assert isinstance(launch_auth({"DFD_STUDIO_PASSWORD": "twelve-chars"})["auth"], PasswordLogin)
    with pytest.raises(ValueError, match="not both"):
        launch_auth({"DFD_STUDIO_PASSWORD": "twelve-chars", "DFD_STUDIO_ALLOWED_HF": "alice"})
    with pytest.raises(ValueError, match="needs Sign in with Hugging Face"):
        launch_auth({"DFD_STUDIO_ALLOWED_HF": "alice"})
    on_space = launch_auth({"DFD_STUDIO_ALLOWED_HF": "alice", "SPACE_ID": "me/studio", "OAUTH_CLIENT_ID": "x"})
    assert callable(on_space["auth_dependency"]) and "/login/huggingface" in on_space["auth_message"]
