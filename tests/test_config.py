"""The one path that builds a run's config (paper defaults, the base's preset, a config file, the user's
values), the field metadata the command line and the studio form are generated from, config files in
and out, and errors that name the field (and the file) in one line. Torch-free, as these configs are."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import fields

import pytest

import storage
from conftest import ROOT, run_engine
from engine.cli.distill import distill_config_from_args
from engine.cli.main import build_parser
from engine.config import SHAPES_PRESET, ConfigError, DistillConfig, RecognizerConfig, TeacherConfig
from engine.config.build import build_distill_config
from engine.config.fields import flag, settings_of
from engine.config.files import read_config_file, run_config_yaml, write_run_config


def _distill_args(*argv: str):
    return build_parser().parse_args(["distill", *argv])


@pytest.fixture
def data_dir(tmp_path):
    yield tmp_path / "studio"
    storage.close_all()


# --- the layers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix, text",
    [
        (
            ".yaml",
            "steps: 40\nlr_fake: 1e-4\nt_list: [0.999, 0.5, 0.0]\ncaption_regime: mixed\n"
            "gradient_checkpointing: true\n",
        ),
        (
            ".toml",
            'steps = 40\nlr_fake = 1e-4\nt_list = [0.999, 0.5, 0.0]\ncaption_regime = "mixed"\n'
            "gradient_checkpointing = true\n",
        ),
        (
            ".json",
            json.dumps(
                {
                    "steps": 40,
                    "lr_fake": 1e-4,
                    "t_list": [0.999, 0.5, 0.0],
                    "caption_regime": "mixed",
                    "gradient_checkpointing": True,
                }
            ),
        ),
    ],
)
def test_a_config_files_values_land_in_the_run_config_and_options_override_them(tmp_path, suffix, text):
    path = tmp_path / f"run{suffix}"
    path.write_text(text)

    from_file = distill_config_from_args(_distill_args("--config", str(path), "--out", str(tmp_path / "o")))
    assert (from_file.steps, from_file.lr_fake, from_file.t_list) == (40, 1e-4, [0.999, 0.5, 0.0])
    assert from_file.caption_regime == "mixed" and from_file.gradient_checkpointing is True
    assert from_file.lora_rank == SHAPES_PRESET["lora_rank"]  # the preset of shapes-tiny, under the file
    assert from_file.out == str(tmp_path / "o")

    overridden = distill_config_from_args(
        _distill_args(
            "--config",
            str(path),
            "--steps",
            "60",
            "--t-list",
            "0.9,0",
            "--no-gradient-checkpointing",
            "--out",
            str(tmp_path / "o"),
        )
    )
    assert (overridden.steps, overridden.t_list, overridden.gradient_checkpointing) == (60, [0.9, 0.0], False)
    assert overridden.lr_fake == 1e-4 and overridden.caption_regime == "mixed"  # the file's, where no option is given


def test_the_preset_applies_for_shapes_tiny_and_not_for_another_base(tmp_path):
    paper = DistillConfig()
    shapes = build_distill_config()
    assert {k: getattr(shapes, k) for k in SHAPES_PRESET} == SHAPES_PRESET
    other = build_distill_config(values={"base": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"})
    assert {k: getattr(other, k) for k in SHAPES_PRESET} == {k: getattr(paper, k) for k in SHAPES_PRESET}
    assert other.lora_rank == 32 and other.lr_fake == 1e-5

    # a base named in the file decides the preset too, and the file's values still win over it
    path = tmp_path / "wan.yaml"
    path.write_text("base: Wan-AI/Wan2.1-T2V-1.3B-Diffusers\nbatch_size: 2\n")
    from_file = build_distill_config(config_file=path)
    assert (from_file.lora_rank, from_file.batch_size) == (32, 2)
    assert build_distill_config(config_file=path, values={"base": "shapes-tiny"}).lora_rank == 16


def test_the_job_row_is_built_on_the_same_path(data_dir, tmp_path):
    import engine.jobs as api

    job = api.submit(data_dir, "distill", {"steps": 5})
    assert job.config["lora_rank"] == SHAPES_PRESET["lora_rank"] and job.config["steps"] == 5

    from engine.cli.jobs import _JobsParser  # `jobs submit --kind distill`: the same options and --config

    path = tmp_path / "run.yaml"
    path.write_text("steps: 30\nseed: 4\n")
    parser = _JobsParser(kind_options=True)
    parser.add_argument("--kind")
    args = parser.parse_args(["--kind", "distill", "--config", str(path), "--seed", "9"])
    config = api.get_kind("distill").config_from_args(args)  # built and validated once, queued as it is
    assert (config.steps, config.seed, config.lora_rank) == (30, 9, 16) and config.out is None


# --- refusals: one line, naming the field and the file ----------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "steps: 40\nlearning_rate: 0.1\n",
            "bad.yaml: unknown setting 'learning_rate'; the settings are: method, base",
        ),
        ("steps: many\n", "bad.yaml: steps must be a whole number, got 'many'"),
        ("steps: 0\n", "bad.yaml: steps must be between 1 and 1000000, got 0"),
        ("method: gan\n", "bad.yaml: unknown method 'gan'; choose dmd2 or dfd"),
        ("- steps\n- 40\n", "bad.yaml: expected settings as `name: value` lines, got a list"),
        ("steps: [1\n", "bad.yaml: not valid YAML"),
    ],
)
def test_a_bad_config_file_is_refused_in_one_line_naming_the_setting_and_the_file(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as refused:
        build_distill_config(config_file=path)
    assert str(refused.value).startswith(f"{path}: ") and expected.removeprefix("bad.yaml") in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_command_line_refuses_a_bad_config_file_before_torch_loads(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("steps: 40\nlearning_rate: 0.1\n")
    result = run_engine("distill", "--config", str(path), "--out", str(tmp_path / "o"), timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {path}: unknown setting 'learning_rate'")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()

    missing = run_engine("distill", "--config", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o"), timeout=60)
    assert missing.returncode == 2 and f"{tmp_path / 'none.toml'}: no such config file" in missing.stderr


def test_engine_errors_name_the_field_and_each_front_end_words_it(tmp_path):
    from engine.cli.progress import cli_error

    with pytest.raises(ConfigError) as refused:
        build_distill_config(values={"init": str(tmp_path)})
    err = refused.value
    assert (
        err.field == "init"
        and str(err) == f"init: no pytorch_lora_weights.safetensors in {tmp_path}; give a student LoRA folder"
    )
    assert str(cli_error(err)).startswith("--init: no pytorch_lora_weights.safetensors")
    assert err.worded(lambda name: "Start DFD from").startswith("Start DFD from: no ")
    copy = pickle.loads(pickle.dumps(err))  # a job process hands it on with its field
    assert (copy.field, str(copy)) == (err.field, str(err))

    with pytest.raises(ConfigError, match=r"^DFD is a post-training stage: start it from a DMD2 student LoRA \(init\)"):
        build_distill_config(values={"method": "dfd"})


def test_teacher_config_validate_refuses_bad_values_naming_the_field(tmp_path):
    assert TeacherConfig().validate() == TeacherConfig()
    for change, field, words in [
        ({"steps": 0}, "steps", "steps must be at least 1"),
        ({"pool_clips": 4, "batch_size": 8}, "pool_clips", "pool_clips must be at least batch_size"),
        ({"lr": 0.0}, "lr", "lr must be positive"),
        ({"time_shift": 0.0}, "time_shift", "time_shift must be positive"),
        ({"balanced_detailed": 1.0}, "balanced_detailed", "balanced_detailed must be in [0, 1)"),
        ({"lr_schedule": "linear"}, "lr_schedule", "unknown lr_schedule 'linear'"),
        ({"init": str(tmp_path / "nope")}, "init", "no such folder"),
    ]:
        with pytest.raises(ConfigError) as refused:
            TeacherConfig(**change).validate()
        assert refused.value.field == field and words in str(refused.value), str(refused.value)
    with pytest.raises(ConfigError, match="batch_size must be at least 2"):
        RecognizerConfig(batch_size=1).validate()


# --- one description, two front ends ---------------------------------------------------------------------


def test_every_distill_field_has_a_help_line_and_an_option_of_the_command_line():
    parser = build_parser()
    distill = parser._subparsers._group_actions[0].choices["distill"]
    options = {action.dest: action for action in distill._actions}
    for s in settings_of(DistillConfig):
        assert s.help, f"{s.name} has no help line"
        assert flag(s.name) in options[s.name].option_strings
        assert options[s.name].help == s.help.replace("%", "%%")
        if s.choices:
            assert tuple(options[s.name].choices) == s.choices
    assert tuple(options["method"].choices) == ("dmd2", "dfd")  # the choices live in the field, nowhere else
    assert {f.name for f in fields(DistillConfig)} == {s.name for s in settings_of(DistillConfig)}


def test_the_studio_form_is_generated_from_the_same_metadata():
    import gradio as gr

    from studio import distill

    settings = {s.name: s for s in settings_of(DistillConfig)}
    defaults = distill.defaults_for("shapes-tiny")
    assert defaults == build_distill_config(check=False).to_dict()
    with gr.Blocks():
        for name in distill.KNOBS:
            knob = distill._knob(name, defaults[name])
            s = settings[name]
            assert knob.elem_id == f"distill-{name}" and knob.info == s.help
            if s.choices:
                assert isinstance(knob, gr.Dropdown) and [c[1] for c in knob.choices] == list(s.choices)
            elif s.kind == "bool":
                assert isinstance(knob, gr.Checkbox)
            elif s.kind in ("int", "float"):
                assert isinstance(knob, gr.Number) and (knob.precision == 0) == (s.kind == "int")


# --- config files out -------------------------------------------------------------------------------------


def i2v_folder(folder):
    """An image-to-video pipeline folder as far as its files tell without loading it: Wan2.1 I2V's class and
    channels (16 latents + 4 mask + 16 condition). tests/test_i2v.py checks the rule on real loaded models."""
    for name, values in [
        ("model_index.json", {"_class_name": "WanImageToVideoPipeline"}),
        ("transformer/config.json", {"in_channels": 36}),
        ("vae/config.json", {"z_dim": 16, "scale_factor_temporal": 4}),
    ]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(values))
    return folder


@pytest.mark.parametrize("task", ["t2v", "i2v"])
def test_a_runs_run_yaml_builds_the_same_config_again(tmp_path, task):
    base = "shapes-tiny" if task == "t2v" else str(i2v_folder(tmp_path / "i2v-base"))
    config = build_distill_config(
        values={
            "steps": 40,
            "t_list": "0.999, 0.5, 0",
            "betas": "0.5, 0.9",
            "base": base,
            "task": task,
            "out": str(tmp_path / "first"),
        }
    )
    write_run_config(config, tmp_path)
    assert json.loads((tmp_path / "distill_config.json").read_text()) == config.to_dict()
    written = read_config_file(tmp_path / "run.yaml")
    assert "out" not in written and written["t_list"] == [0.999, 0.5, 0.0] and written["task"] == task
    again = build_distill_config(config_file=tmp_path / "run.yaml", values={"out": str(tmp_path / "first")})
    assert again == config and again.task == task


def test_the_task_must_be_the_bases_known_from_its_files_before_torch_loads(data_dir, tmp_path):
    import engine.jobs as api

    i2v = str(i2v_folder(tmp_path / "i2v-base"))
    for base, task, known in [("shapes-tiny", "i2v", "t2v"), (i2v, "t2v", "i2v")]:
        with pytest.raises(ConfigError) as refused:
            build_distill_config(values={"base": base, "task": task})
        kinds = {"t2v": "a text-to-video", "i2v": "an image-to-video"}
        assert refused.value.field == "task" and str(refused.value) == (
            f"task {task} needs {kinds[task]} base, but {base} is {kinds[known]} model; choose {known}, or another base"
        )
        with pytest.raises(ValueError, match=f"^task {task} needs"):  # the job row is built on the same path
            api.submit(data_dir, "distill", {"base": base, "task": task})
    assert not (data_dir / "studio.db").exists() or api.list_jobs(data_dir) == []

    job = api.submit(data_dir, "distill", {"base": i2v, "task": "i2v", "steps": 5})
    assert job.config["task"] == "i2v"
    path = tmp_path / "queued.yaml"
    path.write_text(run_config_yaml(build_distill_config(values=job.config, check=False)))
    assert build_distill_config(config_file=path).task == "i2v"

    result = run_engine("distill", "--task", "i2v", "--out", str(tmp_path / "o"), timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: --task i2v needs an image-to-video base, but shapes-tiny is a text-to-video model; choose t2v, or "
        "another base"
    )
    assert not (tmp_path / "o").exists()


def test_a_hub_bases_task_is_read_from_its_cached_model_index(tmp_path, monkeypatch):
    import huggingface_hub

    from engine.models.names import base_task

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert base_task("someone/i2v-model") is None  # not fetched yet: the loaded model is checked instead
    repo = tmp_path / "models--someone--i2v-model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "model_index.json").write_text('{"_class_name": "WanImageToVideoPipeline"}')
    assert base_task("someone/i2v-model") == "i2v"
    with pytest.raises(ConfigError, match="^task t2v needs a text-to-video base, but someone/i2v-model is an"):
        build_distill_config(values={"base": "someone/i2v-model"})


def test_the_base_task_is_told_without_importing_torch():
    code = (
        "import sys, engine; assert engine.base_task('shapes-tiny') == 't2v'; "
        "engine.build_distill_config(values={'task': 't2v'}); "
        "print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_the_command_line_lists_every_command():
    result = run_engine("--help", timeout=60)
    assert result.returncode == 0
    commands = (
        "worker",
        "jobs",
        "pretrain-teacher",
        "train-recognizer",
        "export-world",
        "distill",
        "sample",
        "evaluate",
        "study",
        "bench",
        "publish",
        "results",
        "plan",
    )
    listed = build_parser()._subparsers._group_actions[0].choices
    assert set(listed) == set(commands) and all(f"    {name}" in result.stdout for name in commands)
