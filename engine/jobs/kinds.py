"""The registry of job kinds: what kinds of work the studio can queue, each with its typed config, whether
it needs the accelerator, how it runs, and which command-line options it adds to `jobs submit`.

Built-in kinds register themselves from their own modules (sample_job.py, distill_job.py).
Extra kinds (e.g. the test fixtures) come from modules named in $DFD_STUDIO_EXTRA_KINDS (comma-separated),
which is also how a job process started by the worker finds them."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXTRA_KINDS_ENV = "DFD_STUDIO_EXTRA_KINDS"
BUILTIN_KIND_MODULES = ("engine.jobs.sample_job", "engine.jobs.distill_job")


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    config_class: a dataclass with validate() (raises ValueError) and to_dict(), and
        optionally check_files(): the checks of validate() that read files, which run again when the job
        starts; or "module:Class" to import it only when needed (e.g. when the module imports torch).
    run(config, job_dir, reporter): does the work; lets JobCancelled propagate; resumes from the newest
        checkpoint in job_dir/checkpoints (reporter.resume_step() says which step).
    add_arguments(group) / config_from_args(args) -> dict or config: the kind's options for `jobs submit`
        (group is an argparse argument group: call group.add_argument); only the options the user gave
        should go in the dict, so the config's defaults stay the only defaults; or the config itself, built
        and validated (as `submit` takes it). Do not define --kind, --json, --parent.
    make_config(settings) -> config: builds the (not yet validated) config from the settings, e.g. with
        the base's preset under them; default: config_class(**settings).
    """

    name: str
    config_class: type | str
    run: Callable[[Any, Path, Any], None]
    needs_accelerator: bool = True
    help: str = ""
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    config_from_args: Callable[[argparse.Namespace], dict] | None = None
    make_config: Callable[[dict], Any] | None = None

    def load_config_class(self) -> type:
        if isinstance(self.config_class, str):
            module_name, _, class_name = self.config_class.partition(":")
            return getattr(importlib.import_module(module_name), class_name)
        return self.config_class


class UnknownKind(ValueError):
    pass


_kinds: dict[str, JobKind] = {}
_loaded = False
_lock = threading.RLock()


def register(kind: JobKind) -> JobKind:
    """Add a kind to the registry (at import time of the module that defines it)."""
    with _lock:
        existing = _kinds.get(kind.name)
        if existing is not None and existing is not kind:
            raise ValueError(f"job kind {kind.name!r} is registered twice; give one of them another name")
        _kinds[kind.name] = kind
        return kind


def _ensure_loaded() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        extra = [name.strip() for name in os.environ.get(EXTRA_KINDS_ENV, "").split(",") if name.strip()]
        for module_name in (*BUILTIN_KIND_MODULES, *extra):
            try:
                importlib.import_module(module_name)
            except ImportError as error:
                _loaded = False
                raise ImportError(
                    f"could not load job kinds from {module_name!r} ({error}); check ${EXTRA_KINDS_ENV}"
                ) from error


def get_kind(name: str) -> JobKind:
    """The registered kind of this name; raises UnknownKind (a ValueError) listing the known ones."""
    _ensure_loaded()
    kind = _kinds.get(name)
    if kind is None:
        raise UnknownKind(f"unknown job kind {name!r}; the known kinds are: {', '.join(kind_names()) or 'none'}")
    return kind


def kind_names() -> list[str]:
    _ensure_loaded()
    return sorted(_kinds)


def build_config(kind: JobKind, settings: dict) -> Any:
    """The kind's config object built from a dict of settings and validated: what `submit` stores. Raises
    ValueError with a one-line reason (unknown setting, wrong argument, or the config's own validate())."""
    config = _make_config(kind, settings)
    config.validate()
    return config


def load_config(kind: JobKind, settings: dict) -> Any:
    """The config of a queued job, from the settings its row stores: they were validated when it was queued,
    so only the config's check_files() (if it has one) runs again, for files that may have changed since."""
    config = _make_config(kind, settings)
    check_files = getattr(config, "check_files", None)
    if check_files is not None:
        check_files()
    return config


def _make_config(kind: JobKind, settings: dict) -> Any:
    config_class = kind.load_config_class()
    if not isinstance(settings, dict):
        raise ValueError(f"the config of a {kind.name} job must be a dict of settings, got {type(settings).__name__}")
    known = [field.name for field in dataclasses.fields(config_class) if field.init]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)} for a {kind.name} job; the settings are: {', '.join(known)}"
        )
    if kind.make_config is not None:
        return kind.make_config(settings)
    try:
        return config_class(**settings)
    except TypeError as error:
        raise ValueError(f"bad settings for a {kind.name} job: {error}") from None
