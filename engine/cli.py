"""`python -m engine ...`: the command line of the engine. Each subcommand parses its arguments,
validates them (one-line errors, exit code 2), shows a progress bar for long work and calls the
engine's public functions."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tqdm import tqdm


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _seed_range(text: str) -> list[int]:
    """'1-8' -> [1..8]; '3' -> [3]; '1,4,9' -> [1, 4, 9]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                lo_i, hi_i = int(lo), int(hi)
                if hi_i < lo_i:
                    raise CliError(f"bad seed range {part!r}: the end is before the start")
                seeds += list(range(lo_i, hi_i + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise CliError(f"bad seeds {text!r}: use a number (3), a range (1-8) or a list (1,4,9)") from None
    if not seeds or any(s < 0 for s in seeds):
        raise CliError(f"bad seeds {text!r}: seeds must be non-negative integers")
    if len(seeds) > 256:
        raise CliError(f"too many seeds ({len(seeds)}); at most 256 per command")
    return seeds


def _bar(desc: str, total: int):
    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, file=sys.stderr, mininterval=0.5)


def cmd_pretrain_teacher(args) -> int:
    from .teacher import TeacherConfig, pretrain_teacher

    if args.steps < 1:
        raise CliError("--steps must be at least 1")
    cfg = TeacherConfig(steps=args.steps, seed=args.seed)
    command = "python -m engine pretrain-teacher " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    bar = _bar("pretrain teacher", cfg.steps)

    def progress(step, total, loss):
        bar.n = step
        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        bar.refresh() if step % 20 == 0 or step == total else None

    meta = pretrain_teacher(cfg, Path(args.out), command, save_every=args.save_every, progress=progress)
    bar.close()
    print(f"saved {args.out} ({meta['trained_steps']} steps, loss {meta['final_loss_ema']}, {meta['train_seconds']} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="DFD Studio engine: distill, sample, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("pretrain-teacher", help="train the built-in tiny teacher on the shapes world")
    p.add_argument("--out", required=True, help="output pipeline folder")
    p.add_argument("--steps", type=int, default=10000, help="training steps (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--save-every", type=int, default=0, help="also save every K steps (0: only at the end)")
    p.set_defaults(func=cmd_pretrain_teacher)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
