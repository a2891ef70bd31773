"""The attacks of docs/security.md, each tried against the real app or the engine's public entry points: a public
studio started with no login, a push with the server's HF_TOKEN by a visitor, a push into someone else's
namespace, another visitor's Cancel/Resume/Publish, the owner locked out by a stranger's wrong passwords (in
memory and through gradio's real /login), a flood of failures (memory and log bounded), and the visitor's
cap on active jobs. The Hub is mocked at huggingface_hub's boundary (HfApi, whoami)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import gradio as gr
import huggingface_hub
import pytest
import requests

import engine.jobs as jobs_api
import storage
from conftest import ROOT
from studio import active_jobs_of, jobs, launch_options, publish
from studio.auth import MIN_PASSWORD, PasswordLogin, hf_gate, launch_auth
from studio.identity import Identity, identity_from_env, visitor_of
from studio.login_throttle import (
    GLOBAL_FAILURES,
    LOG_PER_WINDOW,
    MAX_RECORDS,
    LoginThrottle,
    client_of_scope,
)

PUBLIC = Identity(public=True, owner="olga")
TOKEN = "hf_VisitorTypedToken123"
SERVER_TOKEN = "hf_TheOwnersServerToken9"
DATA = Path(__file__).parent / "data"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# --- a public studio never starts open by accident --------------------------------------------------------


def test_a_public_studio_with_no_login_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DFD_STUDIO_", "SPACE_", "HF_TOKEN"))}
    env.update(DFD_STUDIO_PUBLIC="1", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "app.py", "--no-worker", "--data-dir", str(tmp_path / "d")],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "this studio is public" in result.stderr and "DFD_STUDIO_OPEN=1" in result.stderr


def test_each_login_or_an_explicit_open_mode_lets_a_public_studio_start():
    with pytest.raises(ValueError, match="this studio is public"):
        launch_auth({"SPACE_ID": "olga/studio"}, public=True)
    assert launch_auth({"DFD_STUDIO_OPEN": "1"}, public=True) == {}
    with pytest.raises(ValueError, match=f"has 11 characters; use at least {MIN_PASSWORD}"):
        launch_auth({"DFD_STUDIO_PASSWORD": "x" * 11}, public=True)
    assert isinstance(launch_auth({"DFD_STUDIO_PASSWORD": "x" * 12}, public=True)["auth"], PasswordLogin)
    on_space = {"DFD_STUDIO_ALLOWED_HF": "*", "SPACE_ID": "olga/studio", "OAUTH_CLIENT_ID": "c"}
    gate = launch_auth(on_space, public=True)["auth_dependency"]
    assert gate(OAuthRequest("anyone")) == "anyone" and gate(OAuthRequest(None)) is None


def test_the_owner_is_named_or_the_spaces_author_and_the_local_user_is_the_owner():
    assert identity_from_env(True, {"SPACE_AUTHOR_NAME": "Olga"}).owner == "olga"
    assert identity_from_env(True, {"SPACE_AUTHOR_NAME": "olga", "DFD_STUDIO_OWNER": "ann"}).owner == "ann"
    assert identity_from_env(False, {}).is_owner(None)  # a local studio: whoever uses it
    assert not identity_from_env(True, {}).is_owner(None)
    with pytest.raises(ValueError, match="DFD_STUDIO_MAX_ACTIVE_JOBS must be a whole number"):
        identity_from_env(True, {"DFD_STUDIO_MAX_ACTIVE_JOBS": "many"})


class OAuthRequest:
    def __init__(self, name, token="t"):
        self.scope = {"session": {}}
        self.session = {"oauth_info": {"userinfo": {"preferred_username": name}, "access_token": token}} if name else {}


def test_the_hf_gate_forgets_its_decisions_and_never_keeps_an_error():
    clock, calls = Clock(), []

    def whoami(token):
        calls.append(token)
        if len(calls) == 1:
            raise OSError("the Hub is unreachable")
        return {"orgs": [{"name": "my-org"}] if len(calls) < 3 else []}

    gate = hf_gate(frozenset({"my-org"}), whoami=whoami, clock=clock)
    assert gate(OAuthRequest("bob")) is None  # the Hub failed: refused now ...
    assert gate(OAuthRequest("bob")) == "bob" and gate(OAuthRequest("bob")) == "bob"  # ... asked again, remembered
    assert len(calls) == 2
    clock.now += 301  # bob left my-org: within the gate's memory time he is out
    assert gate(OAuthRequest("bob")) is None and len(calls) == 3


# --- jobs: who submitted them, and who may act on them --------------------------------------------------------


def test_another_visitors_cancel_and_resume_are_refused(data_dir):
    alice = jobs_api.submit(data_dir, "distill", {"steps": 5}, submitted_by="alice")
    assert jobs_api.get(data_dir, alice.id).submitted_by == "alice"

    message = jobs.cancel(data_dir, alice.id, PUBLIC, "bob")
    assert "queued by someone else" in message and jobs_api.get(data_dir, alice.id).state == "queued"
    assert "no login" in jobs.cancel(data_dir, alice.id, PUBLIC, None)  # open mode: nobody can be told apart
    assert jobs.cancel(data_dir, alice.id, PUBLIC, "Alice") == f"Job {alice.id} is cancelled."
    assert "queued by someone else" in jobs.resume(data_dir, alice.id, PUBLIC, "bob")
    assert jobs_api.get(data_dir, alice.id).state == "cancelled"
    assert "queued again" in jobs.resume(data_dir, alice.id, PUBLIC, "olga")  # the owner may act on any job


def test_the_jobs_tabs_buttons_act_as_the_signed_in_visitor(data_dir):
    alice = jobs_api.submit(data_dir, "distill", {"steps": 5}, submitted_by="alice").id
    with gr.Blocks() as demo:
        ui = jobs.build(data_dir, Path(data_dir) / "public", PUBLIC)
    handlers = {f.fn.__name__: f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") in ("on_cancel",)}
    message, *_ = handlers["on_cancel"](alice, gr.Request(username="bob"))
    assert "queued by someone else" in message and jobs_api.get(data_dir, alice).state == "queued"
    message, *_ = ui["act"](jobs.cancel, alice, gr.Request(username="alice"))
    assert jobs_api.get(data_dir, alice).state == "cancelled"
    assert visitor_of(gr.Request(username="alice")) == "alice" and visitor_of(None) is None


def test_jobs_from_before_submitters_were_recorded_belong_to_the_owner(tmp_path):
    data_dir = tmp_path / "studio_data"
    shutil.copytree(DATA / "jobs_before_grouping", data_dir)
    try:
        listed = jobs_api.list_jobs(data_dir)  # opening upgrades the file: jobs.submitted_by added, rows kept
        assert len(listed) == 2 and all(job.submitted_by is None for job in listed)
        with storage.open_database(data_dir).engine.connect() as connection:
            columns = {row[1] for row in connection.exec_driver_sql("PRAGMA table_info(jobs)")}
            assert "submitted_by" in columns
            assert storage.schema.current_version(connection) == storage.LATEST_VERSION
        old = listed[0].id
        assert "queued by someone else" in jobs.cancel(data_dir, old, PUBLIC, "bob")
        assert jobs.cancel(data_dir, old, PUBLIC, "olga").startswith(f"Job {old}")
    finally:
        storage.close_all()
    storage.open_database(data_dir)  # a second open finds nothing to upgrade
    storage.close_all()


def test_a_visitor_may_have_only_so_many_active_jobs_and_the_owner_any(data_dir):
    for _ in range(2):
        jobs_api.submit(data_dir, "distill", {"steps": 5}, submitted_by="bob")
    assert active_jobs_of(data_dir, "bob") == 2 and active_jobs_of(data_dir, "ann") == 0
    with pytest.raises(ValueError, match="you already have 2 jobs queued or running"):
        PUBLIC.check_active("bob", active_jobs_of(data_dir, "bob"))
    PUBLIC.check_active("olga", 50)
    Identity(True, "olga", max_active_jobs=0).check_active("bob", 50)  # DFD_STUDIO_MAX_ACTIVE_JOBS=0: no cap


# --- publishing from a public studio -------------------------------------------------------------------------


@pytest.fixture
def hub(monkeypatch):
    """The Hub's write calls, recorded: (what, token) per call."""
    calls = []
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "create_repo",
        lambda self, repo_id, **kw: (
            calls.append(("create_repo", self.token)) or huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")
        ),
    )
    monkeypatch.setattr(
        huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(("upload_folder", self.token))
    )
    return calls


def whoami(token):
    if token != TOKEN:
        raise OSError("401 Unauthorized")
    return {"name": "bob", "orgs": [{"name": "bobs-lab"}]}


def test_a_visitor_cannot_push_with_the_servers_token(data_dir, hub):
    env = {"HF_TOKEN": SERVER_TOKEN}
    with pytest.raises(ValueError, match="pushes only with your own token"):
        publish.push(
            data_dir,
            "dmd2",
            "olga/model",
            "mit",
            False,
            "",
            None,
            environ=env,
            identity=PUBLIC,
            visitor="bob",
            whoami=whoami,
        )
    assert hub == []


def test_a_visitor_pushes_only_into_their_own_namespace_or_orgs(data_dir, hub):
    for repo in ("olga/model", "other-org/model"):
        with pytest.raises(ValueError, match="is not in your namespace.*use a repo id like bob/model"):
            publish.push(
                data_dir,
                "dmd2",
                repo,
                "mit",
                False,
                TOKEN,
                None,
                environ={},
                identity=PUBLIC,
                visitor="bob",
                whoami=whoami,
            )
    with pytest.raises(ValueError, match="could not check whose token this is"):
        publish.push(
            data_dir,
            "dmd2",
            "bob/model",
            "mit",
            False,
            "hf_NotAValidToken00",
            None,
            environ={},
            identity=PUBLIC,
            visitor="bob",
            whoami=whoami,
        )
    assert hub == []


def test_a_visitor_cannot_publish_another_visitors_job(data_dir, hub):
    alice = jobs_api.submit(data_dir, "distill", {"steps": 5}, submitted_by="alice").id
    with pytest.raises(PermissionError, match="cannot publish job .* queued by someone else"):
        publish.push(
            data_dir,
            alice,
            "bob/model",
            "mit",
            False,
            TOKEN,
            None,
            environ={},
            identity=PUBLIC,
            visitor="bob",
            whoami=whoami,
        )
    assert hub == []


def test_a_visitors_push_in_their_namespace_uses_their_token(data_dir, mini_students, hub):
    message = publish.push(
        data_dir,
        "dmd2",
        "bobs-lab/shapes-dmd2",
        "mit",
        False,
        TOKEN,
        None,
        environ={"HF_TOKEN": SERVER_TOKEN},
        identity=PUBLIC,
        visitor="bob",
        whoami=whoami,
    )
    assert message.startswith("Pushed") and hub == [("create_repo", TOKEN), ("upload_folder", TOKEN)]


# --- login throttling that cannot lock the owner out -------------------------------------------------------


def test_a_strangers_wrong_passwords_for_the_owners_name_do_not_lock_the_owner_out(caplog):
    clock = Clock()
    login = PasswordLogin("olga", "the-owners-passphrase", LoginThrottle(clock))
    with caplog.at_level(logging.WARNING, logger="dfd.studio.auth"):
        for _ in range(10):
            clock.now += 1
            login("olga", "guess", client="203.0.113.9")
    assert login.throttle.locked_for("203.0.113.9", "olga") > 0  # the stranger is slowed ...
    assert not login("olga", "the-owners-passphrase", client="203.0.113.9")  # ... even with the right one
    assert login("olga", "the-owners-passphrase", client="198.51.100.7")  # the owner, elsewhere, is let in
    assert not any("guess" in r.getMessage() or "passphrase" in r.getMessage() for r in caplog.records)


def test_backoff_doubles_per_client_and_name_up_to_a_minute():
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(3):
        throttle.failed("a", "olga")
    assert throttle.locked_for("a", "olga") == 1.0 and throttle.locked_for("b", "olga") == 0
    throttle.failed("a", "olga")
    assert throttle.locked_for("a", "olga") == 2.0
    for _ in range(20):
        throttle.failed("a", "olga")
    assert throttle.locked_for("a", "olga") == 60.0
    throttle.succeeded("a", "olga")
    assert throttle.locked_for("a", "olga") == 0


def test_a_flood_from_many_clients_is_bounded_and_the_owners_browser_still_gets_in(caplog):
    clock = Clock()
    login = PasswordLogin("olga", "the-owners-passphrase", LoginThrottle(clock))
    assert login("olga", "the-owners-passphrase", client="198.51.100.7")  # the owner signed in once before
    with caplog.at_level(logging.WARNING, logger="dfd.studio.auth"):
        for i in range(MAX_RECORDS + 100):
            login(f"user{i}", "guess", client=f"10.0.{i // 250}.{i % 250}")
    throttle = login.throttle
    assert len(throttle.records) <= MAX_RECORDS and len(throttle.recent_failures) <= GLOBAL_FAILURES
    assert throttle.locked_for("192.0.2.1", "olga") > 0  # a new client waits while the flood lasts
    assert login("olga", "the-owners-passphrase", client="198.51.100.7")  # a known one is still checked
    assert len(caplog.records) <= LOG_PER_WINDOW + 1
    clock.now += 61
    assert throttle.locked_for("192.0.2.1", "olga") == 0  # the flood's window has passed


def test_the_client_is_the_address_the_nearest_proxy_saw():
    assert (
        client_of_scope({"headers": [(b"x-forwarded-for", b"1.2.3.4, 5.6.7.8")], "client": ("10.0.0.1", 1)})
        == "5.6.7.8"
    )
    assert client_of_scope({"headers": [], "client": ("10.0.0.1", 1)}) == "10.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gradios_real_login_throttles_per_client(data_dir):
    login = PasswordLogin("olga", "the-owners-passphrase", LoginThrottle())
    with gr.Blocks() as demo:
        gr.Markdown("studio")
    port = _free_port()
    options = {k: v for k, v in launch_options(data_dir).items() if k in ("app_kwargs",)}
    demo.launch(server_name="127.0.0.1", server_port=port, auth=login, prevent_thread_lock=True, **options)
    try:
        url = f"http://127.0.0.1:{port}/login"
        stranger = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(6):
            requests.post(url, data={"username": "olga", "password": "guess"}, headers=stranger, timeout=30)
        refused = requests.post(
            url, data={"username": "olga", "password": "the-owners-passphrase"}, headers=stranger, timeout=30
        )
        assert refused.status_code == 400  # the stranger's address is locked, the right password unchecked
        owner = requests.post(
            url,
            data={"username": "olga", "password": "the-owners-passphrase"},
            headers={"X-Forwarded-For": "198.51.100.7"},
            timeout=30,
        )
        assert owner.status_code == 200 and owner.json() == {"success": True}
        assert login.throttle.locked_for("203.0.113.9", "olga") > 0
    finally:
        demo.close()
