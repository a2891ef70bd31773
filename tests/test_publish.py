"""Publishing a student: the model card says what the student is, the staged folder and the zip hold the
LoRA + card + samples for real, and a push hands that folder and the token to huggingface_hub (mocked at
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

from engine.hub import publish
from engine.models.students import SHIPPED_DIR

TOKEN = "hf_SecretTokenForTests1234567890"


@pytest.fixture
def student_dir(tmp_path) -> Path:
    from safetensors.numpy import save_file

    folder = tmp_path / "student"
    folder.mkdir()
    save_file({"transformer.blocks.0.attn1.to_q.lora_A.weight": np.ones((4, 8), np.float32)},
              str(folder / publish.LORA_FILE))
    save_file({"diffusion_model.blocks.0.self_attn.q.lora_A.weight": np.ones((4, 8), np.float32)},
              str(folder / publish.COMFY_FILE))
    (folder / "lora_config.json").write_text(json.dumps({"rank": 4, "method": "dfd", "t_list": [0.999, 0.937, 0.833, 0.0]}))
    (folder / "optimizer.pt").write_bytes(b"not part of a release")
    return folder


def card_info(**overrides) -> publish.CardInfo:
    values = dict(repo_id="someone/shapes-dfd", base="shapes-tiny", method="dfd", steps=200,
                  t_list=[0.999, 0.937, 0.833, 0.0], settings={"lora_rank": 16, "data_forcing_prob": 0.5},
                  metrics={"diversity": 0.4123, "named correct": 0.875}, samples=[("samples/seed1.mp4", "a red circle")],
                  license="apache-2.0", source="job j-20261121-abcdef")
    values.update(overrides)
    return publish.CardInfo(**values)


def test_model_card_names_base_method_steps_settings_metrics_samples_usage_and_license():
    card = publish.model_card(card_info(base_hub_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
                                        base="Wan-AI/Wan2.1-T2V-1.3B-Diffusers"))

    front, body = card.split("---\n", 2)[1], card.split("---\n", 2)[2]
    assert "library_name: diffusers" in front and "license: apache-2.0" in front
    assert 'base_model: "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"' in front and "  - dfd" in front
    assert "DFD (Data-Forcing Distillation)" in body and "| student updates | 200 |" in body
    assert "| lora_rank | 16 |" in body and "| diversity | 0.4123 |" in body
    assert "[a red circle](samples/seed1.mp4)" in body
    assert 'pipe.load_lora_weights("someone/shapes-dfd", weight_name="pytorch_lora_weights.safetensors")' in body
    assert "num_inference_steps=3" in body and "## License" in body


def test_card_of_a_local_base_has_no_base_model_field_and_escapes_table_cells():
    card = publish.model_card(card_info(settings={"note": "a|b"}, base_hub_id=None))
    assert "base_model:" not in card
    assert "| note | a\\|b |" in card


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
    assert names == ["README.md", publish.COMFY_FILE, "lora_config.json", publish.LORA_FILE,
                     "samples/seed1.mp4"]
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
            return self._reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                          for f in files]})
        if "/commit/" in self.path:
            return self._reply({"commitUrl": f"http://{self.headers['Host']}/someone/shapes-dfd/commit/{'a' * 40}",
                                "commitOid": "a" * 40,
                                "success": True, "pullRequestUrl": None})
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
        url = publish.push_folder(folder, "someone/shapes-dfd", TOKEN, endpoint=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()

    assert url.endswith("/someone/shapes-dfd")
    assert all(auth == f"Bearer {TOKEN}" for _, auth, _ in _FakeHub.received)
    commit = b"".join(body for path, _, body in _FakeHub.received if "/commit/" in path)
    for name in ("README.md", publish.LORA_FILE, "lora_config.json"):
        assert name.encode() in commit
    assert _FakeHub.received_cards[0]["library_name"] == "diffusers" and "dfd" in _FakeHub.received_cards[0]["tags"]
