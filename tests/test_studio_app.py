"""app.py and the page as a whole, without a server: Space conventions, the optional login, what gradio is
allowed to serve, the five tabs, the worker's start and stop, and the Spacefile."""

from __future__ import annotations

import time

import gradio as gr
import pytest
import yaml
from conftest import ROOT

import app
from studio import TABS, auth_from_env, build_studio, launch_options


def test_space_conventions_for_host_port_and_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("DFD_STUDIO_DATA", str(tmp_path / "d"))
    args = app.parse_args([])
    assert (args.host, args.port, args.data_dir, args.no_worker, args.share) == ("0.0.0.0", 8123, tmp_path / "d", False, False)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert app.parse_args(["--no-worker", "--port", "7001"]).port == 7001
    assert app.parse_args([]).port == 7999


def test_login_is_off_unless_a_password_is_set():
    assert auth_from_env({}) is None
    assert auth_from_env({"DFD_STUDIO_PASSWORD": "s3cret"}) == ("dfd", "s3cret")
    assert auth_from_env({"DFD_STUDIO_PASSWORD": "s3cret", "DFD_STUDIO_USER": "ann"}) == ("ann", "s3cret")


def test_only_the_public_folder_is_allowed_and_private_files_are_blocked(tmp_path):
    options = launch_options(tmp_path)
    root = tmp_path.resolve()
    assert options["allowed_paths"] == [str(root / "public")]
    for private in ("studio.db", "studio.db-wal", "jobs", "uploads", "publish"):
        assert str(root / private) in options["blocked_paths"]
    assert options["run_history"] is False  # gradio 6 keeps call inputs (a typed token) in the browser otherwise
    assert options["max_file_size"] == "2048mb"


def test_the_page_has_the_five_tabs_with_their_exact_labels(tmp_path):
    demo = build_studio(tmp_path)
    labels = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert labels == list(TABS) == ["Distill", "Jobs", "Compare", "Diversity", "Publish"]
    assert not any(isinstance(block, gr.LoginButton) for block in demo.blocks.values())  # OAuth only on a Space
    timers = [block for block in demo.blocks.values() if isinstance(block, gr.Timer)]
    assert [t.value for t in timers if t.active] == [2.0]  # the Jobs poll; Compare/Diversity poll only for sample jobs
    assert {fn.api_visibility for fn in demo.fns.values()} == {"private"}  # no callback is an API endpoint


def test_app_starts_the_worker_and_stops_it(tmp_path):
    worker = app.start_worker(tmp_path)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (tmp_path / "studio.db").exists():
            time.sleep(0.2)
        assert worker.poll() is None and (tmp_path / "studio.db").exists()
    finally:
        app.stop_worker(worker)
    assert worker.returncode is not None and worker.returncode == 0


def test_spacefile_is_a_yaml_manifest_that_runs_app_py():
    manifest = yaml.safe_load((ROOT / "Spacefile").read_text())
    [micro] = manifest["micros"]
    assert micro["run"].startswith("python app.py") and micro["primary"] is True
    assert "pip install -r requirements.txt" in micro["commands"]
    assert {"app.py", "engine/", "storage/", "studio/"} <= set(micro["include"])


@pytest.mark.parametrize("module", ["distill", "jobs", "compare", "diversity", "publish"])
def test_tab_modules_talk_only_to_engines_public_api_and_storage(module):
    source = (ROOT / "studio" / f"{module}.py").read_text()
    for internal in ("engine.distill.trainer", "engine.distill.losses", "engine.generation.sampling", "engine.models.lora", "engine.shapes.teacher", "torch"):
        assert f"import {internal}" not in source and f"from {internal} " not in source, (module, internal)
