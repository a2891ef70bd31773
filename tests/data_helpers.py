"""What the data tests share: the tiny teacher loaded once per module (`mini_model`), real video files of
numbered grey frames (AVI at any rate, mp4 clips), a folder of broken and unusable files and the reasons each
is skipped for."""

import subprocess

import numpy as np
import pytest

from engine.media.video import write_mp4


@pytest.fixture(scope="module")
def mini_model(mini_teacher_dir):
    from engine.models.base import load_base_model

    model = load_base_model(str(mini_teacher_dir), device="cpu")
    assert (model.num_frames, model.fps, model.height, model.width) == (17, 8, 64, 64)
    return model


def numbered_frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i is a flat grey of level 4*i, so a decoded frame tells which source frame it was."""
    return np.repeat((np.arange(n, dtype=np.uint8) * 4)[:, None, None, None], h * w * 3).reshape(n, h, w, 3)


def write_avi(path, frames: np.ndarray, fps: int):
    """An MJPEG .avi through ffmpeg (a container and codec other than our mp4 writer's)."""
    import imageio_ffmpeg

    n, h, w, _ = frames.shape
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            str(fps),
            "-i",
            "-",
            "-c:v",
            "mjpeg",
            "-q:v",
            "2",
            str(path),
        ],
        input=frames.tobytes(),
        check=True,
    )
    return path


def clip(folder, name, seconds: float, fps: int, caption: str | None = "a clip", size=(48, 64), shift: int = 0):
    frames = numbered_frames(int(seconds * fps), *size) + np.uint8(shift)
    path = write_avi(folder / name, frames, fps) if name.endswith(".avi") else write_mp4(folder / name, frames, fps=fps)
    if caption is not None:
        (folder / name).with_suffix(".txt").write_text(caption)
    return path


def broken_folder(folder):
    """Two good clips beside every kind of bad file."""
    folder.mkdir()
    clip(folder, "good24.mp4", 2.5, 24, "a clip at 24 fps")
    clip(folder, "good15.avi", 3, 15, "a clip at 15 fps")
    clip(folder, "short.mp4", 1, 24, "a clip of one second")
    clip(folder, "nocaption.mp4", 2.5, 24, caption=None)
    clip(folder, "latin1.mp4", 2.5, 24, caption=None)
    (folder / "latin1.txt").write_bytes("un caf\u00e9".encode("latin-1"))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "empty.txt").write_text("an empty file")
    (folder / "random.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (folder / "random.txt").write_text("random bytes")
    whole = (folder / "good24.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # moov first (faststart): decodes a part
    (folder / "truncated.txt").write_text("half a clip")
    (folder / "notes.pdf").write_bytes(b"%PDF")
    return folder


REASONS = {
    "short.mp4": "too short: 24 frames at 24 fps (1.00 s); a window is 17 frames at 8 fps (2.12 s)",
    "nocaption.mp4": "no caption (no nocaption.txt beside it)",
    "latin1.mp4": "latin1.txt is not UTF-8 text (byte 0xe9 at position 6); save it as UTF-8",
    "empty.mp4": "empty file (0 bytes)",
    "random.mp4": "not a readable video (",
    "truncated.mp4": "truncated: ",
    "notes.pdf": "not a video (.mp4, .webm, .mov, .mkv, .avi)",
}
