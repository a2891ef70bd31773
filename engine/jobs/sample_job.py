"""The `sample` job kind: one video per seed from a base model (optionally with a student LoRA), the unit
of work behind the Compare and Diversity tabs. Its config is engine.config.sample.SampleConfig."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config.fields import setting_of
from ..config.options import add_options, given_values
from ..config.sample import SampleConfig
from .kinds import JobKind, register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options for SampleConfig's fields (help from its metadata); the guidance scale is --cfg, as in `sample`."""
    add_options(
        parser,
        SampleConfig,
        only=("base", "prompt", "seeds", "steps", "lora", "scale", "negative_prompt"),
        show_defaults=True,
    )
    guidance = setting_of(SampleConfig, "guidance")
    parser.add_argument("--cfg", type=float, dest="guidance", help=f"{guidance.help} (default {guidance.default:g})")


def config_from_args(args: argparse.Namespace) -> dict:
    """Only the options given: SampleConfig's defaults stay the only defaults."""
    return given_values(args, SampleConfig)


def run(config, job_dir: Path, reporter) -> None:
    """Generate the videos into job_dir/samples and record each as a `video` artifact."""
    from ..generation.generate import generate  # imports torch and diffusers: only in the job process

    reporter.log(f"sampling {len(config.seeds)} video(s) of {config.prompt!r} with {config.base}")
    result = generate(config, job_dir / "samples", progress=lambda step, total: reporter.progress(step, total))
    for seed, path in zip(config.seeds, result.paths):
        reporter.artifact("video", path, label=f"seed {seed}")
    # As metric points, so a page reading the job back shows the NFE the sampler counted (a causal student's
    # is per chunk) and a causal student's streaming figures, measured here without the model's loading.
    reporter.progress(reporter.last_step, reporter.last_step, nfe=result.nfe, **(result.stream or {}))
    reporter.log(f"wrote {len(result.paths)} video(s) in {result.seconds:.1f} s, {result.nfe} network evaluations each")


SAMPLE = register(
    JobKind(
        name="sample",
        config_class="engine.config.sample:SampleConfig",
        run=run,
        needs_accelerator=True,
        help="generate one video per seed with a base model (and optionally a student LoRA)",
        add_arguments=add_arguments,
        config_from_args=config_from_args,
    )
)
