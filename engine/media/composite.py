"""Composites of generated clips for looking at them together: one synchronized side-by-side video with a
label strip over each clip, a video grid (rows = models, columns = seeds), and a still-frame grid.

Everything works on uint8 clips (F, H, W, 3) and returns uint8 frames; engine.media.video writes them. The
labels are drawn with Pillow's built-in scalable font, so no system font is needed.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core.ffmpeg import READ_LOCAL_ONLY

BACKGROUND = (17, 19, 24)  # the strip and the gaps between clips
TEXT = (235, 236, 240)
GAP = 4  # pixels between clips


@lru_cache(maxsize=16)
def _font(size: int):
    from PIL import ImageFont  # Pillow: only when frames are drawn

    return ImageFont.load_default(size=size)


def _text_width(text: str, size: int) -> float:
    return _font(size).getlength(text)


def _wrap(words: list[str], width: int, size: int) -> list[str]:
    """Words into lines no wider than `width` at font `size` (a word wider than a line stays alone on it)."""
    lines: list[str] = []
    for word in words:
        if lines and _text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _cut(text: str, width: int, size: int) -> str:
    """The text shortened with '…' until it fits `width` (only for a single word too long for any line)."""
    while text and _text_width(text, size) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def fit_label(text: str, width: int, height: int = 22) -> tuple[int, list[str]]:
    """(font size, lines) that show all of `text` within `width` pixels: the strip's own font size, smaller
    down to three quarters of it, then wrapped onto more lines at that size. Only a single word longer than
    a whole line is cut with '…'."""
    room = max(1, width - 6)
    size = max(8, int(height * 0.62))
    smallest = max(8, int(size * 0.75))
    while size > smallest and _text_width(text, size) > room:
        size -= 1
    if _text_width(text, size) <= room:
        return size, [text]
    return size, [_cut(line, room, size) for line in _wrap(text.split(), room, size)]


def strip_height(texts: list[str], width: int, height: int = 22) -> int:
    """The height a label strip needs so that every text fits `width` (`height` for one line)."""
    lines = max((len(fit_label(t, width, height)[1]) for t in texts), default=1)
    size = max(8, int(height * 0.62))
    return height if lines <= 1 else height + (lines - 1) * (size + 2)


def label_strip(text: str, width: int, height: int = 22, line: int | None = None) -> np.ndarray:
    """A (height, width, 3) strip with `text` centred, made smaller or wrapped to fit the width (fit_label).
    line: the height of a one-line strip, which sets the font (default `height`); strip_height says how tall
    the strip must be for the wrapped lines."""
    from PIL import Image, ImageDraw  # Pillow: only when frames are drawn

    size, lines = fit_label(text, width, line or height)
    font = _font(size)
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    step = size + 2
    top = height / 2 - step * (len(lines) - 1) / 2
    for k, shown in enumerate(lines):
        x = max(3, (width - draw.textlength(shown, font=font)) / 2)
        draw.text((x, top + k * step), shown, fill=TEXT, font=font, anchor="lm")
    return np.asarray(image, dtype=np.uint8)


def _check_same_shape(clips: list[np.ndarray]) -> tuple[int, int, int]:
    if not clips:
        raise ValueError("no clips to put together; generate at least one video first")
    shapes = {tuple(np.asarray(c).shape) for c in clips}
    for clip in clips:
        if clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
            raise ValueError(f"clips must be uint8 arrays (frames, height, width, 3), got {clip.dtype} {clip.shape}")
    if len(shapes) != 1:
        raise ValueError(
            f"clips differ in frame count or size ({', '.join(str(s[:3]) for s in sorted(shapes))}); "
            "compare models of one base, which share fps, frame count and size"
        )
    frames, height, width, _ = clips[0].shape
    return frames, height, width


def _upscale(clip: np.ndarray, scale: int) -> np.ndarray:
    return clip if scale == 1 else clip.repeat(scale, axis=-3).repeat(scale, axis=-2)


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad (F, H, W, 3) with the background colour to even H and W (H.264 yuv420p needs them)."""
    _, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    out = np.empty((frames.shape[0], h + h % 2, w + w % 2, 3), np.uint8)
    out[:] = BACKGROUND
    out[:, :h, :w] = frames
    return out


def side_by_side(clips: list[np.ndarray], labels: list[str], scale: int = 1, strip: int = 22) -> np.ndarray:
    """One video of the clips next to each other, frame-synchronized, each under its label (a label too long
    for its clip's width is drawn smaller or on two lines, never cut).

    All clips must have the same frame count and size (models of one base share them)."""
    if len(labels) != len(clips):
        raise ValueError(f"{len(clips)} clips but {len(labels)} labels; give one label per clip")
    frames, height, width = _check_same_shape(clips)
    h, w = height * scale, width * scale
    top = strip_height(labels, w, strip)  # taller than `strip` when a label needs a second line
    out = np.empty((frames, top + h, len(clips) * w + (len(clips) - 1) * GAP, 3), np.uint8)
    out[:] = BACKGROUND
    for i, (clip, label) in enumerate(zip(clips, labels)):
        x = i * (w + GAP)
        out[:, :top, x : x + w] = label_strip(label, w, top, line=strip)
        out[:, top:, x : x + w] = _upscale(clip, scale)
    return _even(out)


def _grid_layout(
    rows: list[list[np.ndarray]], row_labels: list[str], col_labels: list[str] | None, scale: int, strip: int
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """An empty canvas (F, H, W, 3) with the labels drawn, and where each cell goes (row, col, y, x). Row
    labels read bottom-up in a column as wide as the longest one needs (wrapped to fit the row's height)."""
    if len(row_labels) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(row_labels)} row labels; give one label per row")
    cols = max((len(r) for r in rows), default=0)
    clips = [c for r in rows for c in r]
    frames, height, width = _check_same_shape(clips)
    h, w = height * scale, width * scale
    top = strip_height(col_labels[:cols], w, strip) if col_labels else 0
    side_strip = strip_height(row_labels, h, strip)
    label_width = side_strip + GAP
    canvas = np.empty((frames, top + len(rows) * (h + GAP) - GAP, label_width + cols * (w + GAP), 3), np.uint8)
    canvas[:] = BACKGROUND
    if col_labels:
        for j, text in enumerate(col_labels[:cols]):
            x = label_width + j * (w + GAP)
            canvas[:, :top, x : x + w] = label_strip(text, w, top, line=strip)
    cells = []
    for i, row in enumerate(rows):
        y = top + i * (h + GAP)
        side = label_strip(row_labels[i], h, side_strip, line=strip)  # drawn horizontally, turned to read bottom-up
        canvas[:, y : y + h, GAP // 2 : GAP // 2 + side_strip] = np.rot90(side, 1)
        cells += [(i, j, y, label_width + j * (w + GAP)) for j in range(len(row))]
    return canvas, cells


def video_grid(
    rows: list[list[np.ndarray]],
    row_labels: list[str],
    col_labels: list[str] | None = None,
    scale: int = 1,
    strip: int = 22,
) -> np.ndarray:
    """One video with a row per model and a column per seed, all frames in step; labels on the left
    (rows) and on top (columns)."""
    canvas, cells = _grid_layout(rows, row_labels, col_labels, scale, strip)
    height, width = rows[0][0].shape[1] * scale, rows[0][0].shape[2] * scale
    for i, j, y, x in cells:
        canvas[:, y : y + height, x : x + width] = _upscale(rows[i][j], scale)
    return _even(canvas)


def still_grid(
    rows: list[list[np.ndarray]],
    row_labels: list[str],
    col_labels: list[str] | None = None,
    frame_indices: list[int] | None = None,
    scale: int = 1,
    strip: int = 22,
) -> np.ndarray:
    """An image (H, W, 3): for every clip, a few frames in a row (default first, middle and last), so a
    grid of stills shows both what each sample is and how it moves."""
    frames = rows[0][0].shape[0] if rows and rows[0] else 0
    picks = frame_indices if frame_indices is not None else sorted({0, frames // 2, max(frames - 1, 0)})
    if any(not 0 <= k < frames for k in picks):
        raise ValueError(f"frame indices {picks} are outside the clips' {frames} frames")
    film = [[np.concatenate([c[k] for k in picks], axis=1)[None] for c in row] for row in rows]
    grid = video_grid(film, row_labels, col_labels, scale=scale, strip=strip)
    return grid[0]


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 image as PNG, atomically."""
    from PIL import Image  # Pillow: only when frames are drawn

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def clip_fps(path: str | Path) -> float:
    """The frame rate recorded in a video file (to compose clips read back from disk at their own fps)."""
    import imageio_ffmpeg  # its ffmpeg binary: only when a video is read

    reader = imageio_ffmpeg.read_frames(str(path), input_params=list(READ_LOCAL_ONLY))
    try:
        return float(next(reader)["fps"])
    finally:
        reader.close()
