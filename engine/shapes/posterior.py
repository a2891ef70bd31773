"""p_real(motion | first frame) of the shapes world, exact over a frame law's mixture of start laws, and the
real continuations of a frame drawn from it: the truth every image-to-video model is measured against.

Given the first frame, motion and speed are the only free factors, but the frame is not independent of them.
Under the edge law (world.START_LAWS) a start is drawn so that the whole path stays in frame: an object near
the left edge cannot be moving left, and a direction that leaves less room makes every start it allows more
likely. Under the centre law the start is uniform in a box every motion allows, whatever the motion and
speed, so such a frame says nothing about the motion. Both are uniform starts, so Bayes stays exact:

    p(m | x0, y0) ∝ p(m) * sum over laws L of w_L * integral over speed of p_L(speed) * p_L(x0, y0 | m, speed)

with w_L the frame law's weights (world.FRAME_LAWS).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from . import world


def motion_posterior(
    f: world.ClipFactors, grid: int = 257, frames: str = "edge"
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """p_real(motion | first frame) for a clip's first frame (its start, size and the other factors) under the
    frame law `frames`, and for each motion the weights of the speeds on an even grid over SPEED_RANGE
    (p(speed | motion, frame))."""
    if frames not in world.FRAME_LAWS:
        raise ValueError(f"unknown frame law {frames!r}; choose one of {list(world.FRAME_LAWS)}")
    laws = world.FRAME_LAWS[frames]
    lo, hi = world.SPEED_RANGE
    speeds = np.linspace(lo, hi, grid)
    centre_speeds = (speeds >= world.CENTRE_SPEED_RANGE[0] - 1e-9) & (speeds <= world.CENTRE_SPEED_RANGE[1] + 1e-9)
    (cxlo, cxhi), (cylo, cyhi) = world.centre_range(world.WIDTH, f.radius), world.centre_range(world.HEIGHT, f.radius)
    in_centre = cxlo <= f.x0 <= cxhi and cylo <= f.y0 <= cyhi
    centre_density = 1.0 / ((cxhi - cxlo) * (cyhi - cylo)) if in_centre else 0.0
    joint, by_speed = {}, {}
    w_edge, w_centre = laws.get("edge", 0.0), laws.get("centre", 0.0)
    for motion, prior in world.MOTIONS.items():
        dx, dy = world.MOTION_VECTORS[motion]
        like = np.zeros(grid)  # p(x0, y0 | motion, speed) under the edge law, on the speed grid
        for i, s in enumerate(speeds):
            (xlo, xhi) = world._start_range(dx, world.WIDTH, f.radius, s)
            (ylo, yhi) = world._start_range(dy, world.HEIGHT, f.radius, s)
            if xlo <= f.x0 <= xhi and ylo <= f.y0 <= yhi:
                like[i] = 1.0 / ((xhi - xlo) * (yhi - ylo))
        # Speed is uniform under each law, so the edge law's integral over speed is the grid's mean; the centre
        # law's start density does not depend on motion or speed.
        joint[motion] = prior * (w_edge * float(like.mean()) + w_centre * centre_density)
        if not w_centre:
            by_speed[motion] = like / like.sum() if like.sum() > 0 else like
            continue
        # p(speed | motion, frame) per grid point: each law's speed density times its start density.
        density = w_edge * like / (hi - lo) + w_centre * centre_density * centre_speeds / (
            world.CENTRE_SPEED_RANGE[1] - world.CENTRE_SPEED_RANGE[0]
        )
        by_speed[motion] = density / density.sum() if density.sum() > 0 else density
    total = sum(joint.values())
    if total <= 0:
        raise ValueError(f"no motion of the world starts at ({f.x0:.1f}, {f.y0:.1f}) with radius {f.radius:.1f}")
    return {m: p / total for m, p in joint.items()}, by_speed


def expected_motions(posterior: dict[str, float], draws: int = 8) -> float:
    """The expected number of distinct motions among `draws` independent draws from p(motion | frame):
    sum over motions of 1 - (1 - p)^draws. What a model that samples the posterior exactly shows."""
    return float(sum(1.0 - (1.0 - p) ** draws for p in posterior.values()))


def continuations(
    f: world.ClipFactors,
    n: int,
    seed: int,
    named: dict[str, str] | None = None,
    frames: str = "edge",
) -> tuple[np.ndarray, list[world.ClipFactors]]:
    """n clips from p_real(. | first frame of f, caption): the same object, colour, background, size and start,
    the motion and speed drawn from motion_posterior under the frame law `frames`, or the motion the caption
    names (`named`, its factors). The real reference of image-to-video on the world."""
    posterior, by_speed = motion_posterior(f, frames=frames)
    if named and "motion" in named:
        if posterior[named["motion"]] == 0:
            raise ValueError(f"no clip starting like this one moves {named['motion']}")
        posterior = {m: float(m == named["motion"]) for m in posterior}
    rng = np.random.default_rng(seed)
    speeds = np.linspace(*world.SPEED_RANGE, len(next(iter(by_speed.values()))))
    out = []
    for _ in range(n):
        motion = world._draw(rng, posterior)
        speed = float(speeds[rng.choice(len(speeds), p=by_speed[motion])])
        out.append(world.ClipFactors(**{**asdict(f), "motion": motion, "speed": speed}))
    return np.stack([world.render(c) for c in out]), out
