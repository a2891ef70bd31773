"""Which base model a name points to, checked without loading anything (no torch, no diffusers): the
built-in `shapes-tiny`, a local diffusers pipeline folder, a Hugging Face hub id, or a random-weights
timing model; and what can be checked of it from its files alone (a hub id's model_index.json, a folder's
video-shape rule). The command line refuses a bad name or shape with this before it pays for importing the
models."""

from __future__ import annotations

import json
import os
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"  # engine/assets
# The built-in teachers of the shapes world: text-to-video; image-to-video by the first frame's channels added
# (shapes-tiny-i2v, the world's own start law); image-to-video by frame replacement (shapes-tiny-ti2v, Wan2.2-TI2V's
# layout, trained on frames from which several motions stay open: i2v_frames "mixed"). Each was trained by
# `pretrain-teacher --task i2v`; the commands are in its dfd_studio.json.
BUILTIN_MODELS = {
    "shapes-tiny": ASSETS / "shapes-tiny",
    "shapes-tiny-i2v": ASSETS / "shapes-tiny-i2v",
    "shapes-tiny-ti2v": ASSETS / "shapes-tiny-ti2v",
}
STUDIO_META = "dfd_studio.json"  # our facts about a pipeline folder, beside model_index.json
# Wan2.1-T2V-1.3B's configs with random weights, for speed and memory figures (models.random_bases), and the
# same widened to image-to-video (the first frame's 20 channels, as pretrain-teacher --task i2v widens a teacher).
# Wan2.2-TI2V-5B's configs with random weights (models.random_bases): one base for both tasks, named i2v.
RANDOM_MODELS = {
    "wan2.1-1.3b-random": "t2v",
    "wan2.1-1.3b-i2v-random": "i2v",
    "wan2.2-ti2v-5b-random": "i2v",
}  # name -> task
RANDOM_TI2V = ("wan2.2-ti2v-5b-random",)  # those of RANDOM_MODELS that do t2v and i2v (frame replacement)

# Defaults for pipelines that carry no dfd_studio.json (Wan2.1-T2V-1.3B's published settings).
WAN_DEFAULTS = {"num_frames": 81, "height": 480, "width": 832, "fps": 16, "text_len": 512}
# The Wan2.2-A14B releases' own teacher recipes (Wan-Video/Wan2.2, wan/configs/wan_{t2v,i2v}_A14B.py): 40 steps,
# the high-noise expert's CFG `guidance`, the low-noise expert's `guidance_2`. The engine reads `guidance_2`
# (the run's and the sampler's own scale is the high-noise expert's); the others say what to pass as --steps
# and --cfg. A folder says the same in its dfd_studio.json; diffusers' model_index.json carries only the boundary.
BASE_RECIPES = {
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": {"steps": 40, "guidance": 4.0, "guidance_2": 3.0},
    "Wan-AI/Wan2.2-I2V-A14B-Diffusers": {"steps": 40, "guidance": 3.5, "guidance_2": 3.5},
}


# Hub repos whose diffusers layout is not on their main branch: the revision that holds it (NVIDIA's
# Cosmos-Predict2.5-2B keeps its native checkpoints on main, the diffusers pipeline on this branch, as
# the example of diffusers' Cosmos2_5_PredictBasePipeline loads it).
HUB_REVISIONS = {"nvidia/Cosmos-Predict2.5-2B": "diffusers/base/post-trained"}
# Wan2.2-TI2V-5B's (wan/configs/wan_ti2v_5B.py and SUPPORTED_SIZES of github.com/Wan-Video/Wan2.2: 121 frames at
# 24 fps, 704 x 1280; its scheduler (shift 5), 50 steps and guidance 5 come with the pipeline and SampleConfig).
WAN22_TI2V_DEFAULTS = {"num_frames": 121, "height": 704, "width": 1280, "fps": 24, "text_len": 512}

# Hub repos mounted read-only as volumes (an HF Job's base, engine/jobs/hf_jobs.py): JSON {hub id: folder}. A base
# named by such an id is read from its folder, never downloaded, and keeps its hub id as its name (the run's
# records, the card's base_model, a release's recipe in BASE_RECIPES).
HUB_VOLUMES = "DFD_STUDIO_HUB_VOLUMES"


class ModelError(ValueError):
    """A base model could not be found or loaded; the message says what to do."""


def resolve_model(name_or_path: str) -> tuple[str, Path | None]:
    """Where a model name points: ('builtin'|'folder'|'hub', local folder or None)."""
    if not name_or_path or not name_or_path.strip():
        raise ModelError(
            "no base model given; use 'shapes-tiny' (or 'shapes-tiny-i2v', 'shapes-tiny-ti2v'), a local diffusers "
            "folder, or a hub id"
        )
    name = name_or_path.strip()
    if name in BUILTIN_MODELS:
        folder = BUILTIN_MODELS[name]
        if not (folder / "model_index.json").is_file():
            raise ModelError(
                f"the built-in model {name!r} is missing from {folder}; restore it with "
                f"`git checkout -- {folder}` or rebuild it with `python -m engine pretrain-teacher --out {folder}`"
            )
        return "builtin", folder
    mounted = mounted_repo(name)
    if mounted is not None:
        if not (mounted / "model_index.json").is_file():
            raise ModelError(
                f"{name!r} is mounted at {mounted} ({HUB_VOLUMES}) but that folder has no model_index.json; "
                "mount the repo's diffusers revision (HUB_REVISIONS) or give another base"
            )
        return "folder", mounted
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        if not path.is_dir():
            raise ModelError(f"{name!r} is not a folder; give a diffusers pipeline folder (with model_index.json)")
        if not (path / "model_index.json").is_file():
            raise ModelError(
                f"{name!r} has no model_index.json, so it is not a diffusers pipeline folder; "
                "save one with pipe.save_pretrained(...) or give a hub id"
            )
        return "folder", path
    if name.count("/") == 1 and all(part.strip() for part in name.split("/")):
        return "hub", None
    raise ModelError(
        f"unknown model {name!r}: use 'shapes-tiny', 'shapes-tiny-i2v' or 'shapes-tiny-ti2v' (built in), a local "
        "diffusers folder, or a Hugging Face hub id such as Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    )


def mounted_repo(name: str) -> Path | None:
    """The folder where hub id `name` is mounted as a read-only volume (HUB_VOLUMES), or None."""
    raw = os.environ.get(HUB_VOLUMES, "").strip()
    if not raw:
        return None
    try:
        mounted = json.loads(raw)
    except ValueError:
        raise ModelError(f"{HUB_VOLUMES} must be JSON {{hub id: folder}}, not {raw[:80]!r}") from None
    folder = mounted.get(name) if isinstance(mounted, dict) else None
    return Path(folder) if isinstance(folder, str) and folder else None


def hub_error(name: str, err: BaseException) -> ModelError:
    return ModelError(
        f"could not fetch {name!r} from the Hugging Face Hub ({type(err).__name__}); "
        "check the id and your network, or download it elsewhere and pass the local folder"
    )


def check_model(name_or_path: str) -> tuple[str, Path | None]:
    """resolve_model, and for a hub id also fetch its model_index.json (or find it in the local cache), so
    a mistyped or unreachable id is refused in a second rather than after importing the models. A random
    timing model is ("random", None): nothing to check."""
    if name_or_path in RANDOM_MODELS:
        return "random", None
    kind, folder = resolve_model(name_or_path)
    if kind == "hub":
        # huggingface_hub: only for a hub id (this module is torch-free and quick)
        from huggingface_hub import hf_hub_download

        try:
            hf_hub_download(name_or_path.strip(), "model_index.json", revision=HUB_REVISIONS.get(name_or_path.strip()))
        except (OSError, ValueError) as err:  # offline, unknown or gated repo, bad id: the same fix for the user
            raise hub_error(name_or_path, err) from err
    return kind, folder


I2V_PIPELINE = "WanImageToVideoPipeline"  # what model_index.json names for an image-to-video folder
# Pipelines whose image conditioning replaces latent frames (engine/models/cosmos.py): image-to-video
# with the same transformer as text-to-video, so the channel rule below cannot tell.
FRAME_REPLACING = ("Cosmos2_5_PredictBasePipeline",)


def base_world(base: str) -> str | None:
    """'shapes' for a base of the built-in world (the recognizer's exact metrics apply), else None; read
    from the pipeline folder's dfd_studio.json, nothing loaded. Raises ModelError for a bad name."""
    _, folder = resolve_model(base)
    meta = folder / STUDIO_META if folder is not None else None
    if meta is None or not meta.is_file():
        return None
    return json.loads(meta.read_text()).get("world")


def task_from_channels(in_channels: int, z_dim: int, temporal: int) -> str:
    """ "i2v" when the transformer takes, beside the z latent channels, the first frame's mask (one channel
    per frame of the VAE's temporal factor) and its z condition channels (engine/models/conditioning.py);
    else "t2v". The one rule, for a loaded model (BaseModel.task) and for a folder's configs (base_task)."""
    return "i2v" if in_channels == 2 * z_dim + temporal else "t2v"


def base_task(name_or_path: str) -> str | None:
    """What a base model generates, "t2v" or "i2v", read from its files without torch: a folder's
    transformer and vae configs (the rule BaseModel.task applies to the loaded model), else its
    model_index.json's pipeline class; for a hub id, its model_index.json when the Hub cache holds it
    (check_model fetches it). None when it cannot be told here: the loaded model is checked again."""
    name = (name_or_path or "").strip()
    if name in RANDOM_MODELS:
        return RANDOM_MODELS[name]
    try:
        kind, folder = resolve_model(name)
    except ModelError:
        return None
    if folder is not None:
        try:
            if json.loads((folder / "model_index.json").read_text()).get("_class_name") in FRAME_REPLACING:
                return "i2v"
            transformer = json.loads((folder / "transformer" / "config.json").read_text())
            vae = json.loads((folder / "vae" / "config.json").read_text())
            return task_from_channels(
                int(transformer["in_channels"]), int(vae["z_dim"]), int(vae.get("scale_factor_temporal", 4))
            )
        except (OSError, ValueError, KeyError, TypeError):
            index = folder / "model_index.json"
    else:
        # huggingface_hub: only for a hub id (this module is torch-free and quick)
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "model_index.json", revision=HUB_REVISIONS.get(name))
        if not isinstance(cached, str):  # not fetched yet (or known to be missing)
            return None
        index = Path(cached)
    try:
        name = json.loads(index.read_text()).get("_class_name")
        return "i2v" if name == I2V_PIPELINE or name in FRAME_REPLACING else "t2v"
    except (OSError, ValueError, AttributeError):
        return None


def base_experts(name_or_path: str) -> float | None:
    """The boundary_ratio of a two-expert base (Wan2.2-A14B: `transformer_2` beside `transformer`), read from
    its model_index.json without loading it (a hub id's when the Hub cache holds it); None for a
    one-transformer base or one that cannot be told here."""
    try:
        kind, folder = resolve_model((name_or_path or "").strip())
    except ModelError:
        return None
    if folder is not None:
        index = folder / "model_index.json"
    elif kind == "hub":
        # huggingface_hub: only for a hub id (this module is torch-free and quick)
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name_or_path.strip(), "model_index.json")
        if not isinstance(cached, str):
            return None
        index = Path(cached)
    else:
        return None
    try:
        found = json.loads(index.read_text())
    except (OSError, ValueError):
        return None
    second = found.get("transformer_2")
    if not isinstance(second, list) or second[0] is None or found.get("boundary_ratio") is None:
        return None
    return float(found["boundary_ratio"])


def base_tasks(name_or_path: str) -> tuple[str, ...] | None:
    """What a base generates, read from its files without torch: ("t2v", "i2v") for a frame-replacement
    base (model_index.json's expand_timesteps: Wan2.2-TI2V, one model for both), else (base_task,);
    None when it cannot be told here."""
    name = (name_or_path or "").strip()
    if name in RANDOM_TI2V:
        return ("t2v", "i2v")
    index = None
    try:
        _, folder = resolve_model(name) if name not in RANDOM_MODELS else (None, None)
    except ModelError:
        return None
    if folder is not None:
        index = folder / "model_index.json"
    elif name not in RANDOM_MODELS:
        # huggingface_hub: only for a hub id (this module is torch-free and quick)
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "model_index.json")
        index = Path(cached) if isinstance(cached, str) else None
    try:
        if index is not None and json.loads(index.read_text()).get("expand_timesteps"):
            return ("t2v", "i2v")
    except (OSError, ValueError, AttributeError):
        pass
    task = base_task(name)
    return (task,) if task is not None else None


def video_factors(folder: Path) -> tuple[int, int] | None:
    """(frames per latent frame, pixels per token side) from a pipeline folder's vae and transformer
    configs, or None when they do not name them (the loaded model's defaults then decide)."""
    try:
        vae = json.loads((folder / "vae" / "config.json").read_text())
        transformer = json.loads((folder / "transformer" / "config.json").read_text())
        return int(vae["scale_factor_temporal"]), int(vae["scale_factor_spatial"]) * int(transformer["patch_size"][1])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def rope_positions(folder: Path) -> int | None:
    """The transformer's rotary positions per axis (rope_max_seq_len) from a folder's config, or None."""
    try:
        rope = json.loads((folder / "transformer" / "config.json").read_text()).get("rope_max_seq_len")
        return int(rope) if rope is not None else None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def check_video_shape(
    temporal: int,
    spatial: int,
    num_frames: int | None,
    height: int | None,
    width: int | None,
    max_tokens: int | None = None,
) -> None:
    """Refuse a video shape the VAE and transformer cannot take (None: not given, not checked).

    temporal: pixel frames per latent frame; spatial: pixels per token side (the VAE's spatial factor,
    8 for Wan2.1 and 16 for Wan2.2's, times the patch size); max_tokens: the rotary embedding's positions
    per axis (WanTransformer3DModel's rope_max_seq_len), past which diffusers fails deep inside the
    first forward with a reshape error."""
    if num_frames is not None and (num_frames < 1 or (num_frames - 1) % temporal):
        raise ModelError(f"num_frames must be {temporal}k+1 (e.g. {temporal * 4 + 1}); got {num_frames}")
    sides = {"height": height, "width": width}
    if any(side is not None and (side <= 0 or side % spatial) for side in sides.values()):
        given = ", ".join(f"{name} {side}" for name, side in sides.items() if side is not None)
        raise ModelError(f"height and width must be positive multiples of {spatial}; got {given}")
    if max_tokens is None:
        return
    given = {"num_frames": num_frames, "height": height, "width": width}
    positions = {"num_frames": num_frames and (num_frames - 1) // temporal + 1}
    positions.update(height=height and height // spatial, width=width and width // spatial)
    for name, n in positions.items():
        if n is not None and n > max_tokens:
            most = (max_tokens - 1) * temporal + 1 if name == "num_frames" else max_tokens * spatial
            raise ModelError(
                f"{name} {given[name]} is too large for this base: it makes {n} positions on that axis, its "
                f"transformer's rotary embedding has {max_tokens} (rope_max_seq_len); give at most {most}"
            )


def video_window(name_or_path: str, num_frames: int | None = None) -> tuple[int, float]:
    """(frames, fps) of a training window for this base, read from its dfd_studio.json without loading it
    (Wan's 81 at 16 fps for a pipeline without one, a hub id or a name that is not a model);
    num_frames: the run's own, when it sets one."""
    meta = {}
    try:
        _, folder = resolve_model(name_or_path)
        if folder is not None and (folder / STUDIO_META).is_file():
            meta = json.loads((folder / STUDIO_META).read_text())
    except (ModelError, OSError, ValueError):
        pass
    frames = num_frames or int(meta.get("num_frames", WAN_DEFAULTS["num_frames"]))
    return frames, float(meta.get("fps", WAN_DEFAULTS["fps"]))
