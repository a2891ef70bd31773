"""What every command shares: CliError (one line on stderr, exit code 2), the wording of the engine's
errors in the command line's terms (a config field as its --flag), and the progress bars."""

from __future__ import annotations

import shlex
import sys

from tqdm import tqdm

from ..config.fields import ConfigError, flag
from ..config.seeds import parse_seeds


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def cli_error(err: Exception) -> CliError:
    """The engine's error as the command line says it: a config field is named by its option."""
    return CliError(err.worded(flag) if isinstance(err, ConfigError) else str(err))


def command_line(name: str) -> str:
    """The command being run, as recorded beside what it makes."""
    return f"python -m engine {name} " + " ".join(shlex.quote(a) for a in sys.argv[2:])


def seed_range(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except ValueError as err:
        raise CliError(str(err)) from None


def bar(desc: str, total: int, unit: str = "step", initial: int = 0):
    return tqdm(
        total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr, mininterval=0.5
    )


def loss_bar(desc: str, total: int, every: int):
    """A progress bar and the progress(step, total, loss) callback that drives it."""
    shown = bar(desc, total)

    def progress(step, total, loss):
        shown.n = step
        shown.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if step % every == 0 or step == total:
            shown.refresh()

    return shown, progress
