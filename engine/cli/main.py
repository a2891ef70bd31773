"""`python -m engine ...`: the command line of the engine. Each subcommand parses its arguments,
validates them (one-line errors, exit code 2), shows a progress bar for long work and calls the
engine's functions. The commands live by family: jobs.py (worker, jobs), shapes.py (the built-in
world's teacher, recognizer and clips), distill.py, sample.py, evaluation.py (evaluate, study, bench),
results.py (the README's study figures)."""

from __future__ import annotations

import argparse
import sys

from . import distill, evaluation, jobs, plan, publish, results, sample, shapes
from .progress import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="DFD Studio engine: distill, sample, evaluate."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    jobs.add_subcommands(sub)  # `worker` and `jobs`
    for family in (shapes, distill, sample, evaluation, results, publish, plan):
        family.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.filename is None:  # not about a path the user gave: a bug or the system's, keep the traceback
            raise
        # A path that cannot be written or read (not a folder, no permission, disk full): one line, not a traceback.
        print(
            f"error: {err.strerror}: {err.filename}; check the path, its permissions and the free space",
            file=sys.stderr,
        )
        return 1
