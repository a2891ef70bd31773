"""app.py and the page as a whole, without a server: Space conventions, the optional login, what gradio is
allowed to serve, the five tabs, the worker's start and stop, and the Spacefile."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time

import gradio as gr
import pytest
import yaml

import app
import engine
from conftest import ROOT
from studio import TABS, auth_from_env, build_studio, launch_options


def test_space_conventions_for_host_port_and_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("DFD_STUDIO_DATA", str(tmp_path / "d"))
    args = app.parse_args([])
    assert (args.host, args.port, args.data_dir, args.no_worker, args.share) == (
        "0.0.0.0",
        8123,
        tmp_path / "d",
        False,
        False,
    )
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    assert app.parse_args(["--no-worker", "--port", "7001"]).port == 7001
    assert app.parse_args([]).port == 7999


def test_login_is_off_unless_a_password_is_set():
    assert auth_from_env({}) is None
    login = auth_from_env({"DFD_STUDIO_PASSWORD": "s3cret-passphrase"})
    assert login("dfd", "s3cret-passphrase") and not login("dfd", "guess")
    ann = auth_from_env({"DFD_STUDIO_PASSWORD": "s3cret-passphrase", "DFD_STUDIO_USER": "ann"})
    assert ann("ann", "s3cret-passphrase") and not ann("dfd", "s3cret-passphrase")


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


# --- the UI/engine boundary: the studio uses engine's public API only, and never the model libraries ---

MODEL_LIBRARIES = ("torch", "diffusers", "transformers", "peft", "accelerate")


def _public_module(dotted: str):
    """The engine module `dotted` names if it is public: engine itself, or a module engine._API lists."""
    if dotted == "engine":
        return engine
    head, _, name = dotted.partition(".")
    target = engine._API.get(name) if head == "engine" else None
    return getattr(engine, name) if target and ":" not in target else None


def _allowed(module, name: str) -> bool:
    """May the studio use `name` of a public engine module? engine's __all__, or a sub-API's own."""
    listed = getattr(module, "__all__", None)
    return name in listed if listed is not None else not name.startswith("_")


def _imported_breaches(node, aliases: dict) -> list[str]:
    """What an import statement takes beyond the public API; records the public modules it binds."""
    if isinstance(node, ast.Import):
        modules = [(alias.name, alias.asname or alias.name.split(".")[0], None) for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        modules = [(node.module, None, [(a.name, a.asname or a.name) for a in node.names])]
    elif (
        isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        modules = [(str(node.args[0].value), None, None)]
    else:
        return []
    breaches = []
    for dotted, bound, names in modules:
        top, module = dotted.split(".")[0], _public_module(dotted)
        if top in MODEL_LIBRARIES:
            breaches.append(f"line {node.lineno}: imports {dotted}")
        elif top == "engine" and module is None:
            breaches.append(f"line {node.lineno}: imports {dotted}, which is not engine's public API")
        elif top == "engine" and bound:
            aliases[bound] = module if bound != "engine" else engine
        for name, local in (names or []) if module is not None else []:
            if not _allowed(module, name):
                breaches.append(f"line {node.lineno}: from {dotted} import {name}, which is not in its __all__")
            elif _public_module(f"{dotted}.{name}") is not None:
                aliases[local] = _public_module(f"{dotted}.{name}")
    return breaches


def boundary_breaches(source: str) -> list[str]:
    """Every use of engine beyond its public API, and every import of a model library, in one file:
    imports, `engine.X` and `engine.jobs.X` (X must be in the module's __all__)."""
    tree, aliases, breaches = ast.parse(source), {}, []
    for node in ast.walk(tree):
        breaches += _imported_breaches(node, aliases)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in aliases:
            module, shown = aliases[node.value.id], node.value.id
        elif (
            isinstance(node.value, ast.Attribute)
            and isinstance(node.value.value, ast.Name)
            and aliases.get(node.value.value.id) is engine
            and _public_module(f"engine.{node.value.attr}")
        ):
            module, shown = _public_module(f"engine.{node.value.attr}"), f"engine.{node.value.attr}"
        else:
            continue
        if not _allowed(module, node.attr):
            breaches.append(f"line {node.lineno}: {shown}.{node.attr} is not in {module.__name__}'s __all__")
    return breaches


STUDIO_FILES = sorted((ROOT / "studio").rglob("*.py")) + [ROOT / "app.py"]


@pytest.mark.parametrize("path", STUDIO_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_studio_uses_only_engines_public_api_and_no_model_library(path):
    assert boundary_breaches(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import torch",
        "from torch import nn",
        "import diffusers.utils",
        "from transformers import AutoModel",
        "import peft",
        "from accelerate import Accelerator",
        "from engine.generation.generate import sample_frames",
        "import engine.models.base",
        "from engine import generate",
        "import engine\nengine.generation.renderer.render",
        "import engine\nengine._API",
        "from engine.jobs import kinds",
        "import engine.jobs as j\nj.worker",
        "import engine\nengine.jobs.runner",
        "import importlib\nimportlib.import_module('engine.pretrain.teacher')",
        "from engine.models import students",
    ],
)
def test_the_boundary_check_catches_each_kind_of_breach(source):
    assert len(boundary_breaches(source)) == 1, source


def test_the_web_process_starts_without_importing_the_model_libraries(tmp_path):
    """The page opens, and lists jobs, without torch: the models load on the first sampling."""
    probe = (
        "import sys, app, studio\n"
        "studio.build_studio(sys.argv[1])\n"
        f"print(sorted(m for m in {MODEL_LIBRARIES!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path / "data")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_boundary_check_passes_the_public_api():
    source = (
        "import engine\nimport engine.jobs as jobs_api\nfrom engine import ModelError, render, world\n"
        "engine.render\nengine.jobs.submit\njobs_api.JobNotFound\nfrom engine.jobs import JobNotFound\nimport numpy\n"
    )
    assert boundary_breaches(source) == []
