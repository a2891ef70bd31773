"""The one path that builds a distillation run's settings, for the command line, `jobs submit`, the job
row, the studio form and the benchmarks alike: the paper's defaults, then the base's preset (the built-in
world's for its built-in teachers), then a config file, then the user's values (options, form fields, job settings)."""

from __future__ import annotations

from pathlib import Path

from .distill import SHAPES_BASES, SHAPES_PRESET, DistillConfig
from .fields import ConfigError, settings_of, typed
from .files import read_config_file


def preset_for(base: str | None) -> dict:
    """The settings a base model's runs take instead of the paper's (empty for most bases)."""
    return dict(SHAPES_PRESET) if (base or "").strip() in SHAPES_BASES else {}


def build_distill_config(
    base: str | None = None, config_file: str | Path | None = None, values: dict | None = None, check: bool = True
) -> DistillConfig:
    """A DistillConfig from the layers, later ones winning: paper defaults, preset of the base, the config
    file's settings, then `values` (only the settings the user gave: a None there means "empty", which an
    optional setting takes and a required one refuses). `base` is the base when neither the file nor the
    values name one. check: also validate() the result.

    Raises ConfigError (a ValueError) in one line naming the setting, and the file when it came from there."""
    kinds = {s.name: s for s in settings_of(DistillConfig)}
    from_file = _typed_settings(read_config_file(config_file), kinds, where=str(config_file)) if config_file else {}
    given = _typed_settings(dict(values or {}), kinds, where=None)
    chosen_base = given["base"] if "base" in given else from_file.get("base", base or DistillConfig.base)
    settings = {**DistillConfig().to_dict(), **preset_for(chosen_base), **from_file, **given, "base": chosen_base}
    config = DistillConfig.from_dict(settings)
    if check:
        try:
            config.validate()
        except ConfigError as err:
            if err.field in from_file and err.field not in given:
                raise ConfigError(err.field, f"{config_file}: {err}") from None
            raise
    return config


def _typed_settings(raw: dict, kinds: dict, where: str | None) -> dict:
    """Each value as its field's type; an unknown name or a value of the wrong type is refused."""
    settings = {}
    for name, value in raw.items():
        if name not in kinds:
            known = ", ".join(kinds)
            place = f"{where}: " if where else ""
            raise ConfigError(str(name), f"{place}unknown setting {name!r}; the settings are: {known}")
        try:
            settings[name] = typed(kinds[name], value)
        except ConfigError as err:
            if where is None:
                raise
            raise ConfigError(name, f"{where}: {err}") from None
    return settings
