"""The `sample` job kind: one video per seed from a base model (optionally with a student LoRA), the unit
of work behind the Compare and Diversity tabs. Its config is engine.config.SampleConfig."""

from __future__ import annotations

import argparse
from pathlib import Path

from .kinds import JobKind, register

def parse_seeds(text: str) -> list[int]:
    """engine.seeds.parse_seeds as an argparse type."""
    from ..config.seeds import parse_seeds as parse

    try:
        return parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", help="base model: shapes-tiny (built in), a diffusers folder or a hub id")
    parser.add_argument("--prompt", help="what the videos should show")
    parser.add_argument("--seeds", type=parse_seeds, help="one video per seed: 3, 1-8 or 1,4,9 (default 1)")
    parser.add_argument("--steps", type=int, help="sampling steps of the teacher (default 50)")
    parser.add_argument("--cfg", type=float, dest="guidance", help="classifier-free guidance scale (default 5)")
    parser.add_argument("--lora", help="folder of a student LoRA (pytorch_lora_weights.safetensors)")
    parser.add_argument("--scale", type=int, help="nearest-neighbour upscaling of the written videos (default 1)")
    parser.add_argument("--negative-prompt", help="what the videos should not show")


_OPTION_FIELDS = ("base", "prompt", "seeds", "steps", "guidance", "lora", "scale", "negative_prompt")


def config_from_args(args: argparse.Namespace) -> dict:
    """Only the options given: SampleConfig's defaults stay the only defaults."""
    return {name: getattr(args, name) for name in _OPTION_FIELDS if getattr(args, name, None) is not None}


def run(config, job_dir: Path, reporter) -> None:
    """Generate the videos into job_dir/samples and record each as a `video` artifact."""
    from ..generation.generate import generate  # imports torch and diffusers: only in the job process

    reporter.log(f"sampling {len(config.seeds)} video(s) of {config.prompt!r} with {config.base}")
    result = generate(config, job_dir / "samples", progress=lambda step, total: reporter.progress(step, total))
    for seed, path in zip(config.seeds, result.paths):
        reporter.artifact("video", path, label=f"seed {seed}")
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
