"""What a config field says about itself: its help line, its choices and the form's label live in the
field's metadata (`setting(...)`), so the command line, the studio form and the job row all read the one
description. Also the typing of a value from text, YAML or a form, and ConfigError, the engine's one-line
refusal that names the config field, which the CLI words as a flag and the form as its label."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from typing import Any

from .seeds import parse_seeds


def setting(
    default: Any = MISSING,
    *,
    help: str,
    choices: tuple = (),
    label: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field with its help line, its choices (empty: any value of its type) and, where the
    studio form shows it under another name than the field's, that label."""
    metadata = {"help": help, "choices": tuple(choices), "label": label}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class ConfigError(ValueError):
    """A bad setting: one line that names the config field(s) it is about.

    The message writes a field as `{name}` (the field itself and those in `refers`); str() puts in the
    field's own name, `worded(name_of)` whatever a front end calls it (the CLI its flag, the form its label)."""

    def __init__(self, field: str, message: str, refers: tuple[str, ...] = ()):
        self.field = field
        self.template = message
        self.refers = (field, *refers)
        super().__init__(self.worded(lambda name: name))

    def worded(self, name_of: Callable[[str], str]) -> str:
        text = self.template
        for name in self.refers:
            text = text.replace("{" + name + "}", name_of(name))
        return text

    def __reduce__(self):  # crosses process boundaries with its field
        return type(self), (self.field, self.template, self.refers[1:])


def flag(name: str) -> str:
    """The command-line option of a config field: lora_rank -> --lora-rank."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Setting:
    """One field of a config as its front ends see it."""

    name: str
    kind: str  # "int", "float", "str", "bool", "floats" (a list or pair of numbers) or "seeds" ("1-8", "1,4,9")
    optional: bool  # None is a value (e.g. "the model's own size")
    default: Any
    help: str
    choices: tuple
    label: str | None  # the form's name for it, when that is not the field's name
    size: int | None = None  # floats of fixed length (a pair), else None


_KINDS = {
    "int": "int",
    "float": "float",
    "str": "str",
    "bool": "bool",
    "list[float]": "floats",
    "tuple[float, float]": "floats",
    "list[int]": "seeds",
}


def settings_of(config_class) -> list[Setting]:
    """The fields of a config class, in order, with their metadata."""
    found = []
    for f in dataclasses.fields(config_class):
        annotation = str(f.type).replace(" ", "")
        optional = annotation.endswith("|None")
        base = annotation.removesuffix("|None").replace(",", ", ")
        if base not in _KINDS:
            raise TypeError(f"{config_class.__name__}.{f.name}: type {f.type} has no front-end kind")
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        found.append(
            Setting(
                f.name,
                _KINDS[base],
                optional,
                default,
                f.metadata.get("help", ""),
                tuple(f.metadata.get("choices", ())),
                f.metadata.get("label"),
                2 if base.startswith("tuple") else None,
            )
        )
    return found


def setting_of(config_class, name: str) -> Setting:
    for s in settings_of(config_class):
        if s.name == name:
            return s
    raise KeyError(name)


def check_choices(config) -> None:
    """Refuse a value outside a field's choices, naming the field and the choices."""
    for s in settings_of(type(config)):
        value = getattr(config, s.name)
        if s.choices and value not in s.choices and not (s.optional and value is None):
            listed = ", ".join(map(str, s.choices[:-1])) + " or " + str(s.choices[-1])
            raise ConfigError(s.name, f"unknown {{{s.name}}} {value!r}; choose {listed}")


def typed(s: Setting, value: Any) -> Any:
    """A value from the command line, a config file or a form as the field's type; ConfigError if it is not one."""
    if value is None or (isinstance(value, str) and not value.strip() and s.kind != "str"):
        if s.optional:
            return None
        raise ConfigError(
            s.name, f"{{{s.name}}} is empty; give {'a number' if s.kind in ('int', 'float') else 'a value'}"
        )
    if s.kind == "bool":
        return _boolean(s, value)
    if s.kind == "int":
        return _whole(s, value)
    if s.kind == "float":
        return _number(s, value)
    if s.kind == "floats":
        return _numbers(s, value)
    if s.kind == "seeds":
        return _seeds(s, value)
    if not isinstance(value, str):
        raise ConfigError(s.name, f"{{{s.name}}} must be text, got {value!r}")
    return value


def _boolean(s: Setting, value) -> bool:
    if isinstance(value, bool):
        return value
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if str(value).strip().lower() in words:
        return words[str(value).strip().lower()]
    raise ConfigError(s.name, f"{{{s.name}}} must be true or false, got {value!r}")


def _whole(s: Setting, value) -> int:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(s.name, f"{{{s.name}}} must be a whole number, got {value!r}")
    if number != int(number):
        raise ConfigError(s.name, f"{{{s.name}}} must be a whole number, got {value}")
    return int(number)


def _number(s: Setting, value) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(s.name, f"{{{s.name}}} must be a number, got {value!r}") from None


def _numbers(s: Setting, value) -> list[float] | tuple[float, ...]:
    example = ", ".join(f"{v:g}" for v in s.default) if s.default else "0.9, 0.5, 0"
    try:
        if isinstance(value, str):
            numbers = [float(v) for v in re.split(r"[,;\s]+", value.strip()) if v]
        elif isinstance(value, (list, tuple)) and not any(isinstance(v, bool) for v in value):
            numbers = [float(v) for v in value]
        else:
            raise TypeError
    except (TypeError, ValueError):
        raise ConfigError(
            s.name, f"{{{s.name}}} {value!r}: write numbers separated by commas, e.g. {example}"
        ) from None
    if s.size is not None:
        if len(numbers) != s.size:
            raise ConfigError(s.name, f"{{{s.name}}} needs {s.size} numbers, got {len(numbers)}; e.g. {example}")
        return tuple(numbers)
    return numbers


def _seeds(s: Setting, value) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [_whole(s, v) for v in value]
    try:
        return parse_seeds(str(value))
    except ValueError as err:
        raise ConfigError(s.name, str(err)) from None
