"""The `distill` job kind: a DMD2 run or a DFD post-training run, with engine.config.DistillConfig as
its config (the same object as `python -m engine distill` and the studio's Distill form), built by
engine.config.build: the job's settings over the base's preset and the paper's defaults."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..config.build import build_distill_config
from ..config.distill import DistillConfig
from ..config.options import add_config_file_option, add_options, given_values
from .kinds import JobKind, register
from .reporter import JobFailed


def add_arguments(parser) -> None:
    """One option per DistillConfig field (but out: the job's folder is its output), and --config FILE."""
    add_config_file_option(parser)
    add_options(parser, DistillConfig, skip=("out",))


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    """The run's config, built and validated once (paper recipe, then the base's preset, then the config file,
    then the options given) and stored in full, so the job row says exactly what ran; its output folder is
    the job's own."""
    values = given_values(args, DistillConfig, skip=("out",))
    config = build_distill_config(config_file=getattr(args, "config_file", None), values=values)
    config.out = None
    return config


def make_config(settings: dict) -> DistillConfig:
    """The config from a job's settings over the base's preset and the paper's defaults (not validated: a
    dict from `submit` is validated there, a stored row was validated when it was queued)."""
    return build_distill_config(values=settings, check=False)


def job_cache_dir(job_dir: Path) -> Path:
    """The data dir's cache/, shared by its jobs: a job's folder is <data dir>/jobs/<id> (storage.layout)."""
    return Path(job_dir).resolve().parents[1] / "cache"


class _ReporterCallbacks:
    """The trainer's callbacks, written through the job reporter (storage); a cancel request raises
    JobCancelled from reporter.progress at the next step."""

    def __init__(self, reporter):
        self.reporter = reporter

    def on_step(self, step, total, terms, it_per_s, eta_s):
        finite = {k: v for k, v in terms.items() if math.isfinite(v)}  # the trainer has its own NaN patience
        self.reporter.progress(step, total, it_per_s=it_per_s, eta_s=eta_s, **finite)

    def on_checkpoint(self, step, path):
        self.reporter.checkpoint(step, path)

    def on_artifact(self, kind, path, label):
        self.reporter.artifact(kind, path, label)

    def log(self, message):
        self.reporter.log(message)

    def on_data(self, done, total, eta_s):
        """The data set's first pass as the job's progress at step 0: the Jobs tab shows `data done/total`
        and its ETA, the log a line at most every LOG_PROGRESS_EVERY_S."""
        terms = {"data_done": float(done), "data_total": float(total)}
        if eta_s is not None:
            terms["eta_s"] = eta_s
        self.reporter.progress(0, None, **terms)


def run(config: DistillConfig, job_dir: Path, reporter) -> None:
    """Train with the job's config; the runner keeps the heartbeat going around it."""
    # torch: only in the job process, the kind is registered torch-free
    from ..distill.trainer import Distiller, TrainingDiverged
    from ..plan.preflight import preflight

    reporter.log(f"{config.method} on {config.base} with data {config.data}: {config.steps} steps")
    if not config.cache_dir:  # encodings go under the data dir (jobs/<id> is in it), never into the user's folder
        config.cache_dir = str(job_cache_dir(job_dir))
    try:
        Distiller(
            config, job_dir, lora_dir=job_dir / "lora", callbacks=_ReporterCallbacks(reporter), preflight=preflight
        ).train()
    except TrainingDiverged as err:
        raise JobFailed(str(err)) from None


DISTILL = register(
    JobKind(
        name="distill",
        config_class="engine.config.distill:DistillConfig",
        run=run,
        needs_accelerator=True,
        help="distill a few-step student: --method dmd2 from the teacher, or dfd from a DMD2 student (--init)",
        add_arguments=add_arguments,
        config_from_args=config_from_args,
        make_config=make_config,
    )
)
