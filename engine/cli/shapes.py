"""The built-in world's commands: `pretrain-teacher` (its tiny teacher), `train-recognizer` (its
attribute recognizer) and `export-world` (clips as a data folder)."""

from __future__ import annotations

from pathlib import Path

from ..config.options import add_options, given_values
from ..config.teacher import RecognizerConfig, TeacherConfig
from .progress import CliError, bar, cli_error, command_line, loss_bar

TEACHER_OPTIONS = (
    "steps",
    "seed",
    "batch_size",
    "pool_clips",
    "lr",
    "warmup_steps",
    "lr_schedule",
    "time_shift",
    "balanced_detailed",
    "init",
    "task",
    "i2v_conditioning",
    "i2v_frames",
)


def cmd_pretrain_teacher(args) -> int:
    try:
        cfg = TeacherConfig(**given_values(args, TeacherConfig)).validate()
    except ValueError as err:
        raise cli_error(err) from None
    from ..pretrain.teacher import pretrain_teacher  # torch and diffusers: only once the options are sound

    shown, progress = loss_bar("pretrain teacher", cfg.steps, every=20)
    try:
        meta = pretrain_teacher(
            cfg, Path(args.out), command_line("pretrain-teacher"), save_every=args.save_every, progress=progress
        )
    except ValueError as err:
        raise cli_error(err) from None
    finally:
        shown.close()
    print(f"saved {args.out} ({meta['trained_steps']} steps, loss {meta['final_loss_ema']}, {meta['train_seconds']} s)")
    return 0


def cmd_train_recognizer(args) -> int:
    try:
        cfg = RecognizerConfig(**given_values(args, RecognizerConfig)).validate()
    except ValueError as err:
        raise cli_error(err) from None
    from ..pretrain.recognizer import train_recognizer  # torch: only once the options are sound

    shown, progress = loss_bar("train recognizer", cfg.steps, every=10)
    try:
        meta = train_recognizer(cfg, Path(args.out), command_line("train-recognizer"), progress=progress)
    finally:
        shown.close()
    print(f"saved {args.out}; held-out accuracy {meta['heldout_accuracy']}")
    return 0


def cmd_export_world(args) -> int:
    from ..shapes.world import export_folder  # numpy and the world: only for this command

    if args.n < 1:
        raise CliError("--n must be at least 1")
    shown = bar("export clips", args.n)
    try:
        export_folder(
            args.out, args.n, seed=args.seed, detailed_only=args.detailed_only, progress=lambda i: shown.update(1)
        )
    finally:
        shown.close()  # before any error line, which would otherwise land on the bar's line
    print(args.out)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("pretrain-teacher", help="train the built-in tiny teacher on the shapes world")
    p.add_argument("--out", required=True, help="output pipeline folder")
    p.add_argument("--save-every", type=int, default=0, help="also save every K steps (0: only at the end)")
    add_options(p, TeacherConfig, only=TEACHER_OPTIONS, show_defaults=True)
    p.set_defaults(func=cmd_pretrain_teacher)

    p = sub.add_parser("train-recognizer", help="train the shapes world's attribute recognizer")
    p.add_argument("--out", required=True, help="output folder")
    add_options(p, RecognizerConfig, only=("steps", "seed"), show_defaults=True)
    p.set_defaults(func=cmd_train_recognizer)

    p = sub.add_parser("export-world", help="write shapes-world clips as mp4 + caption files (a data folder)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=200, help="number of clips (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--detailed-only", action="store_true", help="only detailed captions (the DFD regime)")
    p.set_defaults(func=cmd_export_world)
