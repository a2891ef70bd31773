"""Command-line options generated from a config's fields: one `--flag` per field, its help and choices
from the field's metadata, its value typed as the config file's and the form's are (fields.typed).
Every default is None, so the settings the user gave can be told from the ones they did not."""

from __future__ import annotations

import argparse

from .fields import ConfigError, Setting, flag, settings_of, typed


def _argument_type(s: Setting):
    def parse(text: str):
        try:
            return typed(s, text)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(err.worded(lambda name: "the value")) from None

    parse.__name__ = s.kind  # argparse names the type in its own messages
    return parse


def _shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_shown(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_options(
    parser, config_class, only: tuple[str, ...] | None = None, skip: tuple[str, ...] = (), show_defaults: bool = False
) -> None:
    """One option per field of config_class (those in `only`, if given, minus `skip`), defaulting to None.
    show_defaults: append the config's default to each help line."""
    for s in settings_of(config_class):
        if s.name in skip or (only is not None and s.name not in only):
            continue
        text = s.help
        if show_defaults and s.default not in (None, "") and s.kind != "bool":
            text += f" (default {_shown(s.default)})"
        text = text.replace("%", "%%")  # argparse formats help with %
        if s.kind == "bool":
            parser.add_argument(
                flag(s.name), dest=s.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            metavar = ("A,B" if s.size == 2 else "A,B,...") if s.kind == "floats" else None
            parser.add_argument(
                flag(s.name),
                dest=s.name,
                type=_argument_type(s),
                default=None,
                choices=s.choices or None,
                metavar=metavar,
                help=text,
            )


def given_values(args: argparse.Namespace, config_class, skip: tuple[str, ...] = ()) -> dict:
    """The fields of config_class the user gave on the command line."""
    return {
        s.name: getattr(args, s.name)
        for s in settings_of(config_class)
        if s.name not in skip and getattr(args, s.name, None) is not None
    }


def add_config_file_option(parser) -> None:
    parser.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        default=None,
        help="a YAML, TOML or JSON file of settings (any field of the config); options given beside it win",
    )
