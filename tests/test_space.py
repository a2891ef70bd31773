"""A Hugging Face Space stand-in: a writable /data-like folder (a mounted bucket), HF_HOME left alone, a stand-in of the
`spaces` package (ZeroGPU), the README front matter a Space reads, the HF allow-list
(the login's throttle and the public studio's identity rules: test_security_identity.py).
What a visitor of a public studio may make the server read or fetch: test_access.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import huggingface_hub
import pytest
import yaml

import app
from conftest import ROOT
from studio import distill, zerogpu
from studio.auth import PasswordLogin, allowed_hf_from_env, hf_gate, hf_user_allowed, launch_auth, orgs_of

# --- storage: a bucket volume for the data, HF_HOME where preload_from_hub puts the weights --------------


def test_the_data_goes_to_the_mounted_bucket_when_it_is_writable(tmp_path):
    env = {"DFD_STUDIO_PERSISTENT_DIR": str(tmp_path), "SPACE_ID": "me/studio"}
    assert app.persistent_root(env) == tmp_path
    assert app.default_data_dir(env) == tmp_path / "studio_data"
    assert "HF_HOME" not in env  # nothing in app moves the cache
    line = app.storage_line(tmp_path / "studio_data", env)
    assert str(tmp_path) in line and "persists" in line and "NOT" not in line


def test_without_a_bucket_the_space_says_its_data_is_lost_on_restart(tmp_path):
    env = {"DFD_STUDIO_PERSISTENT_DIR": str(tmp_path / "absent"), "SPACE_ID": "me/studio"}
    assert app.persistent_root(env) is None
    assert app.default_data_dir(env) == Path("studio_data")
    line = app.storage_line(Path("studio_data"), env)
    assert "NOT persistent" in line and "docs/space.md" in line
    assert app.storage_line(Path("studio_data"), {"DFD_STUDIO_PERSISTENT_DIR": str(tmp_path / "absent")}) == (
        "data in studio_data"
    )  # a local studio: its folder is the user's own business
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if not os.access(read_only, os.W_OK):  # root can write anywhere: then the check cannot be shown
            assert app.persistent_root({"DFD_STUDIO_PERSISTENT_DIR": str(read_only)}) is None
    finally:
        read_only.chmod(0o755)


def test_a_started_app_keeps_hf_home_where_preload_from_hub_put_the_weights(tmp_path):
    """In a fresh process, as on a Space with a bucket at /data: app.main's first steps leave huggingface_hub's
    cache at its default (~/.cache/huggingface/hub), the folder preload_from_hub fills at build time."""
    probe = (
        "import app, sys\nargs = app.parse_args(['--no-worker'])\nimport huggingface_hub.constants as c\n"
        "print(args.data_dir); print(c.HF_HUB_CACHE)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME")}
    env.update(DFD_STUDIO_PERSISTENT_DIR=str(tmp_path), HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    data_dir, cache = done.stdout.split()
    assert Path(data_dir) == tmp_path / "studio_data"
    assert Path(cache) == tmp_path / "home" / ".cache" / "huggingface" / "hub"


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
    assert "suggested_storage" not in meta  # the Hub ignores it: data persists on a mounted Storage Bucket
    assert meta["startup_duration_timeout"] == "1h"
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in meta["preload_from_hub"]
    # least privilege: Publish creates repos and writes to those it made; manage-repos could also delete any
    assert meta["hf_oauth_scopes"] == ["contribute-repos"]


# --- ZeroGPU, with a stand-in of the `spaces` package ---------------------------------------------------

STAND_IN = """
calls = []

quota_left = [10 ** 9]  # seconds of GPU this visitor may still use today

class Error(Exception):  # as gradio.Error, which the real package raises with a title
    def __init__(self, message, title=""):
        super().__init__(message)
        self.title = title

def GPU(fn=None, duration=60, size="large"):
    assert size in ("large", "xlarge")
    def decorate(f):
        calls.append(("decorated", f.__name__, size))
        def wrapped(*args, **kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            cost = seconds * (2 if size == "xlarge" else 1)
            if cost > quota_left[0]:
                raise Error(f"You have exceeded your GPU quota ({quota_left[0]}s left vs. {cost}s requested)",
                            title="ZeroGPU quota exceeded")
            quota_left[0] -= cost
            calls.append(("gpu", seconds, size))
            return f(*args, **kwargs)
        return wrapped
    return decorate(fn) if fn is not None else decorate
"""


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
    assert zero_gpu_space.calls == [("decorated", "_call", "large"), ("decorated", "_call", "xlarge")]  # at start-up
    result = zerogpu.on_gpu(lambda a, b=0: a + b, zerogpu.sampling_seconds(3, 50))(2, b=3)
    assert result == 5 and zero_gpu_space.calls[-1] == ("gpu", 330, "large")  # 30 s + 2 s x 3 clips x 50 steps
    zerogpu.on_gpu(str, zerogpu.sampling_seconds(1, 4))(1)
    assert zero_gpu_space.calls[-1] == ("gpu", zerogpu.MIN_SECONDS, "large")
    zerogpu.on_gpu(str, 100, size="xlarge")(1)
    assert zero_gpu_space.calls[-1] == ("gpu", 100, "xlarge")
    assert zerogpu.sampling_seconds(64, 50) == zerogpu.MAX_SECONDS
    assert [c[0] for c in zero_gpu_space.calls].count("decorated") == 2


def test_a_grant_grows_with_frames_resolution_seeds_and_steps():
    base = zerogpu.sampling_seconds(1, 20)
    assert base == 70  # 30 s + 2 s x 20 steps
    assert zerogpu.sampling_seconds(1, 20, num_frames=162) == 110  # twice Wan's 81 frames
    assert zerogpu.sampling_seconds(1, 20, height=960, width=1664) == 190  # four times the pixels
    assert zerogpu.sampling_seconds(2, 20) == zerogpu.sampling_seconds(1, 40) == 110
    assert zerogpu.sampling_seconds(1, 20, num_frames=17, height=240) == base  # never below one Wan clip's cost


def test_the_gpu_size_follows_the_weights(tmp_path):
    assert zerogpu.gpu_size(None) == "large" and zerogpu.gpu_size(30) == "large"
    assert zerogpu.gpu_size(40) == "xlarge"  # 40 GB x 1.5 headroom does not fit 48 GB
    with pytest.raises(ValueError, match="dedicated GPU"):
        zerogpu.gpu_size(80)
    (tmp_path / "transformer").mkdir()
    (tmp_path / "transformer" / "model.safetensors").write_bytes(b"\0" * 3_000_000)
    (tmp_path / "README.md").write_text("not weights")
    assert zerogpu.weights_gb(tmp_path) == pytest.approx(0.003)
    assert zerogpu.weights_gb(tmp_path / "absent") is None
    with pytest.raises(ValueError, match="large, xlarge"):
        zerogpu.on_gpu(str, 60, size="medium")


def test_a_bases_weights_are_measured_in_its_folder_or_the_hub_cache(tmp_path):
    snapshot = tmp_path / "hub" / "models--me--tiny" / "snapshots" / ("a" * 40)
    (snapshot / "transformer").mkdir(parents=True)
    (snapshot / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 2_000_000)
    (tmp_path / "hub" / "models--me--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--me--tiny" / "refs" / "main").write_text("a" * 40)
    assert zerogpu.model_gb("me/tiny", cache_dir=tmp_path / "hub") == pytest.approx(0.002)
    assert zerogpu.model_gb(str(snapshot)) == pytest.approx(0.002)  # a folder, e.g. a mounted model volume
    assert zerogpu.model_gb("me/absent", cache_dir=tmp_path / "hub") is None
    assert zerogpu.gpu_size(zerogpu.model_gb("me/absent", cache_dir=tmp_path / "hub")) == "large"


def test_compare_and_diversity_ask_for_the_grant_their_inputs_and_their_base_need(
    zero_gpu_space, data_dir, mini_teacher_dir, tmp_path
):
    import shutil

    from studio import compare_plan, diversity_plan
    from studio.files import public_folder

    public = public_folder(data_dir)
    compare_plan.compare(data_dir, public, str(mini_teacher_dir), "a red circle", 3, None, None, steps=3, num_frames=9)
    assert zero_gpu_space.calls[-1] == ("gpu", zerogpu.sampling_seconds(1, 3, 9), "large")  # one clip per model
    big = shutil.copytree(mini_teacher_dir, tmp_path / "big")  # weighed as 40 GB: a sparse file no loader reads
    (big / "unused").mkdir()
    with open(big / "unused" / "padding.safetensors", "wb") as padding:
        padding.truncate(40 * 10**9)
    compare_plan.compare(data_dir, public, str(big), "a red circle", 3, None, None, steps=3, num_frames=9)
    assert zero_gpu_space.calls[-1] == ("gpu", zerogpu.sampling_seconds(1, 3, 9), "xlarge")  # 40 GB x 1.5 > 48 GB
    diversity_plan.run(data_dir, public, str(big), "a red shape", 2, ["teacher"], steps=2)
    assert zero_gpu_space.calls[-1] == ("gpu", zerogpu.sampling_seconds(2, 2), "xlarge")  # every seed in one grant
    zerogpu.on_gpu_for(str, str(mini_teacher_dir), 2, 20, num_frames=162)(1)
    assert zero_gpu_space.calls[-1] == ("gpu", 190, "large")  # 30 s + 2 s x 2 clips x 20 steps x twice 81 frames


def test_a_visitor_out_of_quota_gets_a_message_not_a_stack_trace(zero_gpu_space):
    zero_gpu_space.quota_left[0] = 100
    render = zerogpu.on_gpu(str, zerogpu.sampling_seconds(3, 50))
    with pytest.raises(zerogpu.ZeroGPUQuotaError) as raised:
        render(1)
    assert isinstance(raised.value, ValueError)  # the tabs show a ValueError's text as their message
    assert str(raised.value).startswith("ZeroGPU's daily quota left to you cannot cover this sampling (330 s")
    assert "Traceback" not in str(raised.value)
    zerogpu.on_gpu(str, 100)(1)  # a smaller ask still fits
    with pytest.raises(ZeroDivisionError):  # other errors pass through unchanged
        zerogpu.on_gpu(lambda: 1 / 0, 0)()


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
