"""mp4 writing and reading: decodable H.264 with the right frame count, atomic, clear errors."""

import numpy as np
import pytest

from engine.shapes import world
from engine.media.video import VideoError, read_mp4, write_mp4
from mp4_probe import probe_frame_count


def test_written_mp4_decodes_with_every_frame_and_close_pixels(tmp_path):
    clips, _ = world.sample_clips({}, 1, seed=0)
    path = write_mp4(tmp_path / "clip.mp4", clips[0], fps=8)
    assert path.stat().st_size > 0
    assert probe_frame_count(path) == 17
    back = read_mp4(path)
    assert back.shape == clips[0].shape
    assert np.abs(back.astype(int) - clips[0].astype(int)).mean() < 6  # lossy, but close


def test_upscaled_mp4_has_the_scaled_size(tmp_path):
    clips, _ = world.sample_clips({}, 1, seed=0)
    back = read_mp4(write_mp4(tmp_path / "big.mp4", clips[0], scale=4))
    assert back.shape == (17, 256, 256, 3)


def test_odd_frame_size_is_refused_before_ffmpeg_writes_an_empty_file(tmp_path):
    frames = np.zeros((5, 63, 64, 3), np.uint8)
    with pytest.raises(VideoError, match="even frame sizes"):
        write_mp4(tmp_path / "odd.mp4", frames)
    assert not list(tmp_path.iterdir())


def test_bad_frames_are_clear_errors(tmp_path):
    with pytest.raises(VideoError, match="uint8"):
        write_mp4(tmp_path / "f.mp4", np.zeros((5, 64, 64, 3), np.float32))
    with pytest.raises(VideoError, match="shape"):
        write_mp4(tmp_path / "f.mp4", np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(VideoError, match="no video file"):
        read_mp4(tmp_path / "missing.mp4")


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path):
    clips, _ = world.sample_clips({}, 1, seed=0)
    path = write_mp4(tmp_path / "clip.mp4", clips[0])
    before = path.read_bytes()
    with pytest.raises(VideoError):
        write_mp4(path, clips[0][:, :63])
    assert path.read_bytes() == before
