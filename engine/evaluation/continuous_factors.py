"""The continuous factors of shapes-world clips read from their pixels, and how a model's clips spread over
them against real clips' (docs/evaluation.md, "Continuous factors").

The world draws each clip's start position, size, speed and shade uniformly (world.draw_factors), and the
paper's diversity gain on detailed prompts is over such factors (where things are, how big, how fast); the
recognizer reads only the four discrete ones. This reader shares nothing with the recognizer. Per frame it
takes the object's mask (pixels far from the background colour, object_mask), and reads:

- position (x0, y0): the mask's centroid track fitted by a straight line over the frames where an object is
  found; the line at frame 0 is the start, in pixels. The world's objects move in a straight line at
  constant speed, so the fit averages out per-frame noise;
- speed: the fitted line's slope, pixels per frame (a clip that wanders is read at its net speed, which is
  what "slow motion" means to a viewer);
- size: the radius of the circle with the mask's median area, pixels. It needs no shape: a square of the
  world's radius r covers more than its circle, so size is compared between clips read the same way;
- shade: the object's interior colour (the mask eroded by 2 px, no edge blend) projected on the nearest
  colour of the world's palette by angle, as a multiple of it (the world's shade jitter is 0.9-1.1).

Beside the factors, how the object moves (MOTION): path_speed, the centroid's mean step per frame (the
gross speed, wobble and turning back included), and straightness, the fitted net speed over path_speed (1 for
the world's straight lines, near 0 for an object that wobbles in place or goes back and forth). A clip that
reads slow is still when its path_speed is slow too, and wanders when only its net speed is.

A model's clips for one prompt are compared with real clips of the same prompt: the spread (sample std)
of each factor, and the 1-D Wasserstein distance between the two samples of it.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ..shapes import world

FACTORS = ("x0", "y0", "size", "speed", "shade")
UNITS = {"x0": "px", "y0": "px", "size": "px", "speed": "px/frame", "shade": "x colour"}
MOTION = ("path_speed", "straightness")
MIN_FRAMES = 3  # frames with an object below which a clip is unread (no track to fit)
MIN_PIXELS = 20  # a mask smaller than this is noise, not the object (the world's smallest covers ~500)
ERODE = 2  # pixels taken off the mask's edge before its colour is read
_PALETTE = np.array(list(world.COLOUR_RGB.values()), np.float32)


def object_mask(frame: np.ndarray) -> np.ndarray:
    """Pixels of a frame that are the object: farther from the background colour (the median of the border)
    than half the farthest pixel is; half-way keeps a blurred edge where the sharp one was."""
    x = frame.astype(np.float32)
    border = np.concatenate(
        [x[:3].reshape(-1, 3), x[-3:].reshape(-1, 3), x[:, :3].reshape(-1, 3), x[:, -3:].reshape(-1, 3)]
    )
    dist = np.linalg.norm(x - np.median(border, axis=0), axis=-1)
    return dist > 0.5 * max(float(np.percentile(dist, 99.5)), 1.0)


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    for _ in range(steps):
        padded = np.pad(mask, 1, constant_values=False)
        mask = (
            mask & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        )  # a pixel stays when its four neighbours are object too
    return mask


def _shade(frame: np.ndarray, mask: np.ndarray) -> float | None:
    inner = _erode(mask, ERODE)
    if inner.sum() < MIN_PIXELS // 2:
        return None
    mean = frame[inner].astype(np.float32).mean(0)
    cos = _PALETTE @ mean / (np.linalg.norm(_PALETTE, axis=1) * max(float(np.linalg.norm(mean)), 1e-6))
    colour = _PALETTE[int(np.argmax(cos))]
    return float(mean @ colour / (colour @ colour))


def read_clip(clip: np.ndarray) -> dict[str, float] | None:
    """One uint8 clip (F, H, W, 3): its x0, y0, size, speed and shade, and in how many frames an object was
    found; None when fewer than MIN_FRAMES frames show one."""
    frames, cx, cy, areas, shades = [], [], [], [], []
    for i, frame in enumerate(clip):
        mask = object_mask(frame)
        if mask.sum() < MIN_PIXELS:
            continue
        ys, xs = np.nonzero(mask)
        frames.append(i)
        cx.append(xs.mean() + 0.5)  # pixel centres: the world renders pixel (i, j) at (j + 0.5, i + 0.5)
        cy.append(ys.mean() + 0.5)
        areas.append(float(mask.sum()))
        shade = _shade(frame, mask)
        if shade is not None:
            shades.append(shade)
    if len(frames) < MIN_FRAMES:
        return None
    t, x, y = np.array(frames, np.float64), np.array(cx), np.array(cy)
    vx, x0 = np.polyfit(t, x, 1)
    vy, y0 = np.polyfit(t, y, 1)
    speed = float(np.hypot(vx, vy))
    path_speed = float(np.hypot(np.diff(x), np.diff(y)).sum() / (t[-1] - t[0]))  # frames without an object skipped
    return {
        "x0": float(x0),
        "y0": float(y0),
        "size": float(np.sqrt(np.median(areas) / np.pi)),
        "speed": speed,
        "shade": float(np.median(shades)) if shades else float("nan"),
        "path_speed": path_speed,
        "straightness": speed / path_speed if path_speed > 1e-6 else float("nan"),
        "frames": len(frames),
    }


def read_clips(clips: np.ndarray) -> list[dict[str, float] | None]:
    """read_clip of each clip of (N, F, H, W, 3)."""
    return [read_clip(c) for c in clips]


@cache
def _geometry(shape: str) -> tuple[float, float, float]:
    """A shape's mask centroid offset from its centre (x, y, per unit radius) and its area per squared radius,
    from the world's own coverage on a fine grid."""
    r, step = 16.0, 0.125
    span = np.arange(-40, 40, step, dtype=np.float64) + step / 2
    ys, xs = np.meshgrid(span, span, indexing="ij")
    inside = world._coverage(shape, xs, ys, r) > 0.5  # inside the shape's edge: signed distance below 0
    return float(xs[inside].mean() / r), float(ys[inside].mean() / r), float(inside.sum() * step * step / r**2)


def true_readings(f: world.ClipFactors) -> dict[str, float]:
    """What the reader should read of a clip the world rendered from `f`: its start centroid (the shape's centre
    moved by its centroid offset: a triangle's centroid is not its centre), the radius of the circle of its
    area, its speed and shade."""
    ox, oy, area = _geometry(f.shape)
    return {
        "x0": f.x0 + ox * f.radius,
        "y0": f.y0 + oy * f.radius,
        "size": f.radius * float(np.sqrt(area / np.pi)),
        "speed": f.speed,
        "shade": f.shade,
    }


def reading_error(readings: list[dict | None], factors: list[world.ClipFactors]) -> dict:
    """Per factor over clips with known factors: mean absolute error, 95th percentile of the absolute error
    and mean signed error (bias); and the share of clips the reader could not read."""
    pairs = [(r, true_readings(f)) for r, f in zip(readings, factors) if r is not None]
    out = {"clips": len(readings), "unread": round(1 - len(pairs) / max(len(readings), 1), 4)}
    for name in FACTORS:
        err = np.array([r[name] - t[name] for r, t in pairs if np.isfinite(r[name])])
        out[name] = {
            "mae": round(float(np.abs(err).mean()), 4) if len(err) else None,
            "p95": round(float(np.percentile(np.abs(err), 95)), 4) if len(err) else None,
            "bias": round(float(err.mean()), 4) if len(err) else None,
        }
    return out


def wasserstein(a, b) -> float:
    """1-D Wasserstein-1 distance between two samples: the area between their quantile functions."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    if not len(a) or not len(b):
        return float("nan")
    u = np.union1d(np.arange(1, len(a) + 1) / len(a), np.arange(1, len(b) + 1) / len(b))
    lo = np.concatenate([[0.0], u[:-1]])
    mid = (lo + u) / 2
    qa = a[np.minimum((mid * len(a)).astype(int), len(a) - 1)]
    qb = b[np.minimum((mid * len(b)).astype(int), len(b) - 1)]
    return float(((u - lo) * np.abs(qa - qb)).sum())


def _values(readings: list[dict | None], name: str) -> np.ndarray:
    return np.array([r[name] for r in readings if r is not None and np.isfinite(r[name])], np.float64)


def compare(model: list[dict | None], real: list[dict | None]) -> dict:
    """One prompt: per factor the model's and the real clips' mean and spread (sample std), the spread ratio
    and the Wasserstein distance between them; and the share of the model's clips left unread."""
    out = {"clips": len(model), "unread": round(sum(r is None for r in model) / max(len(model), 1), 4)}
    for name in FACTORS:
        m, r = _values(model, name), _values(real, name)
        spread_m = float(m.std(ddof=1)) if len(m) > 1 else float("nan")
        spread_r = float(r.std(ddof=1)) if len(r) > 1 else float("nan")
        out[name] = {
            "mean": float(m.mean()) if len(m) else float("nan"),
            "real_mean": float(r.mean()) if len(r) else float("nan"),
            "spread": spread_m,
            "real_spread": spread_r,
            "spread_ratio": spread_m / spread_r if spread_r > 1e-6 else float("nan"),
            "w1": wasserstein(m, r),
        }
    return out


def summarize(rows: list[dict]) -> dict:
    """A caption regime's figures: the mean over its prompts of each per-prompt figure (NaN left out)."""
    out = {"prompts": len(rows), "unread": _mean(r["unread"] for r in rows)}
    for name in FACTORS:
        out[name] = {k: _mean(r[name][k] for r in rows) for k in next(iter(rows))[name]} if rows else {}
    return out


def _mean(values) -> float | None:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return round(float(np.mean(v)), 4) if v else None
