"""Image-to-video frames that leave motions open: the centre start law, the motion posterior exact over the
frame law's mixture (checked against the world's own sampler), and a frame-replacement teacher that keeps
the given frame by construction."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.shapes import world

ASSETS = Path(__file__).resolve().parents[1] / "engine" / "assets"


def _mixed_draws(n: int, seed: int) -> list[world.ClipFactors]:
    rng = np.random.default_rng(seed)
    return [world.draw_factors(rng, start=world.draw_start_law(rng, "mixed")) for _ in range(n)]


def test_every_centre_start_keeps_every_motion_in_the_picture_and_its_speed_in_the_worlds_range():
    rng = np.random.default_rng(0)
    for _ in range(400):
        f = world.draw_factors(rng, start="centre")
        assert world.CENTRE_SPEED_RANGE[0] <= f.speed <= world.CENTRE_SPEED_RANGE[1]
        assert world.SPEED_RANGE[0] <= f.speed <= world.SPEED_RANGE[1]
        for motion in world.MOTIONS:  # the frame is one every motion could continue from, at any centre speed
            dx, dy = world.MOTION_VECTORS[motion]
            travel = world.CENTRE_SPEED_RANGE[1] * (world.NUM_FRAMES - 1)
            for x, y in ((f.x0, f.y0), (f.x0 + dx * travel, f.y0 + dy * travel)):
                assert f.radius + 1 <= x <= world.WIDTH - f.radius - 1
                assert f.radius + 1 <= y <= world.HEIGHT - f.radius - 1
    lo, hi = world.centre_range(world.WIDTH, world.RADIUS_RANGE[1])
    assert lo <= hi  # the box is non-empty for the largest object
    with pytest.raises(ValueError, match="unknown start law 'middle'"):
        world.draw_factors(rng, start="middle")
    with pytest.raises(ValueError, match="unknown frame law 'half'"):
        world.draw_start_law(rng, "half")
    # a model's record says its law; older image-to-video records name none (the world's own), others have none
    assert world.frame_law_of({"world": "shapes", "task": "i2v", "i2v_frames": "mixed"}) == "mixed"
    assert world.frame_law_of({"world": "shapes", "task": "i2v"}) == "edge"
    assert world.frame_law_of({"world": "shapes", "task": "t2v"}) is None and world.frame_law_of({}) is None
    with pytest.raises(ValueError, match="frame law 'half'.*newer version"):
        world.frame_law_of({"world": "shapes", "task": "i2v", "i2v_frames": "half"})


def test_the_edge_law_spends_no_draw_so_the_worlds_frames_are_unchanged():
    rng = np.random.default_rng(5)
    assert world.draw_start_law(rng, "edge") == "edge"
    assert rng.random() == np.random.default_rng(5).random()
    for prompt in world.prompt_set("all"):  # the evaluation's frames of every base before the centre law
        seed = zlib.crc32(prompt.encode()) + world.CONDITIONING_SEED
        assert world.conditioning_clip(prompt) == world.sample_clips(world.parse_caption(prompt), 1, seed)[1][0]


def test_the_mixed_posterior_is_calibrated_against_the_worlds_own_sampler():
    # Monte Carlo of the world's own draws under the mixed law: the posterior averages to the motion prior,
    # never rules out the true motion, and among frames given ~q to "left", about q of them move left.
    draws = _mixed_draws(3000, seed=11)
    posteriors = [world.motion_posterior(f, grid=65, frames="mixed")[0] for f in draws]
    for motion, p in world.MOTIONS.items():
        assert abs(np.mean([q[motion] for q in posteriors]) - p) < 0.02, motion
        assert all(q[motion] > 0 for q, f in zip(posteriors, draws) if f.motion == motion)
    for lo, hi in ((0.3, 0.5), (0.5, 0.7)):
        chosen = [(q["left"], f.motion == "left") for q, f in zip(posteriors, draws) if lo <= q["left"] < hi]
        assert len(chosen) > 150
        assert abs(np.mean([c[1] for c in chosen]) - np.mean([c[0] for c in chosen])) < 0.08, (lo, hi)


def test_the_mixed_posterior_is_exact_on_a_frame_only_the_centre_law_or_only_the_edge_law_allows():
    # Far right of the box of a small object: outside the centre box, so the mixture is the edge law's.
    outside = world.ClipFactors("circle", "red", "left", "dark", radius=13.0, speed=0.7, x0=48.0, y0=32.0, shade=1.0)
    assert world.motion_posterior(outside, frames="mixed")[0] == world.motion_posterior(outside)[0]
    # The largest object at the picture's centre, which both laws allow: the Bayes sum written out by hand.
    f = world.ClipFactors("circle", "red", "left", "dark", radius=18.0, speed=0.7, x0=32.0, y0=32.0, shade=1.0)
    grid = 2049
    speeds = np.linspace(*world.SPEED_RANGE, grid)
    (cx0, cx1), (cy0, cy1) = world.centre_range(64, 18.0), world.centre_range(64, 18.0)
    centre = 1.0 / ((cx1 - cx0) * (cy1 - cy0))
    joint = {}
    for motion, prior in world.MOTIONS.items():
        dx, dy = world.MOTION_VECTORS[motion]
        like = []
        for s in speeds:
            travel, margin = s * 16, 19.0
            xr = (margin + max(0, -dx * travel), 64 - margin - max(0, dx * travel))
            yr = (margin + max(0, -dy * travel), 64 - margin - max(0, dy * travel))
            inside = xr[0] <= 32 <= xr[1] and yr[0] <= 32 <= yr[1]
            like.append(1 / ((xr[1] - xr[0]) * (yr[1] - yr[0])) if inside else 0.0)
        joint[motion] = prior * (0.5 * np.mean(like) + 0.5 * centre)
    total = sum(joint.values())
    posterior = world.motion_posterior(f, grid=grid, frames="mixed")[0]
    for motion in world.MOTIONS:
        assert posterior[motion] == pytest.approx(joint[motion] / total, abs=1e-9)
    # The speeds the posterior draws for a centre frame include the centre law's.
    _, by_speed = world.motion_posterior(f, grid=65, frames="mixed")
    for weights in by_speed.values():
        assert weights.sum() == pytest.approx(1.0)


def test_expected_motions_of_the_prior_and_of_a_frame_that_allows_one():
    assert world.expected_motions(dict(world.MOTIONS), 8) == pytest.approx(
        sum(1 - (1 - p) ** 8 for p in world.MOTIONS.values())
    )
    assert 3.4 < world.expected_motions(dict(world.MOTIONS), 8) < 3.5
    assert world.expected_motions({"left": 1.0, "right": 0.0, "up": 0.0, "down": 0.0}, 8) == 1.0
    # Mixed frames leave more motions open than the world's own frames.
    rng = np.random.default_rng(3)
    edge = [world.expected_motions(world.motion_posterior(world.draw_factors(rng), grid=33)[0]) for _ in range(200)]
    mixed = [
        world.expected_motions(world.motion_posterior(f, grid=33, frames="mixed")[0]) for f in _mixed_draws(200, 3)
    ]
    assert np.mean(mixed) > np.mean(edge) + 0.3


def test_continuations_of_a_centre_frame_follow_the_mixed_posterior():
    f = world.ClipFactors("square", "blue", "up", "gray", radius=14.0, speed=0.7, x0=32.0, y0=32.0, shade=1.0)
    posterior, _ = world.motion_posterior(f, frames="mixed")
    assert all(p > 0 for p in posterior.values())
    clips, factors = world.continuations(f, 400, seed=0, frames="mixed")
    assert (clips[:, 0] == world.render(f)[0]).all()
    for motion, p in posterior.items():
        assert abs(np.mean([c.motion == motion for c in factors]) - p) < 0.07


def test_a_frame_replacement_teacher_keeps_the_given_frame_by_construction(tmp_path):
    from engine.config.fields import ConfigError
    from engine.config.sample import SampleConfig
    from engine.config.teacher import TeacherConfig
    from engine.evaluation.i2v_frames import i2v_frames_of
    from engine.generation.generate import sample_frames
    from engine.models.base import load_base_model
    from engine.pretrain.teacher import pretrain_teacher

    cfg = TeacherConfig(
        task="i2v", init="shapes-tiny", i2v_conditioning="frame", i2v_frames="mixed", steps=2, batch_size=2,
        pool_clips=4, warmup_steps=1,
    )  # fmt: skip
    meta = pretrain_teacher(cfg.validate(), tmp_path / "fr", "pretrain-teacher --i2v-conditioning frame")
    assert meta["i2v_frames"] == "mixed" and meta["i2v_conditioning"] == "frame" and meta["task"] == "i2v"
    assert json.loads((tmp_path / "fr" / "model_index.json").read_text())["expand_timesteps"] is True
    assert i2v_frames_of(str(tmp_path / "fr")) == "mixed" and i2v_frames_of("shapes-tiny") is None
    assert i2v_frames_of("shapes-tiny-i2v") == "edge"
    teacher = load_base_model(str(tmp_path / "fr"), device="cpu")
    assert teacher.frame_replacement and teacher.transformer.config.in_channels == 16  # no new input channels
    first = world.render(world.conditioning_clip("a red shape", "mixed"))[0]
    frames, _ = sample_frames(
        teacher, SampleConfig(prompt="a red shape", steps=3, guidance=3.0, seeds=[0, 1]).validate(), first_frame=first
    )
    with torch.no_grad():  # the first frame is the given one through the autoencoder, whatever the weights
        given = teacher.condition_latents(first[None]).clean[:, :, :1]
        expected = teacher.decode(given.to(teacher.dtype))[0, 0]
    assert (frames[:, 0] == expected).all()
    with pytest.raises(ConfigError, match="image-to-video settings: give task i2v"):
        TeacherConfig(i2v_frames="mixed").validate()
    with pytest.raises(ConfigError, match="takes its first frame by condition channels"):
        channels = str(ASSETS / "shapes-tiny-i2v")
        cfg = TeacherConfig(task="i2v", init=channels, i2v_conditioning="frame", steps=1, batch_size=2, pool_clips=4)
        pretrain_teacher(cfg.validate(), tmp_path / "bad", "pretrain-teacher")


def test_the_evaluations_mixed_frames_are_stratified_half_and_half_over_each_prompt_set():
    for name in ("detailed", "underspecified"):
        prompts = world.prompt_set(name)
        centre = [p for p in prompts if world._stratified_law(p, "mixed") == "centre"]
        assert len(centre) == len(prompts) // 2
        for p in prompts:  # a centre frame is in the box; an edge one is exactly the world's own frame
            f = world.conditioning_clip(p, "mixed")
            (lo, hi) = world.centre_range(world.WIDTH, f.radius)
            if p in centre:
                assert lo <= f.x0 <= hi and lo <= f.y0 <= hi
            else:
                assert f == world.conditioning_clip(p)
    # Outside the sets (the studio's own prompts) the law is drawn, the same every time.
    assert world._stratified_law("a red circle", "mixed") is None
    assert world.conditioning_clip("a red circle", "mixed") == world.conditioning_clip("a red circle", "mixed")
