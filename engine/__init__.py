"""DFD Studio's engine: the built-in world, models and samplers, distillation, evaluation, jobs.

The names below are the engine's public API: what the studio (and a script) may use. They are loaded
on first use, so `import engine` stays cheap (no torch) and a web page that only lists jobs never
imports the models. Everything else under engine/ is internal and may move.

    engine/core/        file names, the student's times, the flow-matching arithmetic (shared by all)
    engine/datasets/    the user's videos as training data: data specs, captions, windows (torch-free)
    engine/shapes/      the built-in world, its tiny teacher's parts and the attribute recognizer
    engine/pretrain/    training the built-in world's teacher and recognizer
    engine/models/      base models by name, folder or hub id; students and their LoRA files
    engine/generation/  the teacher's and the student's samplers; generate(); render() with cached models
    engine/distill/     DMD2/DFD losses, LoRA adapters, the trainer, real data, multi-process runs
    engine/evaluation/  metrics, CLIP/DINOv2 features, evaluate, the study, benchmarks
    engine/media/       mp4 files, side-by-side videos and grids
    engine/hub/         model cards and publishing to the Hugging Face Hub
    engine/config/      the typed job configs (torch-free)
    engine/jobs/        the job queue: kinds, worker, runner, reporter
    engine/cli/         `python -m engine ...`

docs/architecture.md, "The engine's layers", says which of them may import which.
"""

from __future__ import annotations

import importlib
import logging

# torchao (the int8 frozen base, DistillConfig.base_int8) is imported by diffusers and peft whenever it is
# installed. Without its CUDA kernels (any CPU, most GPUs) torchao and diffusers log a warning per kernel library
# or serialized tensor class they cannot load, and torch one per enum torchao registers, at every start: none of
# them touches what the engine uses (int8 weight-only storage), so they stay out of the user's terminal.
for _noisy in ("torchao", "diffusers.quantizers.torchao.torchao_quantizer", "torch.utils._pytree"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

# public name -> "module" (the module itself) or "module:attribute"
_API = {
    # sub-APIs used as modules
    "jobs": "engine.jobs",
    "world": "engine.shapes.world",
    "publish": "engine.hub.publish",
    "hf_jobs": "engine.jobs.hf_jobs",
    "hf_tracker": "engine.jobs.hf_tracker",
    # models and students
    "ModelError": "engine.models.names:ModelError",
    "BUILTIN_MODELS": "engine.models.names:BUILTIN_MODELS",
    "WAN_DEFAULTS": "engine.models.names:WAN_DEFAULTS",
    "check_model": "engine.models.names:check_model",
    "resolve_model": "engine.models.names:resolve_model",
    "video_window": "engine.models.names:video_window",
    "base_task": "engine.models.names:base_task",
    "base_tasks": "engine.models.names:base_tasks",
    "shipped_students": "engine.models.students:shipped_students",
    "job_students": "engine.models.students:job_students",
    "student_t_list": "engine.models.students:student_t_list",
    "training_guidance": "engine.models.students:training_guidance",
    # configs
    "DistillConfig": "engine.config.distill:DistillConfig",
    "SampleConfig": "engine.config.sample:SampleConfig",
    "SHAPES_PRESET": "engine.config.distill:SHAPES_PRESET",
    "build_distill_config": "engine.config.build:build_distill_config",
    "ConfigError": "engine.config.fields:ConfigError",
    "settings_of": "engine.config.fields:settings_of",
    "run_config_yaml": "engine.config.files:run_config_yaml",
    "RUN_YAML": "engine.config.files:RUN_YAML",
    # data uploads
    "UploadError": "engine.distill.uploads:UploadError",
    "count_captioned": "engine.distill.uploads:count_captioned",
    "scan_folder": "engine.datasets.dataset_config:scan_folder",
    "DataError": "engine.datasets.sources:DataError",
    "check_data_spec": "engine.datasets.dataset_config:check_data_spec",
    "extract_dataset": "engine.distill.uploads:extract_dataset",
    "save_lora_upload": "engine.distill.uploads:save_lora_upload",
    "save_data_config_upload": "engine.distill.uploads:save_data_config_upload",
    # generation: sampling in a long-lived process (one cached model per base)
    "Rendered": "engine.generation.renderer:Rendered",
    "render": "engine.generation.renderer:render",
    "weights_version": "engine.generation.renderer:weights_version",
    "world_of": "engine.generation.renderer:world_of",
    "samples_in_jobs": "engine.generation.renderer:samples_in_jobs",
    "accelerator_present": "engine.core.hardware:accelerator_present",
    "worker_health": "engine.jobs.health:worker_health",
    "worker_stopped": "engine.jobs.health:stopped",
    # evaluation
    "clip_metrics": "engine.evaluation.clip_metrics:clip_metrics",
    "check_features": "engine.evaluation.settings:check_features",
    "study_summary": "engine.evaluation.when_dfd_helps:study_summary",
    # memory and time plan (planned in a fresh process, kept by its settings)
    "plan_of_config": "engine.plan.settings:plan_of_config",
    "PlanError": "engine.plan.spec:PlanError",
    "PLAN_GPUS": "engine.plan.timing:GPUS",
    "PLAN_DEFAULT_MFU": "engine.plan.timing:DEFAULT_MFU",
    # media
    "write_mp4": "engine.media.video:write_mp4",
    "read_mp4": "engine.media.video:read_mp4",
    "side_by_side": "engine.media.composite:side_by_side",
    "video_grid": "engine.media.composite:video_grid",
    "still_grid": "engine.media.composite:still_grid",
    "write_png": "engine.media.composite:write_png",
    "clip_fps": "engine.media.composite:clip_fps",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"engine has no public name {name!r} (the public API is engine.__all__)")
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
