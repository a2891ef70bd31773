"""EvalSettings: what `python -m engine evaluate` measures and how. Torch-free, so the command line
refuses a bad setting before it imports the models.

Each field is named as its command-line flag is (`num_frames` is --num-frames); errors name the field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config.fields import ConfigError
from .specs import ModelSpec

MAX_SEEDS = 64


FEATURE_KINDS = ("clip", "dinov2")


def check_features(text: str) -> list[str]:
    """'clip:MODEL,dinov2:MODEL' as a list of specs, each model a folder holding a config.json or a hub id
    whose config.json can be fetched (or is in the local cache). Raises ConfigError saying which one is
    not reachable and what to give instead; nothing is loaded."""
    specs = [part.strip() for part in (text or "").split(",") if part.strip()]
    for spec in specs:
        kind, sep, model = spec.partition(":")
        if not sep or not model.strip() or kind.strip() not in FEATURE_KINDS:
            raise ConfigError(
                "features",
                f"bad feature model {spec!r} in {{features}}: write clip:MODEL or "
                "dinov2:MODEL, e.g. dinov2:facebook/dinov2-large",
            )
        model = model.strip()
        path = Path(model).expanduser()
        if path.exists() or model.startswith((".", "/", "~")) or model.count("/") != 1:
            if not (path / "config.json").is_file():
                raise ConfigError(
                    "features",
                    f"the {kind} model {model} in {{features}} is not a model folder (no "
                    "config.json there); give a folder saved with save_pretrained or a hub id",
                )
            continue
        from huggingface_hub import hf_hub_download  # huggingface_hub: only when a hub id is checked

        try:
            hf_hub_download(model, "config.json")
        except (OSError, ValueError) as err:  # offline, unknown or gated repo: the same fix for the user
            raise ConfigError(
                "features",
                f"the {kind} model {model} in {{features}} cannot be reached on the Hugging "
                f"Face Hub ({type(err).__name__}); check the id and the network, or give a "
                "local folder",
            ) from None
    return specs


@dataclass
class EvalSettings:
    models: list[str]
    prompts: str = "all"  # a built-in set (detailed, underspecified, all: shapes bases) or a prompt file
    seeds: int = 8  # seeds 1..N per prompt, unless a JSONL prompt gives its own
    base: str = "shapes-tiny"
    data_dir: str | None = None  # to name students by job id
    features: list[str] = field(default_factory=list)  # clip:MODEL, dinov2:MODEL
    adherence: str | None = None  # the CLIP model of prompt adherence (default: the clip: features model)
    real: str | None = None  # a folder of held-out captioned clips: the reference outside the shapes world
    real_clips: int = 64  # at most this many of them
    device: str | None = None  # cuda when there is one, else cpu
    batch: int | None = None  # at most this many videos per sampling batch (default: all seeds of a prompt)
    num_frames: int | None = None
    height: int | None = None
    width: int | None = None
    parts: str | None = None  # folder of per-(model, prompt) results, for resuming
    frames: str | None = None  # folder of first frames named after the prompts (image-to-video bases, user_frames.py)

    def validate(self) -> EvalSettings:
        """Raise ConfigError (a ValueError) naming the field of a bad setting; returns self."""
        if not self.models:
            raise ConfigError("models", "{models} is empty; name at least one, e.g. teacher@50,teacher@4")
        for name in self.models:
            ModelSpec.parse(name, self.data_dir)
        if not 2 <= self.seeds <= MAX_SEEDS:
            raise ConfigError(
                "seeds", f"{{seeds}} must be between 2 and {MAX_SEEDS} (diversity needs pairs), got {self.seeds}"
            )
        if self.batch is not None and self.batch < 1:
            raise ConfigError("batch", f"{{batch}} must be at least 1 video, got {self.batch}")
        if self.real_clips < 2:
            raise ConfigError("real_clips", f"{{real_clips}} must be at least 2, got {self.real_clips}")
        if self.device is not None and self.device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ConfigError("device", f"{{device}} must be cpu, cuda, cuda:N or mps, got {self.device!r}")
        if self.real is not None and not Path(self.real).is_dir():
            raise ConfigError(
                "real", f"{{real}} is {self.real}, which is not a folder; give a folder of captioned held-out clips"
            )
        if self.frames is not None and not Path(self.frames).is_dir():
            raise ConfigError(
                "frames",
                f"{{frames}} is {self.frames}, which is not a folder; give a folder of first frames named after "
                "the prompts (a-red-cat.png for 'A red cat')",
            )
        if self.num_frames is not None and (self.num_frames < 1 or (self.num_frames - 1) % 4):
            raise ConfigError("num_frames", f"{{num_frames}} must be 4k+1 (e.g. 17 or 81), got {self.num_frames}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value is not None and (value <= 0 or value % 2):
                raise ConfigError(name, f"{{{name}}} must be a positive even number, got {value}")
        return self

    def shared_fingerprint(self) -> dict:
        """What every measured number depends on besides its model and prompt (resume.py)."""
        keep = ("base", "features", "adherence", "real", "real_clips", "num_frames", "height", "width")
        return {k: v for k, v in asdict(self).items() if k in keep}
