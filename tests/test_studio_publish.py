"""The Publish tab's choices that reach the published folder: the LoRA dtype, pushed through the tab's own
callback with the Hub client mocked at its boundary (huggingface_hub.HfApi), on the mini teacher's student."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from engine.models.students import COMFY_FILE, LORA_FILE
from studio import publish
from studio.files import public_folder

TOKEN = "hf_TypedNeverStored123"  # a made-up value in the hf_ shape the redaction looks for


def _tab(data_dir):
    with gr.Blocks() as demo:
        publish.build(data_dir, public_folder(data_dir))
    callbacks = {getattr(f.fn, "__name__", ""): f for f in demo.fns.values()}
    return demo, callbacks


def test_a_bf16_publish_from_the_tab_uploads_bf16_lora_files_and_says_so_on_the_card(data_dir, mini_students,
                                                                                   monkeypatch):
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
        uploaded["dtypes"] = {name: {t.dtype for t in load_file(str(folder / name)).values()}
                              for name in (LORA_FILE, COMFY_FILE)}
        uploaded["card"] = (folder / "README.md").read_text()

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo",
                        lambda self, repo_id, **kw: huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}"))
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
