"""mp4 writing and reading: decodable H.264 with the right frame count, atomic, clear errors."""

import numpy as np
import pytest

from engine.media.video import VideoError, read_mp4, write_mp4
from engine.shapes import world
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


@pytest.fixture
def beacon():
    """A local HTTP server that records every request: where a video file that names a URL would call."""
    import http.server
    import threading

    calls = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            calls.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()


def _playlist(path, url):
    """An HLS playlist saved as .mp4: ffmpeg goes by the content, and would fetch the segment it names."""
    path.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{url}/segment.ts\n#EXT-X-ENDLIST\n")
    return path


def test_a_video_file_that_names_a_url_is_refused_without_any_request(tmp_path, beacon):
    """ffmpeg's own default already keeps a playlist read from a file off the network; the readers' explicit
    `-protocol_whitelist file` keeps it so whatever the ffmpeg build, and this checks the outcome."""
    from engine.datasets.video_windows import VideoReadError, probe

    url, calls = beacon
    clip = _playlist(tmp_path / "clip.mp4", url)
    with pytest.raises(VideoError, match="could not decode"):
        read_mp4(clip)
    with pytest.raises(VideoReadError):
        probe(clip, source_fps=16)
    assert calls == []
