"""Reading and writing mp4 files (H.264, yuv420p) with the ffmpeg that imageio-ffmpeg ships.

Writes are atomic (temp file, then rename) and checked: ffmpeg silently writes a 0-byte file for odd
frame sizes, so sizes are validated first and an empty result is refused. Every read of a file (ours or a
user's) passes READ_LOCAL_ONLY: a file that is really a playlist or a description naming URLs (HLS, SDP)
makes ffmpeg open nothing but local files, so no upload can make the server call out.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.ffmpeg import READ_LOCAL_ONLY


class VideoError(ValueError):
    """A video could not be written or read; the message says why and what to do."""


def _imageio_ffmpeg():
    """imageio-ffmpeg, imported when a video is read or written: sampling and training without videos
    (the GPU benchmarks, on an image without it) need no ffmpeg."""
    import imageio_ffmpeg  # its ffmpeg binary: only when a video is read or written

    return imageio_ffmpeg


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (F, H, W, 3) frames: small clips stay crisp in a browser."""
    if factor == 1:
        return frames
    return frames.repeat(factor, axis=1).repeat(factor, axis=2)


def write_mp4(path: str | Path, frames: np.ndarray, fps: int = 8, scale: int = 1) -> Path:
    """Write uint8 frames (F, H, W, 3) as an H.264 mp4 at `path`, atomically; returns the path."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoError(f"frames must have shape (frames, height, width, 3), got {tuple(frames.shape)}")
    if frames.shape[0] < 1:
        raise VideoError("cannot write a video with no frames")
    if frames.dtype != np.uint8:
        raise VideoError(f"frames must be uint8 (0-255), got {frames.dtype}")
    if scale < 1:
        raise VideoError(f"scale must be a positive integer, got {scale}")
    frames = upscale(frames, scale)
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise VideoError(f"H.264 (yuv420p) needs even frame sizes; got {w}x{h}. Use an even width and height.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.mp4")
    writer = _imageio_ffmpeg().write_frames(
        str(tmp),
        (w, h),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=1,
        output_params=["-crf", "18", "-preset", "veryfast", "-movflags", "+faststart"],
        ffmpeg_log_level="error",
    )
    try:
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()
    if not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise VideoError(f"ffmpeg wrote an empty file for {path}; the frames were {w}x{h}x{len(frames)}")
    os.replace(tmp, path)
    return path


def read_mp4(path: str | Path) -> np.ndarray:
    """Decode a video file into uint8 frames (F, H, W, 3)."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"no video file at {path}")
    try:
        reader = _imageio_ffmpeg().read_frames(str(path), pix_fmt="rgb24", input_params=list(READ_LOCAL_ONLY))
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]
    except (RuntimeError, OSError, StopIteration) as err:
        raise VideoError(f"could not decode {path}: {err}") from err
    if not frames:
        raise VideoError(f"{path} decodes to no frames")
    return np.stack(frames)
