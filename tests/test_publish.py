"""Publishing a student (the card's text: test_card.py): the staged folder and the zip hold the LoRA + card +
samples for real, and a push hands that folder and the token to huggingface_hub (mocked at
the client boundary, and against a local stand-in of the Hub's HTTP API) without the token ever being
written anywhere or shown in an error."""

from __future__ import annotations

import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from card_helpers import card_front, card_info
from engine.hub import publish
from engine.models.students import SHIPPED_DIR

TOKEN = "hf_SecretTokenForTests1234567890"


@pytest.fixture
def student_dir(tmp_path) -> Path:
    from safetensors.numpy import save_file

    folder = tmp_path / "student"
    folder.mkdir()
    save_file(
        {"transformer.blocks.0.attn1.to_q.lora_A.weight": np.ones((4, 8), np.float32)}, str(folder / publish.LORA_FILE)
    )
    save_file(
        {"diffusion_model.blocks.0.self_attn.q.lora_A.weight": np.ones((4, 8), np.float32)},
        str(folder / publish.COMFY_FILE),
    )
    (folder / "lora_config.json").write_text(
        json.dumps({"rank": 4, "method": "dfd", "t_list": [0.999, 0.937, 0.833, 0.0]})
    )
    (folder / "optimizer.pt").write_bytes(b"not part of a release")
    return folder


def test_a_shipped_students_release_holds_both_weight_files_the_trainer_wrote(tmp_path):
    # The real trainer output, not a folder faked to publish's names: a release must carry the ComfyUI
    # file under the very name the trainer writes it.
    shipped = SHIPPED_DIR / "dfd"
    folder = publish.stage_folder(shipped, tmp_path / "staged", "# card\n")
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert names == ["README.md", publish.COMFY_FILE, "lora_config.json", "made_by.json", publish.LORA_FILE]
    assert (folder / publish.COMFY_FILE).read_bytes() == (shipped / publish.COMFY_FILE).read_bytes()


def test_staged_folder_and_zip_hold_lora_card_and_samples_only(tmp_path, student_dir):
    sample = tmp_path / "s.mp4"
    sample.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    folder = publish.stage_folder(student_dir, tmp_path / "staged", "# card\n", [(sample, "samples/seed1.mp4")])

    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == ["README.md", publish.COMFY_FILE, "lora_config.json", publish.LORA_FILE, "samples/seed1.mp4"]
    assert (folder / publish.LORA_FILE).read_bytes() == (student_dir / publish.LORA_FILE).read_bytes()

    archive = publish.export_zip(folder, tmp_path / "out" / "student.zip")
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == sorted(f"staged/{n}" for n in names)
        assert z.read("staged/README.md") == b"# card\n"

    again = publish.stage_folder(student_dir, tmp_path / "staged", "# new card\n")  # restaging replaces the folder
    assert not (again / "samples" / "seed1.mp4").exists() and (again / "README.md").read_text() == "# new card\n"


def test_stage_folder_refuses_a_folder_without_a_lora(tmp_path):
    with pytest.raises(ValueError, match="no pytorch_lora_weights.safetensors"):
        publish.stage_folder(tmp_path, tmp_path / "staged", "# card")


@pytest.mark.parametrize("bad", ["", "just-a-name", "a/b/c", "me/has space", "me/--bad--"])
def test_repo_ids_are_checked_before_any_push(bad):
    with pytest.raises(ValueError, match="repo id"):
        publish.check_repo_id(bad)
    assert publish.check_repo_id(" me/shapes-dfd ") == "me/shapes-dfd"


def test_token_comes_from_the_field_then_the_login_then_hf_token():
    env = {"HF_TOKEN": "hf_env"}
    assert publish.pick_token(" hf_typed ", "hf_oauth", env) == ("hf_typed", "the token field")
    assert publish.pick_token("", "hf_oauth", env) == ("hf_oauth", "your Hugging Face login")
    assert publish.pick_token(None, None, env) == ("hf_env", "HF_TOKEN")
    token, reason = publish.pick_token(None, None, {})
    assert token is None and "HF_TOKEN" in reason


def test_push_uploads_the_folder_with_the_token_at_the_client_boundary(tmp_path, student_dir, monkeypatch):
    import huggingface_hub

    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", self.token, repo_id, kwargs))
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs):
        files = sorted(str(p.relative_to(kwargs["folder_path"])) for p in Path(kwargs["folder_path"]).rglob("*"))
        calls.append(("upload_folder", self.token, kwargs["repo_id"], files))

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    folder = publish.stage_folder(student_dir, tmp_path / "staged", "# card\n")

    url = publish.push_folder(folder, "someone/shapes-dfd", TOKEN, private=True)

    assert url == "https://huggingface.co/someone/shapes-dfd"
    assert calls[0][:3] == ("create_repo", TOKEN, "someone/shapes-dfd")
    assert calls[0][3]["private"] is True and calls[0][3]["exist_ok"] is True
    assert calls[1][:3] == ("upload_folder", TOKEN, "someone/shapes-dfd") and "README.md" in calls[1][3]
    assert not any(TOKEN.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def _hub_answers(monkeypatch, status: int, message: str) -> None:
    """The Hub's create-repo endpoint answers `status` with an error text that quotes the token."""
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    def create_repo(self, repo_id, **kwargs):
        response = httpx.Response(status, request=httpx.Request("POST", "https://huggingface.co/api/repos/create"))
        raise HfHubHTTPError(message, response=response)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)


def test_a_403_on_a_sign_in_token_names_the_scope_the_space_must_ask_for(tmp_path, student_dir, monkeypatch):
    token, source = publish.pick_token(None, TOKEN, environ={})
    _hub_answers(monkeypatch, 403, f"403 Forbidden: token {token} may not create repos")
    with pytest.raises(ValueError) as caught:
        publish.push_folder(
            publish.stage_folder(student_dir, tmp_path / "s", "# c"), "someone/x", token, token_source=source
        )
    message = str(caught.value)
    assert "contribute-repos" in message and "hf_oauth_scopes" in message and TOKEN not in message
    assert "manage-repos" not in message  # least privilege: contribute-repos creates and writes, never deletes


def test_a_refused_token_gives_one_sentence_without_the_token(tmp_path, student_dir, monkeypatch):
    _hub_answers(monkeypatch, 401, f"401 Unauthorized for token {TOKEN}")
    with pytest.raises(ValueError) as caught:
        publish.push_folder(publish.stage_folder(student_dir, tmp_path / "s", "# c"), "someone/x", TOKEN)
    assert "refused the token (401)" in str(caught.value) and TOKEN not in str(caught.value)

    _hub_answers(monkeypatch, 500, f"500 Server Error (Authorization: Bearer {TOKEN})")
    with pytest.raises(ValueError) as caught:
        publish.push_folder(publish.stage_folder(student_dir, tmp_path / "s", "# c"), "someone/x", TOKEN)
    assert "answered 500" in str(caught.value) and TOKEN not in str(caught.value)


class _FakeHub(BaseHTTPRequestHandler):
    """The few endpoints of the Hub's HTTP API that create_repo + upload_folder use (small files, no LFS)."""

    received: list = []
    received_cards: list = []

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, body: dict, status: int = 200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.path, self.headers.get("Authorization"), body))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply({"error": "Invalid credentials"}, 401)
        if self.path == "/api/validate-yaml":  # the real Hub checks the card's front matter before a commit
            import yaml

            content = json.loads(body)["content"]
            meta = yaml.safe_load(content.split("---\n")[1]) if content.startswith("---\n") else None
            if not isinstance(meta, dict) or "license" not in meta:
                return self._reply({"errors": [{"message": "invalid metadata"}]}, 400)
            self.received_cards.append(meta)
            return self._reply({"warnings": []})
        if self.path == "/api/repos/create":
            name = json.loads(body)
            return self._reply({"url": f"http://{self.headers['Host']}/{name.get('organization')}/{name['name']}"})
        if "/preupload/" in self.path:
            files = json.loads(body)["files"]
            return self._reply(
                {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
            )
        if "/commit/" in self.path:
            return self._reply(
                {
                    "commitUrl": f"http://{self.headers['Host']}/someone/shapes-dfd/commit/{'a' * 40}",
                    "commitOid": "a" * 40,
                    "success": True,
                    "pullRequestUrl": None,
                }
            )
        return self._reply({"error": "not found"}, 404)

    def do_GET(self):
        self.received.append((self.path, self.headers.get("Authorization"), b""))
        self._reply({"error": "not found"}, 404)


def test_push_against_a_local_stand_in_of_the_hub_http_api(tmp_path, student_dir, monkeypatch):
    import huggingface_hub.constants

    _FakeHub.received, _FakeHub.received_cards = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # only this local server is reachable
    try:
        folder = publish.stage_folder(student_dir, tmp_path / "staged", publish.model_card(card_info()))
        url = publish.push_folder(
            folder, "someone/shapes-dfd", TOKEN, endpoint=f"http://127.0.0.1:{server.server_port}"
        )
    finally:
        server.shutdown()

    assert url.endswith("/someone/shapes-dfd")
    assert all(auth == f"Bearer {TOKEN}" for _, auth, _ in _FakeHub.received)
    commit = b"".join(body for path, _, body in _FakeHub.received if "/commit/" in path)
    for name in ("README.md", publish.LORA_FILE, "lora_config.json"):
        assert name.encode() in commit
    assert _FakeHub.received_cards[0]["library_name"] == "diffusers" and "dfd" in _FakeHub.received_cards[0]["tags"]


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_staged_lora_files_are_stored_in_the_asked_dtype_and_equal_the_fp32_weights_cast(tmp_path, dtype):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    shipped = SHIPPED_DIR / "dfd"
    folder = publish.stage_folder(shipped, tmp_path / "staged", "# card\n", dtype=dtype)
    target = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]

    for name in (publish.LORA_FILE, publish.COMFY_FILE):
        trained, staged = load_file(str(shipped / name)), load_file(str(folder / name))
        assert staged.keys() == trained.keys() and all(t.dtype == torch.float32 for t in trained.values())
        for key, value in trained.items():
            assert staged[key].dtype == target and torch.equal(staged[key], value.to(target))
        with safe_open(str(shipped / name), "pt") as a, safe_open(str(folder / name), "pt") as b:
            assert a.metadata() == b.metadata()
        assert (folder / name).stat().st_size < 0.6 * (shipped / name).stat().st_size
    assert (
        publish.stage_folder(shipped, tmp_path / "fp32", "# c").joinpath(publish.LORA_FILE).read_bytes()
        == (shipped / publish.LORA_FILE).read_bytes()
    )  # fp32, as trained: the file itself
    with pytest.raises(ValueError, match="unknown dtype 'int8'.*fp32, bf16, fp16"):
        publish.stage_folder(shipped, tmp_path / "bad", "# c", dtype="int8")


# --- python -m engine publish -----------------------------------------------------------------------------


def test_publish_command_exports_a_zip_with_card_lora_in_the_asked_dtype_comfyui_file_and_samples(tmp_path):
    import torch
    from safetensors.torch import load as load_bytes

    from conftest import run_engine

    archive = tmp_path / "out" / "shapes-dfd.zip"
    done = run_engine(
        "publish", "--lora", "dfd", "--repo", "me/shapes-dfd", "--export", str(archive), "--dtype", "bf16"
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote {archive}" in done.stdout and "LoRA (bf16)" in done.stdout
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        card = z.read("shapes-dfd/README.md").decode()
        lora = load_bytes(z.read(f"shapes-dfd/{publish.LORA_FILE}"))
        comfy = load_bytes(z.read(f"shapes-dfd/{publish.COMFY_FILE}"))
    assert {f"shapes-dfd/{n}" for n in ("README.md", "lora_config.json", "made_by.json")} <= names
    shipped = sorted(p.name for p in (SHIPPED_DIR / "dfd" / "samples").glob("*.mp4"))
    assert sorted(n.split("/")[-1] for n in names if n.endswith(".mp4")) == shipped and len(shipped) == 8
    assert all(t.dtype == torch.bfloat16 for t in [*lora.values(), *comfy.values()])
    front = card_front(card)
    assert "base_model_relation" not in front and len(front["widget"]) == 8  # the built-in base: no Hub base
    assert front["widget"][0]["output"]["url"] == "samples/" + shipped[0]
    assert "| student updates | 40 (every 5th step) |" in card and "| LoRA weights | bf16 |" in card


def _mocked_hub(monkeypatch) -> list:
    import huggingface_hub

    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", self.token, repo_id, kwargs.get("private")))
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        calls.append(
            (
                "upload_folder",
                self.token,
                kwargs["repo_id"],
                sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()),
            )
        )

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    return calls


def test_publish_command_pushes_to_the_repo_with_the_private_flag_and_the_token_it_found(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    from engine.cli.main import main

    calls = _mocked_hub(monkeypatch)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["publish", "--lora", "dmd2", "--repo", "me/shapes-dmd2", "--private"]) == 0
    assert calls[0] == ("create_repo", TOKEN, "me/shapes-dmd2", True)
    assert calls[1][:3] == ("upload_folder", TOKEN, "me/shapes-dmd2")
    assert {"README.md", publish.LORA_FILE, publish.COMFY_FILE} <= set(calls[1][3])
    assert sum(n.startswith("samples/") for n in calls[1][3]) == 8
    out = capsys.readouterr().out
    assert "pushed the LoRA (fp32)" in out and "token from HF_TOKEN" in out and TOKEN not in out

    calls.clear()  # no HF_TOKEN: the login `hf auth login` stored
    monkeypatch.delenv("HF_TOKEN")
    stored = tmp_path / "token"
    stored.write_text("hf_StoredLoginToken123456")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(stored))
    assert main(["publish", "--lora", "dmd2", "--repo", "me/shapes-dmd2"]) == 0
    assert calls[0] == ("create_repo", "hf_StoredLoginToken123456", "me/shapes-dmd2", False)

    calls.clear()  # --token first
    assert main(["publish", "--lora", "dmd2", "--repo", "me/other", "--token", TOKEN]) == 0
    assert calls[0][1:3] == (TOKEN, "me/other")


def test_publish_command_says_in_one_line_which_token_is_missing_or_refused(monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    from engine.cli.main import main

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login"))
    assert main(["publish", "--lora", "dmd2", "--repo", "me/shapes-dmd2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: no token: pass --token, set HF_TOKEN, or run `hf auth login` with a write token"

    _hub_answers(monkeypatch, 403, f"403 Forbidden: token {TOKEN} has read access only")
    assert main(["publish", "--lora", "dmd2", "--repo", "someone-else/x", "--token", TOKEN]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(
            "error: the Hub refused the token (403) from --token: it may not create or write repos under 'someone-else'"
        )
        and "'write' token" in err
    )
    assert TOKEN not in err and len(err.splitlines()) == 1

    _hub_answers(monkeypatch, 401, "401 Unauthorized")
    assert main(["publish", "--lora", "dmd2", "--repo", "me/x", "--token", TOKEN]) == 2
    assert "refused the token (401) from --token: it is not a valid token" in capsys.readouterr().err

    assert main(["publish", "--lora", "dmd2", "--repo", "not a repo", "--token", TOKEN]) == 2
    assert "--repo: the repo id 'not a repo' must look like" in capsys.readouterr().err
    assert main(["publish", "--lora", str(tmp_path), "--repo", "me/x", "--token", TOKEN]) == 2
    assert "no pytorch_lora_weights.safetensors there" in capsys.readouterr().err


@pytest.mark.parametrize(
    "base, published",
    [
        ("/srv/dfd/models/my-wan", "my-wan"),
        (
            "/data/.huggingface/hub/models--Wan-AI--Wan2.1-T2V-1.3B-Diffusers/snapshots/0123abc",
            "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        ),
        ("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"),
        ("shapes-tiny", "shapes-tiny"),
    ],
)
def test_a_published_student_never_names_its_base_by_a_server_path(tmp_path, student_dir, base, published):
    config = json.loads((student_dir / "lora_config.json").read_text())
    (student_dir / "lora_config.json").write_text(json.dumps({**config, "base": base}))
    card = publish.model_card(card_info(base=base))
    folder = publish.stage_folder(student_dir, tmp_path / "staged", card)

    staged = json.loads((folder / "lora_config.json").read_text())
    assert staged == {**config, "base": published}
    assert json.loads((student_dir / "lora_config.json").read_text())["base"] == base  # the student's own stays
    if base.startswith("/"):
        assert "/srv/" not in card and "/data/" not in card and f"`{published}`" in card
