"""Counting the frames of an mp4 file independently of engine.media.video's reader, for the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg


def probe_frame_count(path: str | Path) -> int:
    """Number of frames ffmpeg decodes from the file (imageio-ffmpeg ships no ffprobe)."""
    result = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-v",
            "error",
            "-i",
            str(path),
            "-map",
            "0:v:0",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"ffmpeg cannot decode {path}: {result.stderr.strip()[:300]}"
    frames = [line.split("=", 1)[1] for line in result.stdout.splitlines() if line.startswith("frame=")]
    return int(frames[-1]) if frames else 0
