"""The built-in "shapes" world: a procedural text-to-video data set with known, countable factors.

Every clip is one object (shape, colour) moving in one direction over a background. Those four
discrete factors have uneven, known frequencies; position, size and speed are continuous and always
free. A caption names some of the discrete factors:

- detailed: all four are named, so p_real(clip | caption) is narrow (the DFD paper's regime);
- underspecified: some are left out, so the caption has several modes whose frequencies are the
  known marginals of the left-out factors (this is what lets mode collapse be measured exactly).

The world is a real data source for distillation (`sample_clips` draws from p_real(. | caption)) and
can export itself as a folder of mp4 files with captions, in the format users give their own data.
"""

from __future__ import annotations

import itertools
import json
import math
import zlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

NUM_FRAMES = 17
HEIGHT = 64
WIDTH = 64
FPS = 8

# Factor values with their frequencies (uneven on purpose: collapse onto the common mode shows).
# The fourth shape is a diamond, not a cross: the tiny teacher cannot draw a cross's four concave corners
# with its 16-pixel tokens and linear 8x8-pixel latent cells (600 steps on crosses alone left blobs, where
# a diamond is learned in the same 600 steps: docs/results.md).
SHAPES = {"circle": 0.4, "square": 0.3, "triangle": 0.2, "diamond": 0.1}
COLOURS = {"red": 0.35, "blue": 0.25, "green": 0.2, "yellow": 0.12, "purple": 0.08}
MOTIONS = {"left": 0.4, "right": 0.25, "up": 0.2, "down": 0.15}
BACKGROUNDS = {"dark": 0.5, "gray": 0.25, "sand": 0.15, "teal": 0.1}
FACTORS = {"shape": SHAPES, "colour": COLOURS, "motion": MOTIONS, "background": BACKGROUNDS}
FACTOR_NAMES = tuple(FACTORS)

# Moderately saturated RGB (0-255): real clips are not at full saturation, so a student that
# over-saturates (a known DMD2 failure) is measurably off.
COLOUR_RGB = {
    "red": (205, 60, 55),
    "blue": (60, 90, 200),
    "green": (70, 170, 80),
    "yellow": (215, 190, 70),
    "purple": (150, 75, 175),
}
BACKGROUND_RGB = {"dark": (28, 30, 36), "gray": (118, 118, 122), "sand": (196, 182, 150), "teal": (40, 96, 104)}
MOTION_VECTORS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}

# How training captions are drawn for one clip: detailed, partial (1-3 factors named), or empty
# (the unconditional branch classifier-free guidance needs).
CAPTION_LEVELS = {"detailed": 0.5, "partial": 0.4, "empty": 0.1}

# The continuous factors' ranges (pixels, pixels per frame), drawn uniformly. Objects span 26-36 px:
# at radius 8-13 the tiny teacher draws every shape as the same blob (a shape is decided at high noise,
# where a small object's few corner pixels are too faint to learn; docs/results.md).
RADIUS_RANGE = (13.0, 18.0)
SPEED_RANGE = (0.6, 1.1)  # slow enough that a big object's whole path stays in frame

# How a clip's start is drawn. "edge": anywhere the whole path stays in the picture, so a frame near an edge
# rules out the motions towards it (every text-to-video clip). "centre": in the box that every motion allows
# at speeds up to CENTRE_SPEED_RANGE's top (travel 16 x 0.8 = 12.8 px), so the frame leaves all four motions
# open. The centre speeds stay inside SPEED_RANGE, so no model is asked for a speed it never saw.
START_LAWS = ("edge", "centre")
CENTRE_SPEED_RANGE = (0.6, 0.8)
# The laws of image-to-video first frames: a mixture of start laws. "edge" is every frame of the world;
# "mixed" draws half the frames from the centre box, so some frames rule motions out and others leave all open.
FRAME_LAWS = {"edge": {"edge": 1.0}, "mixed": {"edge": 0.5, "centre": 0.5}}


def frame_law_of(record: dict) -> str | None:
    """The frame law a model's record (its dfd_studio.json) says its image-to-video clips start from: "edge"
    when it names none (every such model made before the centre law), None when the record is not of a model
    of this world trained for image-to-video. A law this world does not have is a ValueError."""
    if record.get("world") != "shapes" or record.get("task") != "i2v":
        return None
    frames = record.get("i2v_frames", "edge")
    if frames not in FRAME_LAWS:
        raise ValueError(
            f"the record names the frame law {frames!r}, which this world does not have ({list(FRAME_LAWS)}): "
            "the model was made by a newer version"
        )
    return frames


def continuous_ranges() -> dict[str, list[float]]:
    """The ranges of the continuous factors, recorded beside every model trained on the world."""
    return {"radius": list(RADIUS_RANGE), "speed": list(SPEED_RANGE)}


@dataclass(frozen=True)
class ClipFactors:
    """Everything that determines one clip: four discrete factors and the continuous ones."""

    shape: str
    colour: str
    motion: str
    background: str
    radius: float  # pixels
    speed: float  # pixels per frame
    x0: float  # start centre, pixels
    y0: float
    shade: float  # small brightness jitter of the object, multiplicative

    def discrete(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FACTOR_NAMES}


def caption(named: dict[str, str]) -> str:
    """The caption that names exactly the factors in `named` ({} gives "a shape").

    The empty string is not a caption of the world: it is the unconditional prompt of CFG.
    """
    unknown = set(named) - set(FACTOR_NAMES)
    if unknown:
        raise ValueError(f"unknown factor(s) {sorted(unknown)}; factors are {list(FACTOR_NAMES)}")
    for name, value in named.items():
        if value not in FACTORS[name]:
            raise ValueError(f"unknown {name} {value!r}; choose one of {list(FACTORS[name])}")
    words = ["a"]
    if "colour" in named:
        words.append(named["colour"])
    words.append(named.get("shape", "shape"))
    if "motion" in named:
        words += ["moving", named["motion"]]
    if "background" in named:
        words += ["on", "a", named["background"], "background"]
    return " ".join(words)


def parse_caption(text: str) -> dict[str, str]:
    """The factors a caption names. Raises ValueError for text outside the world's language."""
    text = " ".join(text.strip().lower().split())
    if not text:
        return {}
    for named in all_namings():
        if caption(named) == text:
            return named
    raise ValueError(
        f"{text!r} is not a caption of the shapes world; captions look like "
        f"{caption({'colour': 'red', 'shape': 'circle', 'motion': 'left', 'background': 'dark'})!r} "
        "with any of colour, shape, motion or background left out"
    )


def all_namings():
    """Every partial assignment of factors (including the empty one), in a fixed order."""
    for k in range(len(FACTOR_NAMES) + 1):
        for subset in itertools.combinations(FACTOR_NAMES, k):
            for values in itertools.product(*(FACTORS[name] for name in subset)):
                yield dict(zip(subset, values))


def vocabulary() -> list[str]:
    """Every word a caption can contain, in a fixed order (the tokenizer is trained on these)."""
    words = ["a", "shape", "moving", "on", "background"]
    for values in FACTORS.values():
        words += list(values)
    return words


def mode_frequencies(named: dict[str, str], factor: str) -> dict[str, float]:
    """p_real(factor = v | caption) for each value v: the named value, or the marginal if left free."""
    if factor in named:
        return {v: float(v == named[factor]) for v in FACTORS[factor]}
    return dict(FACTORS[factor])


def _draw(rng: np.random.Generator, table: dict[str, float]) -> str:
    names = list(table)
    return names[rng.choice(len(names), p=np.array([table[n] for n in names]))]


def uniform_naming(rng: np.random.Generator) -> dict[str, str]:
    """Every discrete factor drawn uniformly: a detailed caption in which rare combinations are as common
    as frequent ones. p_real(clip | detailed caption) does not depend on how often the caption occurs,
    so clips drawn this way and captioned in full are still exact samples of that conditional."""
    return {f: list(FACTORS[f])[int(rng.integers(len(FACTORS[f])))] for f in FACTOR_NAMES}


def draw_factors(rng: np.random.Generator, named: dict[str, str] | None = None, start: str = "edge") -> ClipFactors:
    """One clip's factors from p_real(. | caption): named factors fixed, the rest from their marginals; the
    start and speed from the start law `start` (START_LAWS)."""
    if start not in START_LAWS:
        raise ValueError(f"unknown start law {start!r}; choose one of {list(START_LAWS)}")
    named = named or {}
    discrete = {f: named[f] if f in named else _draw(rng, FACTORS[f]) for f in FACTOR_NAMES}
    radius = float(rng.uniform(*RADIUS_RANGE))
    speed = float(rng.uniform(*(SPEED_RANGE if start == "edge" else CENTRE_SPEED_RANGE)))
    dx, dy = MOTION_VECTORS[discrete["motion"]]

    def start_at(direction: float, size: int) -> float:  # the whole path stays inside the frame
        span = _start_range(direction, size, radius, speed) if start == "edge" else centre_range(size, radius)
        return float(rng.uniform(*span))

    return ClipFactors(
        **discrete,
        radius=radius,
        speed=speed,
        x0=start_at(dx, WIDTH),
        y0=start_at(dy, HEIGHT),
        shade=float(rng.uniform(0.9, 1.1)),
    )


def draw_start_law(rng: np.random.Generator, frames: str) -> str:
    """A start law drawn from the frame law `frames` (FRAME_LAWS); "edge" spends no random draw, so runs of
    the world's own law repeat exactly."""
    if frames not in FRAME_LAWS:
        raise ValueError(f"unknown frame law {frames!r}; choose one of {list(FRAME_LAWS)}")
    laws = FRAME_LAWS[frames]
    return next(iter(laws)) if len(laws) == 1 else _draw(rng, laws)


def _start_range(direction: float, size: int, radius: float, speed: float) -> tuple[float, float]:
    """[lo, hi] of the start coordinate along one axis: the whole path stays inside the frame."""
    travel = speed * (NUM_FRAMES - 1)
    margin = radius + 1.0
    return margin + max(0.0, -direction * travel), size - margin - max(0.0, direction * travel)


def centre_range(size: int, radius: float) -> tuple[float, float]:
    """[lo, hi] of a centre-law start along one axis: every motion at every centre speed stays in frame
    (non-empty for every radius of RADIUS_RANGE: 19 + 12.8 <= 64 - 19 - 12.8)."""
    travel = CENTRE_SPEED_RANGE[1] * (NUM_FRAMES - 1)
    return radius + 1.0 + travel, size - radius - 1.0 - travel


CONDITIONING_SEED = 7919  # offsets a prompt's conditioning clip from the draws of its real clips
FRAME_FACTORS = ("shape", "colour", "background")  # what a first frame decides; motion is left to the video


def in_frame(f: ClipFactors) -> dict[str, str]:
    """The discrete factors a clip's first frame shows (FRAME_FACTORS): fixed for an image-to-video request."""
    return {name: getattr(f, name) for name in FRAME_FACTORS}


@lru_cache(maxsize=256)
def conditioning_clip(prompt: str, frames: str = "edge") -> ClipFactors:
    """The clip whose first frame an image-to-video request of this world caption starts from, the same
    every time: the evaluation's frame for the prompt, and the studio's "frame from the world". Its start law
    comes from the frame law `frames` (FRAME_LAWS): stratified over the evaluation's prompt sets (under "mixed",
    the prompts at even places of each set start in the centre box, the others by the edge law, so each law
    has its half of the frames, where ten coin flips could give one two), drawn for any other prompt. The
    posterior given the frame does not depend on how the frame was chosen, only on the world's law."""
    rng = np.random.default_rng(zlib.crc32(prompt.encode()) + CONDITIONING_SEED)
    start = _stratified_law(prompt, frames) or draw_start_law(rng, frames)
    return draw_factors(rng, parse_caption(prompt), start=start)


def _stratified_law(prompt: str, frames: str) -> str | None:
    """The start law of an evaluation prompt's frame under a mixed frame law (None: draw it)."""
    if frames not in FRAME_LAWS or len(FRAME_LAWS[frames]) == 1:
        return None
    for name in ("detailed", "underspecified"):
        prompts = prompt_set(name)
        if prompt in prompts:
            return "centre" if prompts.index(prompt) % 2 == 0 else "edge"
    return None


def _coverage(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape of size r centred at the origin (signed distance)."""
    if shape == "circle":
        dist = np.sqrt(dx**2 + dy**2) - r
    elif shape == "square":
        half = r * 0.85
        dist = np.maximum(np.abs(dx), np.abs(dy)) - half
    elif shape == "triangle":
        # Upward equilateral triangle with circumradius ~1.2 r (same visual mass as the circle).
        rr = r * 1.2
        k = math.sqrt(3.0)
        px, py = np.abs(dx), -dy + rr * 0.25
        # Distance to the three edges of an upward equilateral triangle.
        e1 = -py - rr * 0.5
        e2 = (k * px + py) / 2.0 - rr * 0.5
        dist = np.maximum(e1, e2)
    elif shape == "diamond":
        # A square turned 45 degrees (an L1 ball) of about the circle's area: 2 (1.25 r)^2 ~ pi r^2.
        dist = (np.abs(dx) + np.abs(dy) - r * 1.25) / math.sqrt(2.0)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.clip(0.5 - dist, 0.0, 1.0)


def render(f: ClipFactors) -> np.ndarray:
    """The clip as uint8 frames, shape (NUM_FRAMES, HEIGHT, WIDTH, 3)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32) + 0.5
    bg = np.array(BACKGROUND_RGB[f.background], np.float32)
    fg = np.clip(np.array(COLOUR_RGB[f.colour], np.float32) * f.shade, 0, 255)
    dx, dy = MOTION_VECTORS[f.motion]
    frames = np.empty((NUM_FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    for i in range(NUM_FRAMES):
        cx = f.x0 + dx * f.speed * i
        cy = f.y0 + dy * f.speed * i
        alpha = _coverage(f.shape, xs - cx, ys - cy, f.radius)[..., None]
        frames[i] = np.round(bg * (1 - alpha) + fg * alpha).astype(np.uint8)
    return frames


def sample_clips(named: dict[str, str], n: int, seed: int) -> tuple[np.ndarray, list[ClipFactors]]:
    """n clips drawn from p_real(. | caption(named)), deterministic in `seed`.

    Returns uint8 frames (n, NUM_FRAMES, HEIGHT, WIDTH, 3) and each clip's factors.
    """
    rng = np.random.default_rng(seed)
    factors = [draw_factors(rng, named) for _ in range(n)]
    return np.stack([render(f) for f in factors]), factors


# The exact image-to-video posterior lives beside the world (posterior.py); its names are the world's.
from .posterior import continuations, expected_motions, motion_posterior  # noqa: E402, F401


def training_caption(rng: np.random.Generator, f: ClipFactors) -> str:
    """The clip's training caption at a random level of detail (see CAPTION_LEVELS); "" is unconditional."""
    level = _draw(rng, CAPTION_LEVELS)
    if level == "detailed":
        return caption(f.discrete())
    if level == "empty":
        return ""
    k = int(rng.integers(0, len(FACTOR_NAMES)))  # 0 to 3 factors named; 0 gives "a shape"
    keep = rng.choice(len(FACTOR_NAMES), size=k, replace=False)
    return caption({FACTOR_NAMES[i]: getattr(f, FACTOR_NAMES[i]) for i in sorted(keep)})


# Prompt sets used for evaluation. Detailed prompts cover every shape and colour and mix the rest;
# underspecified prompts leave out factors with known mode frequencies.
def prompt_set(name: str) -> list[str]:
    """A named, fixed list of prompts: 'detailed', 'underspecified' or 'all'."""
    if name == "detailed":
        shapes, colours, motions, backgrounds = (list(FACTORS[f]) for f in FACTOR_NAMES)
        return [
            caption(
                {
                    "shape": shapes[j % 4],
                    "colour": colours[j % 5],
                    "motion": motions[(j + j // 4) % 4],
                    "background": backgrounds[(j // 2 + j // 5) % 4],
                }
            )
            for j in range(10)  # 10 prompts; every value of every factor appears
        ]
    if name == "underspecified":
        return [
            caption({}),
            caption({"colour": "red"}),
            caption({"colour": "blue"}),
            caption({"shape": "circle"}),
            caption({"shape": "triangle"}),
            caption({"motion": "left"}),
            caption({"motion": "up"}),
            caption({"background": "dark"}),
            caption({"colour": "green", "shape": "square"}),
            caption({"shape": "diamond", "motion": "right"}),
        ]
    if name == "all":
        return prompt_set("detailed") + prompt_set("underspecified")
    raise ValueError(f"unknown prompt set {name!r}; choose 'detailed', 'underspecified' or 'all'")


def export_folder(out: str | Path, n: int, seed: int = 0, detailed_only: bool = False, progress=None) -> Path:
    """Write n clips as mp4 files with a sidecar .txt caption each, plus captions.jsonl and factors.

    The folder is the same format users give their own data in (see engine/distill/data.py).
    """
    from ..media.video import write_mp4  # local import: writing video needs ffmpeg, the world itself does not

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        f = draw_factors(rng)
        text = caption(f.discrete()) if detailed_only else (training_caption(rng, f) or caption({}))
        name = f"clip_{i:05d}"
        write_mp4(out / f"{name}.mp4", render(f), fps=FPS)
        (out / f"{name}.txt").write_text(text + "\n")
        lines.append(json.dumps({"file": f"{name}.mp4", "caption": text, "factors": asdict(f)}))
        if progress is not None:
            progress(i + 1)
    (out / "captions.jsonl").write_text("\n".join(lines) + "\n")
    return out
