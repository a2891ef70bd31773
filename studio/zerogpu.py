"""ZeroGPU (the Hub's shared GPU tier): a GPU is lent only while a function decorated with
`@spaces.GPU(duration=...)` runs, so the web process samples inside one; training, which needs a GPU for
hours, cannot run there at all. On every other host `on_gpu` returns the function unchanged.

A Space runs on ZeroGPU when the `spaces` package is importable and SPACES_ZERO_GPU is set (the variable
the `spaces` package itself reads). The decorated runner is made once, at start-up, with a duration
computed per call, as ZeroGPU's dynamic durations allow.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import engine

MIN_SECONDS, MAX_SECONDS = 60, 600  # ZeroGPU's default grant; longer asks wait longer in its queue
SECONDS_PER_STEP = 2.0  # one denoising step of one clip of Wan's length (81 frames) with the 1.3B model, with headroom

TRAINING_NOTE = ("This Space runs on ZeroGPU, which lends a GPU for seconds at a time: training needs a GPU "
                 "for hours. Duplicate the Space onto dedicated GPU hardware (e.g. an L40S or A10G), or run "
                 "the studio on a machine with a GPU, to distill here.")


def on_zerogpu(environ=None) -> bool:
    environ = os.environ if environ is None else environ
    flag = environ.get("SPACES_ZERO_GPU", "").strip().lower()
    return flag not in ("", "0", "false", "no") and importlib.util.find_spec("spaces") is not None


def sampling_seconds(clips: int, steps: int, num_frames: int | None = None) -> int:
    """A GPU grant that fits sampling `clips` clips with `steps` denoising steps each, `num_frames` long (None:
    the model's own); a step costs at least linearly more on a clip longer than Wan's 81 frames."""
    wan_frames = engine.WAN_DEFAULTS["num_frames"]
    longer = max(1.0, (num_frames or wan_frames) / wan_frames)
    return int(min(MAX_SECONDS, max(MIN_SECONDS, 30 + SECONDS_PER_STEP * longer * max(1, clips) * max(1, steps))))


def _call(fn, seconds, *args, **kwargs):
    return fn(*args, **kwargs)


@functools.cache
def _gpu_runner():
    """`_call` under @spaces.GPU, with each call's duration taken from its `seconds` argument."""
    import spaces

    return spaces.GPU(duration=lambda fn, seconds, *args, **kwargs: seconds)(_call)


def prepare() -> None:
    """Decorate the runner at start-up (ZeroGPU expects its GPU functions before the app launches)."""
    if on_zerogpu():
        _gpu_runner()


def on_gpu(fn, seconds: int):
    """`fn` to be called on a lent GPU for at most `seconds` on ZeroGPU; `fn` itself elsewhere."""
    if not on_zerogpu():
        return fn
    return functools.partial(_gpu_runner(), fn, int(seconds))
