"""Composites of clips (engine/media/composite.py): side by side with labels, video grid, still grid; they keep
the frames in step, keep H.264-friendly sizes, and refuse clips that do not match."""

from __future__ import annotations

import numpy as np
import pytest

from engine.media import composite
from engine.media.video import read_mp4, write_mp4
from mp4_probe import probe_frame_count


def clip(value: int, frames: int = 5, size: int = 16) -> np.ndarray:
    video = np.full((frames, size, size, 3), value, np.uint8)
    video[:, 0, 0] = np.arange(frames)[:, None] * 10  # a marker that differs per frame
    return video


def test_side_by_side_keeps_frames_in_step_under_a_label_strip():
    a, b, c = clip(50), clip(120), clip(200)
    out = composite.side_by_side([a, b, c], ["teacher", "DMD2", "DFD"], scale=2, strip=20)

    assert out.shape == (5, 20 + 32, 3 * 32 + 2 * composite.GAP, 3)
    x_b = 32 + composite.GAP
    assert (out[:, 20 + 1 :, x_b + 2 :][:, :4, :4] == 120).all()  # the second clip, upscaled, below the strip
    assert [out[f, 20, 0, 0] for f in range(5)] == [
        0,
        10,
        20,
        30,
        40,
    ]  # frame f of the composite is frame f of each clip
    assert out[:, :20].std() > 0  # the strip has text on it


def test_composite_is_written_as_a_playable_mp4_with_all_frames(tmp_path):
    out = composite.side_by_side([clip(40, size=17), clip(90, size=17)], ["odd", "sizes"], scale=1, strip=21)
    assert out.shape[1] % 2 == 0 and out.shape[2] % 2 == 0  # padded for yuv420p
    path = write_mp4(tmp_path / "c.mp4", out, fps=8)
    assert probe_frame_count(path) == 5 and read_mp4(path).shape[1:3] == out.shape[1:3]


def test_clips_of_different_length_or_size_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="differ in frame count or size"):
        composite.side_by_side([clip(1, frames=5), clip(2, frames=9)], ["a", "b"])
    with pytest.raises(ValueError, match="one label per clip"):
        composite.side_by_side([clip(1)], ["a", "b"])
    with pytest.raises(ValueError, match="no clips"):
        composite.video_grid([], [])


def test_video_grid_has_a_row_per_model_and_a_column_per_seed():
    rows = [[clip(10 * (i + 1) + j) for j in range(4)] for i in range(3)]
    seeds = [f"seed {s}" for s in range(1, 5)]
    out = composite.video_grid(rows, ["teacher", "dmd2", "dfd"], seeds, scale=1, strip=20)

    label_width, top = 20 + composite.GAP, composite.strip_height(seeds, 16, 20)  # "seed 1" wraps over 16 pixels
    assert out.shape[0] == 5 and top > 20
    for i in range(3):
        for j in range(4):
            y, x = top + i * (16 + composite.GAP), label_width + j * (16 + composite.GAP)
            assert out[2, y + 8, x + 8, 0] == 10 * (i + 1) + j


def test_still_grid_shows_first_middle_and_last_frame_of_every_clip():
    rows = [[clip(60), clip(70)], [clip(80), clip(90)]]
    image = composite.still_grid(rows, ["a", "b"], ["seed 1", "seed 2"], strip=20)

    assert image.ndim == 3 and image.shape[2] == 3
    x0, y0 = 20 + composite.GAP, 20
    assert [image[y0, x0 + k * 16, 0] for k in range(3)] == [0, 20, 40]  # frames 0, 2, 4 side by side
    with pytest.raises(ValueError, match="outside the clips"):
        composite.still_grid(rows, ["a", "b"], frame_indices=[9])


def test_label_strip_shortens_long_text_to_fit(tmp_path):
    strip = composite.label_strip("a very long label " * 10, width=64, height=20)
    assert strip.shape == (20, 64, 3)
    path = composite.write_png(tmp_path / "s.png", strip)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_label_too_long_for_its_clip_is_drawn_smaller_or_wrapped_never_cut():
    """Compare's labels name a job's student and its steps; at 256 pixels a clip's strip shows all of it."""
    for text in ("causal DMD2 · dmd2-ar (shipped) · 4 steps per chunk", "DFD · j-20261204-ab12cd · 4 steps"):
        size, lines = composite.fit_label(text, 256)
        assert " ".join(lines) == text and size >= 10, (size, lines)
    size, lines = composite.fit_label("causal DMD2 · j-20261204-ab12cd · 4 steps per chunk", 128)
    assert len(lines) > 1 and " ".join(lines) == "causal DMD2 · j-20261204-ab12cd · 4 steps per chunk"
    assert all(composite._text_width(line, size) <= 128 - 6 for line in lines)

    labels = ["teacher · 50 steps · CFG 3", "causal DMD2 · j-20261204-ab12cd · 4 steps per chunk"]
    out = composite.side_by_side([clip(50, size=32), clip(90, size=32)], labels, scale=4, strip=22)
    top = composite.strip_height(labels, 128, 22)
    assert top > 22 and out.shape[1] == top + 128  # the strip grew a line; the clips sit below it
    assert (out[:, top + 4 : top + 8, 4:8] == 50).all()  # below the strip, past the per-frame marker
    assert out[:, 22:top, 128 + composite.GAP :].std() > 0  # the second line has text on it
