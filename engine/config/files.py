"""Config files: a run's settings read from YAML, TOML or JSON (`python -m engine distill --config
run.yaml`), and a run's effective settings written beside its outputs (distill_config.json for the
programs, run.yaml for people, and to run it again)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml

SUFFIXES = (".yaml", ".yml", ".toml", ".json")
RUN_YAML = "run.yaml"


class ConfigFileError(ValueError):
    """A config file that cannot be read as settings: one line naming the file."""


def read_config_file(path: str | Path) -> dict:
    """The settings in a YAML, TOML or JSON file (a mapping of setting name to value)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigFileError(f"{path}: a config file ends in {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise ConfigFileError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            values = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            values = yaml.safe_load(text)
    except Exception as err:  # the parsers' own errors (yaml, toml, json): one line with where it broke
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigFileError(f"{path}: not valid {path.suffix.lstrip('.').upper()} ({first})") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigFileError(f"{path}: expected settings as `name: value` lines, got a {type(values).__name__}")
    return values


def run_config_yaml(config) -> str:
    """A run's settings as run.yaml says them: all but the output folder, under a header saying how to run
    it again (the studio offers the same text for a job that has not written its own yet)."""
    settings = config.to_dict()
    settings.pop("out", None)
    header = (
        "# The effective settings of this run (paper defaults, preset, config file and options merged).\n"
        "# Run it again: python -m engine distill --config run.yaml --out NEW_FOLDER\n"
    )
    return header + yaml.safe_dump(settings, sort_keys=False, default_flow_style=None)


def write_run_config(config, folder: str | Path) -> None:
    """Write the run's effective settings beside its outputs: distill_config.json (all of them) and
    run.yaml (all but the output folder), which `--config` reads back to run it again."""
    folder = Path(folder)
    (folder / "distill_config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    (folder / RUN_YAML).write_text(run_config_yaml(config))
