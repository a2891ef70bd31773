"""The reader of the shapes world's continuous factors (engine/evaluation/continuous_factors.py) on clips whose
factors are known, and its distances."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from engine.evaluation import continuous_factors as cf
from engine.evaluation import continuous_report
from engine.shapes import world

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def known():
    rng = np.random.default_rng(11)
    factors = [world.draw_factors(rng, world.uniform_naming(rng)) for _ in range(24)]
    return np.stack([world.render(f) for f in factors]), factors


def test_the_reader_reads_rendered_clips_within_a_fraction_of_a_pixel(known):
    clips, factors = known
    error = cf.reading_error(cf.read_clips(clips), factors)
    assert error["unread"] == 0.0 and error["clips"] == 24
    assert error["x0"]["mae"] < 0.2 and error["y0"]["mae"] < 0.2 and error["size"]["mae"] < 0.15
    assert error["speed"]["mae"] < 0.03 and error["shade"]["mae"] < 0.005
    assert abs(error["speed"]["bias"]) < 0.01  # no slow or fast reading built in


def test_every_shape_is_sized_and_placed_by_its_own_geometry(known):
    _, factors = known
    for shape in world.SHAPES:
        f = replace(factors[0], shape=shape, speed=0.8)
        read, truth = cf.read_clip(world.render(f)), cf.true_readings(f)
        assert read["size"] == pytest.approx(truth["size"], abs=0.2)
        assert read["y0"] == pytest.approx(truth["y0"], abs=0.3)
    ox, oy, area = cf._geometry("circle")
    assert (ox, oy) == pytest.approx((0.0, 0.0), abs=1e-3) and area == pytest.approx(np.pi, rel=1e-3)
    assert cf._geometry("triangle")[1] > 0.2  # an upward triangle's centroid lies below its centre (y down)


def test_a_slower_clip_reads_slower_and_a_still_one_reads_still(known):
    _, factors = known
    f = replace(factors[1], motion="right", speed=0.6, x0=20.0)
    slow, fast = cf.read_clip(world.render(f)), cf.read_clip(world.render(replace(f, speed=1.0)))
    assert slow["speed"] == pytest.approx(0.6, abs=0.03) and fast["speed"] == pytest.approx(1.0, abs=0.03)
    still = np.repeat(world.render(f)[:1], world.NUM_FRAMES, axis=0)
    assert cf.read_clip(still)["speed"] < 1e-6 and cf.read_clip(still)["path_speed"] < 1e-6


def test_a_clip_that_goes_back_and_forth_reads_slow_net_but_not_still(known):
    """How a slow reading moves: the world's straight lines read nearly straight (the centroid's sub-pixel
    jitter lengthens the path a little, an object leaving the picture shortens it); the same object going right
    for half the clip and back reads near 0 net speed but its full path speed, so it is not still."""
    clips, factors = known
    for read, f in zip(cf.read_clips(clips), factors, strict=True):
        assert abs(read["path_speed"] - read["speed"]) < 0.12 and read["straightness"] > 0.85, f
    f = replace(factors[1], motion="right", speed=1.0, x0=20.0)
    clip = world.render(f)
    half = world.NUM_FRAMES // 2
    back = np.concatenate([clip[: half + 1], clip[half - 1 :: -1]])[: world.NUM_FRAMES]
    read = cf.read_clip(back)
    assert read["speed"] < 0.2 and read["path_speed"] == pytest.approx(1.0, abs=0.05)
    assert read["straightness"] < 0.2
    motion = continuous_report.motion_summary({"a red circle moving right": [read, None], "a red circle": [read]})
    assert motion["motion named"]["clips"] == 1 and motion["motion free"]["still"] == 0.0


def test_a_clip_without_an_object_is_unread_and_counted(known):
    clips, factors = known
    empty = np.full_like(clips[0], 40)
    assert cf.read_clip(empty) is None
    error = cf.reading_error([None, *cf.read_clips(clips[:3])], factors[:4])
    assert error["unread"] == 0.25


def test_wasserstein_is_the_area_between_quantile_functions():
    assert cf.wasserstein([0.0], [1.0]) == pytest.approx(1.0)
    a = np.random.default_rng(0).normal(size=13)
    assert cf.wasserstein(a, a + 0.7) == pytest.approx(0.7)
    b = np.random.default_rng(1).normal(2.0, 0.5, size=40)
    assert cf.wasserstein(a, b) == pytest.approx(wasserstein_distance(a, b), rel=1e-9)
    assert np.isnan(cf.wasserstein([], b))


def test_a_collapsed_model_has_no_spread_and_sits_away_from_real(known):
    clips, _ = known
    real = cf.read_clips(clips)
    same = cf.compare(real, real)
    assert all(same[n]["w1"] == 0.0 and same[n]["spread_ratio"] == pytest.approx(1.0) for n in cf.FACTORS)
    collapsed = cf.compare([real[0]] * 8, real)
    assert all(collapsed[n]["spread"] == 0.0 and collapsed[n]["w1"] > 0 for n in cf.FACTORS)
    regime = cf.summarize([same, collapsed])
    assert regime["prompts"] == 2 and regime["speed"]["spread_ratio"] == pytest.approx(0.5)


def test_real_image_to_video_clips_keep_the_frame_and_spread_only_in_speed():
    prompt = world.prompt_set("underspecified")[0]
    read = continuous_report.real_readings(prompt, 12, i2v=True)
    row = cf.compare(read, read)
    assert row["size"]["spread"] < 0.05 and row["shade"]["spread"] < 0.01  # the first frame fixes them
    assert row["speed"]["spread"] > 0.05


def test_the_script_writes_the_reader_check_and_refuses_an_empty_request(tmp_path):
    out = tmp_path / "cf.json"
    done = subprocess.run(
        [sys.executable, "scripts/continuous_factors.py", "--validate-clips", "8", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["validation"]
    assert [r["condition"] for r in rows][:2] == ["real", "decoded"] and rows[0]["speed"]["mae"] < 0.05
    refused = subprocess.run(
        [sys.executable, "scripts/continuous_factors.py", "--validate-clips", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "nothing to do" in refused.stderr


def test_speed_is_split_by_whether_the_caption_names_the_motion():
    def row(mean, real):
        return {"speed": {"mean": mean, "real_mean": real}}

    named, free = world.caption({"motion": "left"}), world.caption({})
    group = {"models": {"dfd": {"by_regime": {}, "per_prompt": {named: row(1.2, 0.8), free: row(0.4, 0.9)}}}}
    split = continuous_report.speed_by_naming(group)
    assert split["real"] == {"motion named": 0.8, "motion free": 0.9}
    assert split["dfd"] == {"motion named": 1.2, "motion free": 0.4}
    table = continuous_report.to_markdown(
        {"groups": {"T2V": {**group, "task": "t2v", "base": "shapes-tiny", "speed_summary": {}}}}
    )
    assert "| dfd | 1.200 | 0.400 |" in table
