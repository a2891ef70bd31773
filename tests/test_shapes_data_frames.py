"""The built-in world's real clips for distillation (engine/distill/data.py ShapesData) start as the base's record
says its teacher was trained: an image-to-video base of the mixed frame law gets about half its clips from the
centre box every motion allows; every other base gets exactly the clips of the world's own law."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.distill.data import ShapesData
from engine.shapes import world

POOL = 256


@pytest.fixture(scope="module")
def model():
    from engine.models.base import load_base_model

    return load_base_model("shapes-tiny", device="cpu", dtype=torch.float32)


def _in_centre_box(f: world.ClipFactors) -> bool:
    (x_lo, x_hi), (y_lo, y_hi) = world.centre_range(world.WIDTH, f.radius), world.centre_range(world.HEIGHT, f.radius)
    return x_lo <= f.x0 <= x_hi and y_lo <= f.y0 <= y_hi and f.speed <= world.CENTRE_SPEED_RANGE[1]


def _centre_share(data: ShapesData) -> float:
    return float(np.mean([_in_centre_box(f) for f in data.pool_factors]))


def test_a_mixed_law_base_draws_half_its_real_clips_from_the_centre_box(model, monkeypatch):
    edge = ShapesData(model, regime="underspecified", seed=0, pool_size=POOL)
    monkeypatch.setattr(model, "meta", {**model.meta, "task": "i2v", "i2v_frames": "mixed"})
    mixed = ShapesData(model, regime="underspecified", seed=0, pool_size=POOL)
    assert mixed.frames == "mixed" and edge.frames == "edge"
    # half drawn by the centre law (all in the box) and half by the edge law (in it as often as the edge pool):
    # the expected share is 0.5 + 0.5 * edge share, within 4 binomial standard deviations
    expected = 0.5 + 0.5 * _centre_share(edge)
    assert abs(_centre_share(mixed) - expected) <= 4 * np.sqrt(0.25 / POOL), (_centre_share(mixed), expected)
    assert not torch.equal(mixed.pool, edge.pool)


def test_the_world_law_pool_is_the_worlds_own_draw(model):
    data = ShapesData(model, regime="detailed", seed=3, pool_size=64)
    rng = np.random.default_rng(3 + 1)  # the pool's stream, drawn as the world's own law draws it
    captions = rng.integers(0, len(data.namings), size=64)
    assert np.array_equal(captions, data.pool_caption)
    assert [world.draw_factors(rng, data.namings[i]) for i in captions] == data.pool_factors
