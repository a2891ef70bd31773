"""The Publish tab's callbacks with the Hub client mocked at its boundary (huggingface_hub.HfApi), on the mini
teacher's students: preview stages the card and samples and export zips the same; push uses the typed token
once and never stores it (or the visitor's OAuth token); the LoRA dtype chosen reaches the published folder;
a reload shows the kept preview and zip again, sampling nothing."""

from __future__ import annotations

import json
import typing
import zipfile
from pathlib import Path

import gradio as gr
import pytest

from engine.models.students import COMFY_FILE, LORA_FILE
from studio import publish
from studio.files import public_folder

TOKEN = "hf_TypedNeverStored123"  # a made-up value in the hf_ shape the redaction looks for

TOKEN = "hf_TypedNeverStored123"  # a made-up value in the hf_ shape the redaction looks for


def _tab(data_dir):
    with gr.Blocks() as demo:
        publish.build(data_dir, public_folder(data_dir))
    callbacks = {getattr(f.fn, "__name__", ""): f for f in demo.fns.values()}
    return demo, callbacks


def test_a_bf16_publish_from_the_tab_uploads_bf16_lora_files_and_says_so_on_the_card(
    data_dir, mini_students, monkeypatch
):
    import huggingface_hub
    import torch
    from safetensors.torch import load_file

    demo, callbacks = _tab(data_dir)
    [dtype_box] = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "publish-dtype"]
    assert dtype_box.value == "fp32" and [c[1] for c in dtype_box.choices] == ["fp32", "bf16", "fp16"]
    push = callbacks["on_push"]
    assert [getattr(i, "elem_id", None) for i in push.inputs][3] == "publish-dtype"  # the box reaches the push

    uploaded = {}

    def upload_folder(self, **kwargs):  # what the Hub would receive, read while the folder exists
        folder = Path(kwargs["folder_path"])
        uploaded["dtypes"] = {
            name: {t.dtype for t in load_file(str(folder / name)).values()} for name in (LORA_FILE, COMFY_FILE)
        }
        uploaded["card"] = (folder / "README.md").read_text()

    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "create_repo",
        lambda self, repo_id, **kw: huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}"),
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)

    message, token_field = push.fn("dmd2", "me/shapes-dmd2", "mit", "bf16", False, TOKEN, None)

    assert message.startswith("Pushed LoRA, model card and samples to https://huggingface.co/me/shapes-dmd2")
    assert "LoRA weights in bf16" in message and token_field == ""
    assert uploaded["dtypes"] == {LORA_FILE: {torch.bfloat16}, COMFY_FILE: {torch.bfloat16}}
    assert "| LoRA weights | bf16 |" in uploaded["card"]
    trained = load_file(str(mini_students / "dmd2" / LORA_FILE))
    assert {t.dtype for t in trained.values()} == {torch.float32}  # the student's own files stay as trained

    callbacks["on_push"].fn("dmd2", "me/shapes-dmd2", "mit", "fp32", False, TOKEN, None)  # the default: as trained
    assert uploaded["dtypes"][LORA_FILE] == {torch.float32}
    with pytest.raises(gr.Error, match="unknown LoRA dtype 'int8'; pick one of fp32, bf16, fp16"):
        push.fn("dmd2", "me/shapes-dmd2", "mit", "int8", False, TOKEN, None)


def test_publish_preview_stages_card_and_samples_and_export_zips_the_same(data_dir, mini_students):
    public = public_folder(data_dir)
    assert [k for _, k in publish.student_choices(data_dir)] == ["dmd2", "dfd"]

    card, shown, status = publish.preview(data_dir, public, "dfd", "me/shapes-dfd", "apache-2.0")

    assert "DFD (Data-Forcing Distillation)" in card and 'pipe.load_lora_weights("me/shapes-dfd"' in card
    assert "## Samples" in card and all(Path(v).is_relative_to(public) for v, _ in shown) and len(shown) == 4
    staged = data_dir.resolve() / "publish" / "dfd"
    assert {"README.md", "pytorch_lora_weights.safetensors", "lora_config.json"} <= {p.name for p in staged.iterdir()}
    assert len(list((staged / "samples").glob("*.mp4"))) == 4 and "ready" in status

    archive = publish.export(data_dir, public, "dfd", "me/shapes-dfd", "apache-2.0")
    assert Path(archive).is_relative_to(public / "exports")
    with zipfile.ZipFile(archive) as z:
        assert sum(n.endswith(".mp4") for n in z.namelist()) == 4 and "dfd/README.md" in z.namelist()


def test_a_reload_shows_the_kept_preview_and_zip_again_and_drops_a_kept_request_that_is_not_valid(
    data_dir, mini_students
):
    public = public_folder(data_dir)
    skipped = [gr.skip()] * 8
    for kept in (None, "not json", "[]", '{"request": [1, 2, 3, 4]}', '{"request": ["nobody", "", "mit", "fp32"]}'):
        assert publish.reopen(data_dir, public, kept) == skipped, kept
    kept = json.dumps({"request": ["dfd", "", "apache-2.0", "bf16"], "exported": True})
    shown = publish.reopen(data_dir, public, kept)
    form, rest = shown[:4], shown[4:]
    assert form[0]["value"] == "dfd" and form[1:] == ["", "apache-2.0", "bf16"]
    assert rest[:2] == [gr.skip(), gr.skip()] and "Press Preview card" in rest[2]  # nothing sampled on open

    publish.preview(data_dir, public, "dfd", "", "apache-2.0", "bf16")  # the samples, made once
    *_, card, samples, status, exported = publish.reopen(data_dir, public, kept)
    assert 'pipe.load_lora_weights("your-name/dfd-studio-dfd"' in card and "until you type a repo id" in status
    assert samples.count("<figcaption>") == 4 and samples.count("poster=") == 4
    assert exported == gr.skip()  # no zip yet
    archive = publish.export(data_dir, public, "dfd", "", "apache-2.0", "bf16")
    assert publish.reopen(data_dir, public, kept)[-1]["value"] == archive


def test_a_preview_and_an_offline_zip_need_no_repo_id_but_a_push_does(data_dir, mini_students):
    public = public_folder(data_dir)
    card, _, status = publish.preview(data_dir, public, "dfd", "  ", "apache-2.0")
    assert 'pipe.load_lora_weights("your-name/dfd-studio-dfd"' in card
    assert "until you type a repo id, which a push needs" in status
    archive = publish.export(data_dir, public, "dfd", "", "apache-2.0")
    assert Path(archive).name.startswith("dfd-studio-dfd-") and zipfile.is_zipfile(archive)
    with pytest.raises(ValueError, match="repo id '' must look like"):
        publish.push(data_dir, "dfd", "", "mit", False, "hf_typed_token_for_test", None, environ={})
    with pytest.raises(ValueError, match="repo id"):
        publish.preview(data_dir, public, "dfd", "not a repo", "apache-2.0")  # a typed one is still checked


def test_publish_push_uses_the_typed_token_once_and_never_stores_it(data_dir, mini_students, monkeypatch):
    import huggingface_hub

    seen = []
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "create_repo",
        lambda self, repo_id, **kw: (
            seen.append(self.token) or huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")
        ),
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: seen.append(kw["folder_path"]))

    message = publish.push(data_dir, "dmd2", "me/shapes-dmd2", "mit", False, TOKEN, None, environ={})

    assert message.startswith("Pushed LoRA, model card and samples to https://huggingface.co/me/shapes-dmd2")
    assert seen[0] == TOKEN and Path(seen[1]).name == "dmd2"
    assert not any(TOKEN.encode() in p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    with pytest.raises(ValueError, match="no token: paste a write token"):
        publish.push(data_dir, "dmd2", "me/shapes-dmd2", "mit", False, "", None, environ={})
    with pytest.raises(ValueError, match="repo id"):
        publish.push(data_dir, "dmd2", "not a repo", "mit", False, TOKEN, None, environ={})


def test_the_push_callback_asks_gradio_for_the_oauth_token_and_empties_the_token_field(data_dir):
    with gr.Blocks() as demo:
        publish.build(data_dir, public_folder(data_dir))
    [push_fn] = [f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_push"]
    assert typing.get_type_hints(push_fn)["oauth_token"] == typing.Optional[gr.OAuthToken]  # noqa: UP045
    [push_dep] = [f for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "on_push"]
    assert [o.elem_id for o in push_dep.outputs] == ["publish-status", "publish-token"]
