"""The shapes world: determinism, captions, and the mode frequencies DFD's measurements rely on."""

from collections import Counter

import numpy as np
import pytest

from engine.shapes import world


def test_same_seed_gives_identical_clips_and_other_seed_differs():
    a, fa = world.sample_clips({"colour": "red"}, 4, seed=7)
    b, fb = world.sample_clips({"colour": "red"}, 4, seed=7)
    c, _ = world.sample_clips({"colour": "red"}, 4, seed=8)
    assert a.shape == (4, world.NUM_FRAMES, world.HEIGHT, world.WIDTH, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and fa == fb
    assert not np.array_equal(a, c)


def test_named_factors_are_fixed_and_free_ones_follow_the_known_frequencies():
    rng = np.random.default_rng(0)
    named = {"shape": "triangle", "motion": "up"}
    draws = [world.draw_factors(rng, named) for _ in range(6000)]
    assert all(f.shape == "triangle" and f.motion == "up" for f in draws)
    for factor in ("colour", "background"):
        counts = Counter(getattr(f, factor) for f in draws)
        truth = world.mode_frequencies(named, factor)
        for value, p in truth.items():
            assert abs(counts[value] / len(draws) - p) < 0.025, (factor, value)
    assert world.mode_frequencies(named, "shape") == {"circle": 0.0, "square": 0.0, "triangle": 1.0, "diamond": 0.0}


def test_frequencies_are_uneven_so_collapse_onto_the_common_mode_shows():
    for table in world.FACTORS.values():
        assert abs(sum(table.values()) - 1.0) < 1e-9
        assert max(table.values()) >= 2 * min(table.values())


def test_uniform_naming_names_every_factor_with_every_value_equally_often():
    # The teacher's --balanced-detailed draws: rare values (purple 8%, diamond 10%) as common as any.
    rng = np.random.default_rng(0)
    draws = [world.uniform_naming(rng) for _ in range(8000)]
    assert all(set(d) == set(world.FACTOR_NAMES) for d in draws)
    for factor, values in world.FACTORS.items():
        counts = Counter(d[factor] for d in draws)
        for value in values:
            assert abs(counts[value] / len(draws) - 1 / len(values)) < 0.02, (factor, value)


def test_every_caption_round_trips_and_detailed_prompts_cover_every_value():
    for named in world.all_namings():
        assert world.parse_caption(world.caption(named)) == named
    detailed = [world.parse_caption(p) for p in world.prompt_set("detailed")]
    assert all(len(n) == len(world.FACTOR_NAMES) for n in detailed)
    for factor, values in world.FACTORS.items():
        assert {n[factor] for n in detailed} == set(values)
    under = [world.parse_caption(p) for p in world.prompt_set("underspecified")]
    assert all(len(n) < len(world.FACTOR_NAMES) for n in under)


def test_unknown_caption_and_values_are_clear_errors():
    with pytest.raises(ValueError, match="not a caption of the shapes world"):
        world.parse_caption("a dragon flying")
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        world.caption({"colour": "pink"})
    with pytest.raises(ValueError, match="unknown prompt set"):
        world.prompt_set("everything")


def test_object_stays_in_frame_and_moves_the_named_way():
    clips, factors = world.sample_clips({"motion": "right", "background": "dark"}, 6, seed=3)
    bg = np.array(world.BACKGROUND_RGB["dark"])
    for clip in clips:
        xs = []
        for frame in clip[[0, -1]]:
            mask = np.abs(frame.astype(int) - bg).sum(-1) > 60
            assert mask.sum() > 50  # the object is visible in the first and last frame
            xs.append(np.nonzero(mask)[1].mean())
        assert xs[1] - xs[0] > 8  # moved right by more than 8 px over the clip


def test_the_diamond_has_the_circles_area_and_its_own_outline():
    ys, xs = np.mgrid[-32:32, -32:32].astype(np.float32) + 0.5
    cover = {s: world._coverage(s, xs, ys, 15.0) for s in ("circle", "square", "diamond")}
    assert float(cover["diamond"].sum()) == pytest.approx(float(cover["circle"].sum()), rel=0.02)
    at = lambda s, x, y: cover[s][32 + y, 32 + x]  # noqa: E731
    # the diamond reaches further along the axes than the square and leaves the square's corners empty
    assert at("diamond", 17, 0) == 1.0 and at("square", 17, 0) == 0.0
    assert at("diamond", 11, 11) == 0.0 and at("square", 11, 11) == 1.0


def test_training_captions_mix_levels_including_unconditional():
    rng = np.random.default_rng(1)
    factors = [world.draw_factors(rng) for _ in range(400)]
    captions = [world.training_caption(rng, f) for f in factors]
    levels = Counter(
        "empty" if not c else "detailed" if len(world.parse_caption(c)) == 4 else "partial" for c in captions
    )
    assert levels["empty"] > 15 and levels["detailed"] > 150 and levels["partial"] > 100
    for c, f in zip(captions, factors):  # a caption never contradicts its clip
        assert all(getattr(f, k) == v for k, v in world.parse_caption(c).items())


def test_export_folder_writes_playable_mp4s_with_captions(tmp_path):
    from mp4_probe import probe_frame_count

    out = world.export_folder(tmp_path / "data", 3, seed=0)
    mp4s = sorted(out.glob("*.mp4"))
    assert len(mp4s) == 3 and (out / "captions.jsonl").is_file()
    for mp4 in mp4s:
        assert probe_frame_count(mp4) == world.NUM_FRAMES
        world.parse_caption(mp4.with_suffix(".txt").read_text())


def test_the_motion_posterior_of_a_first_frame_is_calibrated_against_the_worlds_own_draws():
    # Image-to-video's truth: p(motion | first frame). Averaged over frames it is the motion marginal, and
    # among frames it gives ~0.7 to "left", about 70% of the clips really move left.
    rng = np.random.default_rng(3)
    draws = [world.draw_factors(rng) for _ in range(3000)]
    posteriors = [world.motion_posterior(f, grid=65)[0] for f in draws]
    for motion, p in world.MOTIONS.items():
        assert abs(np.mean([q[motion] for q in posteriors]) - p) < 0.02, motion
        assert all(q[motion] > 0 for q, f in zip(posteriors, draws) if f.motion == motion)  # never rules out the truth
    left = [f.motion == "left" for q, f in zip(posteriors, draws) if 0.55 <= q["left"] <= 0.85]
    mean_q = np.mean([q["left"] for q in posteriors if 0.55 <= q["left"] <= 0.85])
    assert len(left) > 100 and abs(np.mean(left) - mean_q) < 0.08


def test_continuations_keep_the_first_frame_and_move_only_where_the_frame_allows():
    _, (f,) = world.sample_clips({"colour": "red", "shape": "square"}, 1, seed=7)
    clips, factors = world.continuations(f, 40, seed=0)
    first = world.render(f)[0]
    assert (clips[:, 0] == first).all()
    posterior, _ = world.motion_posterior(f)
    assert {c.motion for c in factors} == {m for m, p in posterior.items() if p > 0}
    assert all(c.shape == "square" and c.colour == "red" and c.x0 == f.x0 for c in factors)
    named = world.parse_caption("a red square moving " + f.motion)
    assert {c.motion for c in world.continuations(f, 10, seed=1, named=named)[1]} == {f.motion}  # as captioned
    edge = world.ClipFactors("circle", "red", "left", "dark", radius=14.0, speed=0.7, x0=15.5, y0=32.0, shade=1.0)
    assert world.motion_posterior(edge)[0]["left"] == 0.0  # no room to move left from the left edge
