"""`python -m engine distill`: a DMD2 run, or DFD post-training of a DMD2 student, in a terminal.
Its options are generated from DistillConfig's fields; the run's config is built by
engine.config.build (paper defaults, the base's preset, --config FILE, then the options given)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..config.build import build_distill_config
from ..config.distill import DistillConfig
from ..config.options import add_config_file_option, add_options, given_values
from ..models.names import check_model
from ..models.students import LORA_FILE
from .progress import CliError, bar, cli_error


def distill_config_from_args(args) -> DistillConfig:
    """The run's config from the command line's --config file and options (validated)."""
    return build_distill_config(config_file=args.config_file, values=given_values(args, DistillConfig))


class _BarCallbacks:
    """The trainer's callbacks for a terminal: the first pass over a data set as its own bar (videos, with
    its ETA), then a progress bar of the steps with the loss terms, and log lines."""

    def __init__(self, total: int):
        self.total = total
        self.data_bar = None
        self._bar = None

    @property
    def bar(self):
        """The steps' bar, made when first needed: not a "0/N steps" bar while the data are encoded."""
        if self._bar is None:
            self.close_data()
            self._bar = bar("distill", self.total)
        return self._bar

    def on_data(self, done, total, eta_s):
        if self.data_bar is None:
            self.data_bar = bar("encoding data (first pass, then cached)", total, unit="video")
        self.data_bar.n = done
        self.data_bar.refresh()
        if done >= total:
            self.close_data()

    def close_data(self):
        if self.data_bar is not None:
            self.data_bar.close()
            self.data_bar = None

    def close(self):
        self.close_data()
        if self._bar is not None:
            self._bar.close()

    def on_step(self, step, total, terms, it_per_s, eta_s):
        self.bar.n = step
        shown = {k: f"{v:.4g}" for k, v in terms.items() if "@" not in k}
        self.bar.set_postfix(shown, refresh=True)

    def on_checkpoint(self, step, path):
        self.bar.write(f"checkpoint step {step}: {path}", file=sys.stderr)

    def on_artifact(self, kind, path, label):
        pass

    def log(self, message):
        (self.data_bar or self.bar).write(message, file=sys.stderr)


def cmd_distill(args) -> int:
    try:  # settings and the base's name first: refused before torch and diffusers load (~10 s)
        cfg = distill_config_from_args(args)
        if check_model(cfg.base)[0] == "hub":  # its model_index.json is now cached: the task can be checked
            cfg.check_files()
    except ValueError as err:  # ModelError is one
        raise cli_error(err) from None
    # torch: only once the options are sound
    from ..distill.trainer import Distiller, TrainingDiverged, latest_checkpoint
    from ..plan.preflight import preflight

    out = Path(cfg.out)
    if latest_checkpoint(out) is not None and not args.resume:
        raise CliError(f"{out} already holds checkpoints of a run; add --resume to continue it or choose another --out")
    main_process = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch, only rank 0 reports
    callbacks = _BarCallbacks(cfg.steps) if main_process else None
    try:
        Distiller(cfg, out, lora_dir=args.lora_dir, callbacks=callbacks, preflight=preflight).train()
    except (TrainingDiverged, ValueError) as err:  # ValueError: our readable sentences (data, model loading)
        raise cli_error(err) from None
    finally:
        if callbacks:
            callbacks.close()
    if main_process:
        print(out / LORA_FILE)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "distill",
        help="distill a few-step student: DMD2, or DFD post-training of a DMD2 student",
        description="Distill a few-step student. Settings: the paper's recipe (the built-in world's "
        "preset for shapes-tiny), then --config FILE, then the options given.",
    )
    add_config_file_option(p)
    add_options(p, DistillConfig, skip=("out",))
    p.add_argument("--out", required=True, help="output folder (LoRA, config, checkpoints, metrics)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    p.add_argument(
        "--lora-dir",
        type=Path,
        help="where the finished student goes (default: --out); a studio job keeps it in OUT/lora",
    )
    p.set_defaults(func=cmd_distill)
