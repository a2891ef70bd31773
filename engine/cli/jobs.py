"""Command line of the job system: `worker` and `jobs` (submit, list, show, cancel, resume, log).

engine/cli/main.py adds them to `python -m engine` with `add_subcommands(subparsers)`; `python -m engine.cli.jobs`
runs them on their own. Every error is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time

from .. import jobs as api
from ..jobs import kinds
from ..jobs.worker import WorkerOptions, run_worker
from ..models.names import check_model
from . import hf_jobs as hf_jobs_cli
from .progress import cli_error


class _JobsParser(argparse.ArgumentParser):
    """ArgumentParser whose `submit` variant adds the chosen kind's options before parsing, so each kind
    brings its own options (two kinds may both have --steps) and `--kind K --help` shows them."""

    def __init__(self, *args, kind_options: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._kind_options = kind_options
        self._added_kind: str | None = None

    def parse_known_args(self, args=None, namespace=None):
        if self._kind_options and self._added_kind is None:
            name = _peek_kind(sys.argv[1:] if args is None else list(args))
            if name in kinds.kind_names():
                kind = kinds.get_kind(name)
                if kind.add_arguments is not None:
                    kind.add_arguments(self.add_argument_group(f"options of --kind {name}"))
                self._added_kind = name
        return super().parse_known_args(args, namespace)


DEFAULT_KIND = "distill"  # `jobs submit --method dmd2 ...` queues a distillation


def _peek_kind(args: list[str]) -> str | None:
    for index, arg in enumerate(args):
        if arg == "--kind" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--kind="):
            return arg.split("=", 1)[1]
    return DEFAULT_KIND


def _one_line_errors(command):
    """Turn any error into one line on stderr and exit code 2 (no traceback for the user)."""

    @functools.wraps(command)
    def wrapper(args) -> int:
        try:
            return command(args)
        except KeyboardInterrupt:
            return 130
        except Exception as error:
            said = cli_error(error) if isinstance(error, ValueError) else error  # a config field as its --flag
            text = str(said).strip().splitlines()[0] if str(said).strip() else type(error).__name__
            print(f"error: {text}", file=sys.stderr)
            return 2

    return wrapper


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _ago(seconds_since_epoch: float | None) -> str:
    if seconds_since_epoch is None:
        return "-"
    seconds = max(0, time.time() - seconds_since_epoch)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


@_one_line_errors
def cmd_worker(args) -> int:
    options = WorkerOptions(
        once=args.once, exit_when_idle=args.exit_when_idle, poll_s=args.poll, cancel_grace_s=args.cancel_grace
    )
    run_worker(args.data_dir, options)
    return 0


@_one_line_errors
def cmd_submit(args) -> int:
    kind = kinds.get_kind(args.kind)
    config = kind.config_from_args(args) if kind.config_from_args else {}  # settings, or the built config
    if getattr(args, "on", "local") == "hf-jobs":
        return hf_jobs_cli.submit(args, config)
    hf_jobs_cli.check_local(args)
    base = config.get("base") if isinstance(config, dict) else getattr(config, "base", None)
    # A mistyped or unreachable hub id is refused now, not when the job runs; a built config's files are
    # checked again once the hub's model_index.json is cached, which tells the base's task.
    if base and check_model(base)[0] == "hub" and hasattr(config, "check_files"):
        config.check_files()
    job = api.submit(args.data_dir, args.kind, config, parent=args.parent)
    if args.json:
        _print_json(job.to_dict())
    else:
        print(f"queued {job.id} ({job.kind}); `python -m engine jobs show {job.id}` follows it")
    return 0


@_one_line_errors
def cmd_list(args) -> int:
    jobs = api.list_jobs(args.data_dir, args.state, args.limit)
    if args.json:
        _print_json([job.to_dict() for job in jobs])
        return 0
    if not jobs:
        print("no jobs")
        return 0
    print(f"{'ID':<18} {'KIND':<10} {'STATE':<11} {'STEP':>11}  {'CREATED':<11} ERROR")
    for job in jobs:
        step = f"{job.step}/{job.total}" if job.total else str(job.step)
        print(f"{job.id:<18} {job.kind:<10} {job.state:<11} {step:>11}  {_ago(job.created_at):<11} {job.error or ''}")
    return 0


@_one_line_errors
def cmd_show(args) -> int:
    job = api.get(args.data_dir, args.job_id)
    artifacts = api.artifacts(args.data_dir, job.id)
    checkpoints = api.checkpoints(args.data_dir, job.id)
    if args.json:
        data = job.to_dict()
        data["artifacts"] = [artifact.to_dict() for artifact in artifacts]
        data["checkpoint_steps"] = [checkpoint.step for checkpoint in checkpoints]
        _print_json(data)
        return 0
    print(f"{job.id}  {job.kind}  {job.state}" + ("  (cancel requested)" if job.cancel_requested else ""))
    print(f"  step      {job.step}/{job.total if job.total is not None else '?'}")
    if job.loss_terms:
        print("  losses    " + "  ".join(f"{name}={value:.4g}" for name, value in job.loss_terms.items()))
    print(f"  pid       {job.pid or '-'}   heartbeat {_ago(job.heartbeat_at)}")
    if job.error:
        print(f"  error     {job.error}")
    print(f"  config    {json.dumps(job.config, sort_keys=True)}")
    print(f"  folder    {job.dir}")
    print(f"  checkpoints {', '.join(str(c.step) for c in checkpoints) or '-'}")
    for artifact in artifacts:
        print(f"  {artifact.kind:<8} {artifact.path}" + (f"  ({artifact.label})" if artifact.label else ""))
    return 0


@_one_line_errors
def cmd_cancel(args) -> int:
    job = api.cancel(args.data_dir, args.job_id)
    if job.state == "cancelled":
        print(f"cancelled {job.id}")
    else:
        print(f"cancel requested for {job.id}; it stops at its next progress report (the worker forces it within 10 s)")
    return 0


@_one_line_errors
def cmd_resume(args) -> int:
    job = api.resume(args.data_dir, args.job_id)
    checkpoints = api.checkpoints(args.data_dir, job.id)
    step = checkpoints[-1].step if checkpoints else 0
    print(f"queued {job.id} again; it continues from step {step}")
    return 0


@_one_line_errors
def cmd_log(args) -> int:
    print(api.log_tail(args.data_dir, args.job_id, args.lines))
    return 0


_DATA_DIR_HELP = "data dir (default: $DFD_STUDIO_DATA, else ./studio_data)"


def _add_worker(subparsers) -> None:
    worker = subparsers.add_parser(
        "worker",
        help="run queued jobs, one GPU job at a time",
        description="Run queued jobs one at a time (oldest first), each in its own process.",
    )
    worker.add_argument("--data-dir", help=_DATA_DIR_HELP)
    stop = worker.add_mutually_exclusive_group()
    stop.add_argument("--once", action="store_true", help="run at most one job, then exit")
    stop.add_argument("--exit-when-idle", action="store_true", help="exit when no job is queued")
    worker.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the queue (default 1)")
    worker.add_argument(
        "--cancel-grace",
        type=float,
        default=10.0,
        help="seconds a cancelled job gets to stop by itself: SIGTERM at half of it, SIGKILL at all of it (default 10)",
    )
    worker.set_defaults(func=cmd_worker)


def _add_jobs(subparsers) -> None:
    jobs = subparsers.add_parser(
        "jobs",
        help="submit, list, show, cancel and resume jobs",
        description="Submit, list, show, cancel and resume jobs.",
    )
    jobs.add_argument("--data-dir", help=_DATA_DIR_HELP)
    actions = jobs.add_subparsers(dest="jobs_action", required=True, metavar="ACTION", parser_class=_JobsParser)

    kind_help = "; ".join(f"{name}: {kinds.get_kind(name).help}" for name in kinds.kind_names())
    submit = actions.add_parser(
        "submit",
        kind_options=True,
        help="queue a job",
        description="Queue a job. `--kind KIND --help` lists the options of that kind.",
        epilog=f"kinds: {kind_help}",
    )
    submit.add_argument(
        "--kind", default=DEFAULT_KIND, choices=kinds.kind_names(), help=f"what kind of job (default {DEFAULT_KIND})"
    )
    submit.add_argument("--parent", help="id of the job this one builds on (e.g. the DMD2 run under a DFD run)")
    submit.add_argument("--json", action="store_true", help="print the queued job as JSON")
    hf_jobs_cli.add_arguments(submit)
    submit.set_defaults(func=cmd_submit)

    listing = actions.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--state", action="append", help="only jobs in this state (repeatable)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)

    show = actions.add_parser("show", help="one job: state, progress, error, artifacts")
    show.add_argument("job_id", metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    for name, func, text in (
        ("cancel", cmd_cancel, "cancel a queued or running job"),
        ("resume", cmd_resume, "queue an interrupted, cancelled or failed job again"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("job_id", metavar="ID")
        action.set_defaults(func=func)

    log = actions.add_parser("log", help="the end of a job's log")
    log.add_argument("job_id", metavar="ID")
    log.add_argument("--lines", type=int, default=50)
    log.set_defaults(func=cmd_log)


def add_subcommands(subparsers) -> None:
    """Add `worker` and `jobs` to a parser's subcommands (from `parser.add_subparsers()`). Each sets
    `func`; call `args.func(args)` and use its return value as the exit code."""
    _add_worker(subparsers)
    _add_jobs(subparsers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.cli.jobs", description="DFD Studio job system.")
    add_subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
