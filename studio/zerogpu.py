"""ZeroGPU (the Hub's shared GPU tier): a GPU is lent only while a function decorated with
`@spaces.GPU(duration=..., size=...)` runs, so the web process samples inside one; training, which needs a
GPU for hours, cannot run there at all. On every other host `on_gpu` returns the function unchanged.

A Space runs on ZeroGPU when the `spaces` package is importable and SPACES_ZERO_GPU is set (the variable
the `spaces` package itself reads). One runner per GPU size is decorated at start-up; each call's grant is
computed from its inputs (clips, steps, frames, resolution), as ZeroGPU's dynamic durations allow, and the
size (`large` 48 GB, `xlarge` 96 GB at twice the quota) from the memory the model's weights need. A visitor
whose daily ZeroGPU quota is spent gets ZeroGPUQuotaError, a ValueError the tabs show as one message.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import engine

MIN_SECONDS, MAX_SECONDS = 60, 600  # ZeroGPU's default grant; longer asks wait longer in its queue
SECONDS_PER_STEP = 2.0  # one denoising step of one clip of Wan's length (81 frames) with the 1.3B model, with headroom
SIZES = {"large": 48, "xlarge": 96}  # ZeroGPU's GPU sizes and their memory in GB
DEFAULT_SIZE = "large"
WEIGHTS_HEADROOM = 1.5  # activations, the VAE decode and the CUDA context beside the weights themselves
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

TRAINING_NOTE = (
    "This Space runs on ZeroGPU, which lends a GPU for seconds at a time: training needs a GPU "
    "for hours. Pick Run on: HF Jobs (under Launch) to train on the Hub's GPUs under your own "
    "account, or duplicate the Space onto dedicated GPU hardware (e.g. an L40S or A10G), or run "
    "the studio on a machine with a GPU, to distill here."
)


class ZeroGPUQuotaError(ValueError):
    """The visitor's daily ZeroGPU quota cannot cover this call."""


def on_zerogpu(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    flag = environ.get("SPACES_ZERO_GPU", "").strip().lower()
    return flag not in ("", "0", "false", "no") and importlib.util.find_spec("spaces") is not None


def sampling_seconds(
    clips: int, steps: int, num_frames: int | None = None, height: int | None = None, width: int | None = None
) -> int:
    """A GPU grant that fits sampling `clips` clips with `steps` denoising steps each, `num_frames` long and
    `height` x `width` (None: the model's own); a step costs at least linearly more on a clip longer or
    larger than Wan's 81 frames of 480 x 832."""
    wan = engine.WAN_DEFAULTS
    longer = max(1.0, (num_frames or wan["num_frames"]) / wan["num_frames"])
    larger = max(1.0, (height or wan["height"]) * (width or wan["width"]) / (wan["height"] * wan["width"]))
    work = SECONDS_PER_STEP * longer * larger * max(1, clips) * max(1, steps)
    return int(min(MAX_SECONDS, max(MIN_SECONDS, 30 + work)))


def weights_gb(folder: str | Path | None) -> float | None:
    """The size in GB of a model folder's weight files (a snapshot, a mounted model volume); None: unknown."""
    if folder is None or not Path(folder).is_dir():
        return None
    total = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    return total / 1e9 if total else None


def model_gb(base: str, cache_dir: str | Path | None = None) -> float | None:
    """The weights' size of a base: a folder (a mounted model volume) or a hub id already in the Hugging Face
    cache (preload_from_hub's copy); None when neither is on this machine."""
    if Path(base).expanduser().is_dir():
        return weights_gb(Path(base).expanduser())
    from huggingface_hub import snapshot_download

    try:
        return weights_gb(snapshot_download(base, local_files_only=True, cache_dir=cache_dir))
    except Exception:  # not cached, or not a repo id at all: the size is unknown, the default size is asked
        return None


def gpu_size(model_gb: float | None) -> str:
    """The smallest ZeroGPU size whose memory holds the model's weights with headroom (`large` when unknown).
    Raises ValueError when not even `xlarge` does."""
    if model_gb is None:
        return DEFAULT_SIZE
    for size, memory in SIZES.items():
        if model_gb * WEIGHTS_HEADROOM <= memory:
            return size
    raise ValueError(
        f"this model's weights ({model_gb:.0f} GB) do not fit ZeroGPU's largest GPU "
        f"({SIZES['xlarge']} GB); run the studio on dedicated GPU hardware to sample it"
    )


def _call(fn, seconds, *args, **kwargs):
    return fn(*args, **kwargs)


@functools.cache
def _gpu_runner(size: str = DEFAULT_SIZE):
    """`_call` under @spaces.GPU of this size, with each call's duration taken from its `seconds` argument."""
    import spaces

    return spaces.GPU(duration=lambda fn, seconds, *args, **kwargs: seconds, size=size)(_call)


def prepare() -> None:
    """Decorate the runners at start-up (ZeroGPU expects its GPU functions before the app launches)."""
    if on_zerogpu():
        for size in SIZES:
            _gpu_runner(size)


def quota_message(seconds: int, size: str) -> str:
    extra = " (an xlarge GPU counts twice)" if size == "xlarge" else ""
    return (
        f"ZeroGPU's daily quota left to you cannot cover this sampling ({seconds} s on a {size} GPU{extra}). "
        "Sign in with Hugging Face (signed-in and PRO accounts get more), ask for fewer seeds, steps or "
        "frames, try again after your quota resets, or duplicate the Space onto your own GPU hardware."
    )


def _on_lent_gpu(runner, fn, seconds: int, size: str, *args, **kwargs):
    try:
        return runner(fn, seconds, *args, **kwargs)
    except Exception as err:  # the `spaces` package reports a spent quota as an error whose text names it
        if "quota" in f"{getattr(err, 'title', '')} {err}".lower():
            raise ZeroGPUQuotaError(quota_message(seconds, size)) from err
        raise


def on_gpu_for(fn, base: str, clips: int, steps: int, num_frames=None, height=None, width=None):
    """`fn` on a lent GPU sized for this call: its seconds from the clips, steps, frames and size asked, the GPU
    size from `base`'s weights (measured only on ZeroGPU: elsewhere `fn` itself, with nothing read)."""
    if not on_zerogpu():
        return fn
    seconds = sampling_seconds(clips, steps, num_frames, height, width)
    return on_gpu(fn, seconds, gpu_size(model_gb(base)))


def on_gpu(fn, seconds: int, size: str = DEFAULT_SIZE):
    """`fn` to be called on a lent GPU of `size` for at most `seconds` on ZeroGPU; `fn` itself elsewhere."""
    if size not in SIZES:
        raise ValueError(f"ZeroGPU size must be one of {', '.join(SIZES)}, not {size!r}")
    if not on_zerogpu():
        return fn
    return functools.partial(_on_lent_gpu, _gpu_runner(size), fn, int(seconds), size)
