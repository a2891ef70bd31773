"""Training windows cut from a video at the model's frame rate.

A window is `num_frames` frames at `fps` (the base model's: Wan learned 81 frames at 16 fps, about 5 s;
the shapes world 17 at 8 fps). Frame k of window j is the source frame on screen at time
(j * num_frames + k) / fps: source index floor(t * source_fps). A source slower than `fps` repeats
frames, a faster one skips them; the motion keeps its real speed either way (spreading a window over a
whole video would train a time-lapse). Windows follow each other from the start of the video without
overlap; a video shorter than one window gives none.

Frames are decoded as a stream and only the current window's frames are kept (each passed through
`fit` as it arrives, e.g. resized to the training size), so a long or large video costs the memory of
one window. Torch-free: the caller's `fit` does any tensor work.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.ffmpeg import READ_LOCAL_ONLY


class VideoReadError(ValueError):
    """A file that is not a readable video; the message is one line saying why."""


class ShortVideo(VideoReadError):
    """Shorter than one window."""

    def __init__(self, frames: int, source_fps: float, num_frames: int, fps: float):
        self.frames = frames
        super().__init__(
            f"too short: {frames} frames at {source_fps:g} fps ({frames / source_fps:.2f} s); a window is "
            f"{num_frames} frames at {fps:g} fps ({window_seconds(num_frames, fps):.2f} s)"
        )


@dataclass(frozen=True)
class VideoInfo:
    fps: float  # the frame rate the container declares
    width: int
    height: int
    duration: float  # seconds, as the container declares (0 when unknown)

    def expected_frames(self) -> int:
        return int(round(self.duration * self.fps)) if self.duration and self.fps else 0


@dataclass(frozen=True)
class Window:
    index: int  # j: the window's place in the video
    frames: np.ndarray  # (num_frames, ...) what `fit` made of each picked frame
    source_indices: tuple[int, ...]  # the source frames picked
    times: tuple[float, ...]  # their times in the video, seconds


def window_seconds(num_frames: int, fps: float) -> float:
    return num_frames / fps


def source_index(time_s: float, source_fps: float) -> int:
    """The source frame on screen at `time_s` (a tiny tolerance keeps exact multiples exact)."""
    return int(math.floor(time_s * source_fps + 1e-6))


def window_indices(j: int, num_frames: int, fps: float, source_fps: float) -> list[int]:
    """Source frame indices of window j."""
    return [source_index((j * num_frames + k) / fps, source_fps) for k in range(num_frames)]


def windows_in(frame_count: int, num_frames: int, fps: float, source_fps: float) -> int:
    """How many whole windows a video of `frame_count` source frames holds."""
    if frame_count <= 0:
        return 0
    j = 0
    while window_indices(j, num_frames, fps, source_fps)[-1] < frame_count:
        j += 1
    return j


def _ffmpeg_reason(err: Exception) -> str:
    """ffmpeg's first complaint, without the banner it prints before it."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if any(word in line.lower() for word in ("partial file", "not found", "invalid", "error")):
            return line.split("] ")[-1][:160]
    return (lines[-1] if lines else type(err).__name__)[:160]


def _unreadable(err: Exception, decoded: int | None = None) -> VideoReadError:
    if "partial file" in str(err):
        return VideoReadError("truncated: the file ends early (ffmpeg: partial file)")
    if decoded is None:
        return VideoReadError(f"not a readable video ({_ffmpeg_reason(err)})")
    return VideoReadError(f"decoding failed after {decoded} frames ({_ffmpeg_reason(err)})")


def _open(path: Path, source_fps: float | None):
    import imageio_ffmpeg  # its ffmpeg binary: only when a video is read

    if not path.is_file():
        raise VideoReadError("the file is missing")
    if path.stat().st_size == 0:
        raise VideoReadError("empty file (0 bytes)")
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", input_params=list(READ_LOCAL_ONLY))
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as err:
        raise _unreadable(err) from None
    w, h = meta["size"]
    fps = float(source_fps or meta.get("fps") or 0)
    if not fps > 0:
        reader.close()
        raise VideoReadError("the file declares no frame rate; give its source_fps in a data-set config")
    return reader, VideoInfo(fps=fps, width=int(w), height=int(h), duration=float(meta.get("duration") or 0))


def probe(path: str | Path, source_fps: float | None = None) -> VideoInfo:
    """The video's rate, size and duration from its header (nothing decoded); raises VideoReadError."""
    reader, info = _open(Path(path), source_fps)
    reader.close()
    return info


def iter_windows(
    path: str | Path,
    num_frames: int,
    fps: float,
    max_windows: int | None = 1,
    fit: Callable[[np.ndarray], np.ndarray] | None = None,
    source_fps: float | None = None,
) -> Iterator[Window]:
    """Decode `path` as a stream and yield its windows in order, at most `max_windows` (None: all).

    Raises VideoReadError when the file cannot be decoded, and when it decodes to clearly fewer frames
    than its header declares (a truncated file), after the windows it did hold. A video shorter than
    one window raises ShortVideo, with its length and the window's."""
    reader, info = _open(Path(path), source_fps)
    fit = fit or (lambda frame: frame)
    j, picked = 0, []
    wanted = window_indices(0, num_frames, fps, info.fps)
    decoded = 0
    try:
        for i, buf in enumerate(reader):
            decoded, frame = i + 1, None
            while True:  # a source slower than fps: the next window may start on this same frame
                while len(picked) < num_frames and wanted[len(picked)] == i:
                    if frame is None:
                        frame = fit(np.frombuffer(buf, np.uint8).reshape(info.height, info.width, 3))
                    picked.append(frame)
                if len(picked) < num_frames:
                    break
                times = tuple((j * num_frames + k) / fps for k in range(num_frames))
                yield Window(j, np.stack(picked), tuple(wanted), times)
                j += 1
                if max_windows is not None and j >= max_windows:
                    return
                picked, wanted = [], window_indices(j, num_frames, fps, info.fps)
    except (OSError, RuntimeError) as err:
        raise _unreadable(err, decoded) from None
    finally:
        reader.close()
    expected = info.expected_frames()
    if decoded == 0:
        raise VideoReadError("decodes to no frames")
    if expected and decoded < expected - max(2, 0.05 * expected):
        raise VideoReadError(f"truncated: decodes to {decoded} of the {expected} frames its header declares")
    if j == 0:
        raise ShortVideo(decoded, info.fps, num_frames, fps)
