"""What the command line refuses in one line instead of a traceback: an unreachable hub id, an unreachable
base or unusable data for distill, an output path that cannot be written, a student made for another base, a
LoRA whose tensors do not all land (and ComfyUI's format, which is read), a folder without model_index.json."""

import pytest
import torch

from conftest import ROOT, run_engine
from engine.models.base import ModelError, load_base_model, resolve_model


def test_an_unreachable_hub_id_says_what_to_do(tmp_path):
    result = run_engine("sample", "--base", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "--prompt", "x", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "could not fetch 'Wan-AI/Wan2.1-T2V-1.3B-Diffusers'" in result.stderr
    assert "pass the local folder" in result.stderr and "Traceback" not in result.stderr


def test_distill_refuses_an_unreachable_base_and_unusable_data_in_one_line(tmp_path, capsys):
    hub = run_engine(
        "distill", "--method", "dmd2", "--base", "no-such-user/no-such-model", "--out", str(tmp_path / "a")
    )
    assert hub.returncode == 2 and "could not fetch 'no-such-user/no-such-model'" in hub.stderr
    videos = tmp_path / "videos"  # found only once the trainer reads it: after torch has loaded
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"not a video")
    (videos / "a.txt").write_text("a clip")
    from engine.cli.main import main  # in this process: the command's code, without paying for a second torch import

    assert (
        main(["distill", "--method", "dmd2", "--data", str(videos), "--steps", "5", "--out", str(tmp_path / "b")]) == 2
    )
    assert f"error: no usable clips in {videos}" in capsys.readouterr().err
    assert "Traceback" not in hub.stderr


def test_an_output_path_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    result = run_engine("export-world", "--out", str(tmp_path / "file" / "clips"), "--n", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: Not a directory: {tmp_path / 'file' / 'clips'}; check the path" in result.stderr


def test_a_student_made_for_another_base_is_refused_in_one_sentence(tiny_wan_dir, tmp_path):
    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller
    from engine.generation.generate import student_adapter

    students = ROOT / "engine" / "assets" / "students"
    refusal = (
        r"does not fit the base model .*: its layers have other sizes; it was trained on shapes-tiny, use that base$"
    )
    model = load_base_model(str(tiny_wan_dir), device="cpu")
    with pytest.raises(ModelError, match=refusal):  # sampling it
        with student_adapter(model, students / "dfd"):
            pass
    assert not getattr(model.transformer, "peft_config", None)  # no half-loaded adapter stays behind
    with pytest.raises(ModelError, match=refusal):  # DFD post-training from it
        Distiller(
            DistillConfig(method="dfd", base=str(tiny_wan_dir), init=str(students / "dmd2"), lora_rank=16, steps=5),
            tmp_path / "run",
            model=model,
        )


def test_a_lora_whose_tensors_do_not_all_land_is_refused_and_comfyuis_format_is_read(tmp_path):
    import shutil

    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file, save_file

    from engine.config.distill import DistillConfig
    from engine.distill.trainer import Distiller
    from engine.generation.generate import student_adapter

    shipped = ROOT / "engine" / "assets" / "students" / "dfd"
    renamed, comfy = tmp_path / "renamed", tmp_path / "comfy"
    for folder in (renamed, comfy):
        folder.mkdir()
        shutil.copy(shipped / "lora_config.json", folder)
    weights = load_file(shipped / "pytorch_lora_weights.safetensors")
    save_file(
        {k.replace("attn1", "attn9"): v for k, v in weights.items()}, renamed / "pytorch_lora_weights.safetensors"
    )
    shutil.copy(shipped / "comfyui_lora.safetensors", comfy / "pytorch_lora_weights.safetensors")  # another format

    model = load_base_model("shapes-tiny", device="cpu")
    attn1 = sum("attn1" in k for k in weights)
    with pytest.raises(
        ModelError,
        match=rf"^{attn1} of the {len(weights)} tensors in .* match no LoRA layer of the base "
        r"model shapes-tiny \(e.g. 'transformer.blocks.0.attn9.",
    ):
        with student_adapter(model, renamed):
            pass
    assert not getattr(model.transformer, "peft_config", None)  # it does not stay half-loaded
    lora_weights = {}
    for folder in (shipped, comfy):  # the ComfyUI export, converted by diffusers, is the same student
        with student_adapter(model, folder, fused=False):
            name = next(n for n in model.transformer.peft_config if n not in lora_weights)
            lora_weights[name] = get_peft_model_state_dict(model.transformer, adapter_name=name)
    first, second = lora_weights.values()
    assert first.keys() == second.keys() and len(first) == len(weights)
    assert all(torch.equal(first[k], second[k]) for k in first)
    with pytest.raises(
        ModelError, match=rf"{attn1} of its tensors match no layer .*names this base, so the weights file"
    ):
        Distiller(
            DistillConfig(method="dfd", base="shapes-tiny", init=str(renamed), lora_rank=16, steps=5),
            tmp_path / "run",
            model=model,
        )


def test_a_folder_without_model_index_is_explained(tmp_path):
    with pytest.raises(ModelError, match="no model_index.json"):
        resolve_model(str(tmp_path))
