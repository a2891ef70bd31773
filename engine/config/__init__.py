"""The typed configs of the jobs, torch-free: each field carries its help line and choices
(`fields`), so the command line, the studio form and the job row read one description.

    distill.py   DistillConfig (a distillation run) and the built-in world's preset
    sample.py    SampleConfig (videos from a prompt)
    teacher.py   TeacherConfig and RecognizerConfig (the built-in world's teacher and recognizer)
    fields.py    setting(), the field readers, value typing and ConfigError
    build.py     build_distill_config: paper defaults, base preset, config file, the user's values
    files.py     reading YAML/TOML/JSON config files; writing a run's run.yaml
    options.py   command-line options generated from a config's fields
    seeds.py     seed lists ("1-8", "1,4,9")

A job row names its config class by module path (e.g. "engine.config:SampleConfig"); the names below
keep such paths loading.
"""

from .distill import SHAPES_PRESET, DistillConfig
from .fields import ConfigError
from .sample import SampleConfig
from .teacher import RecognizerConfig, TeacherConfig

__all__ = ["ConfigError", "DistillConfig", "RecognizerConfig", "SHAPES_PRESET", "SampleConfig", "TeacherConfig"]
