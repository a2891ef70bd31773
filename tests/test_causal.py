"""The causal student's mechanism on a tiny random WanTransformer3DModel (the real diffusers class):
block-causal attention, per-chunk timesteps, the KV cache with RoPE at absolute frames, its removal, and
the rolling sampler past the training length."""

from __future__ import annotations

import pytest
import torch

from engine.generation.causal_sampling import causal_sample, default_window
from engine.generation.sampling import velocity
from engine.models.causal import CausalAttention, chunk_bounds, installed, velocity_per_frame
from tiny_wan import tiny_transformer

CHUNK = 2  # latent frames per chunk after the lone first frame: 5 frames are chunks [0], [1, 2], [3, 4]


def _tiny_transformer(seed: int = 0):
    torch.manual_seed(seed)
    model = tiny_transformer()
    return model.eval()


@pytest.fixture(scope="module")
def transformer():
    return _tiny_transformer()


def _inputs(frames: int = 5, batch: int = 2, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, frames, 8, 8, generator=g)
    cond = torch.randn(batch, 6, 32, generator=g)
    return x, cond


def _chunk_times(batch: int, frames: int, times: list[float]) -> torch.Tensor:
    """Per-frame times (B, F): chunk k of the layout at times[k]."""
    t = torch.empty(batch, frames)
    for k, (first, stop) in enumerate(chunk_bounds(frames, CHUNK)):
        t[:, first:stop] = times[k]
    return t


def test_chunks_are_the_lone_first_frame_then_fixed_size_ones():
    assert chunk_bounds(5, 2) == [(0, 1), (1, 3), (3, 5)]
    assert chunk_bounds(17, 2)[:3] == [(0, 1), (1, 3), (3, 5)] and len(chunk_bounds(17, 2)) == 9
    assert chunk_bounds(6, 2) == [(0, 1), (1, 3), (3, 5), (5, 6)]  # a shorter last chunk
    assert chunk_bounds(4, 2, start=3) == [(3, 5), (5, 7)]  # absolute frames: the layout does not move


def test_a_chunk_sees_earlier_chunks_and_never_later_ones(transformer):
    x, cond = _inputs()
    t = _chunk_times(2, 5, [0.2, 0.5, 0.9])
    with torch.no_grad(), installed(transformer, CHUNK) as causal:
        with causal.attend():
            base = velocity_per_frame(transformer, x, t, cond)
            later = x.clone()
            later[:, :, 3:] = torch.randn_like(later[:, :, 3:])
            t_later = t.clone()
            t_later[:, 3:] = 0.1
            changed_later = velocity_per_frame(transformer, later, t_later, cond)
            earlier = x.clone()
            earlier[:, :, 0] += 1.0
            changed_earlier = velocity_per_frame(transformer, earlier, t, cond)
        bidirectional = velocity_per_frame(transformer, later, t_later, cond) - velocity_per_frame(
            transformer, x, t, cond
        )
    assert torch.equal(changed_later[:, :, :3], base[:, :, :3])  # chunks 0 and 1 ignore chunk 2 entirely
    assert (changed_later[:, :, 3:] - base[:, :, 3:]).abs().max() > 1e-3
    assert (changed_earlier[:, :, 1:] - base[:, :, 1:]).abs().amax(dim=(0, 1, 3, 4)).min() > 1e-4  # every later frame
    # outside `attend` the installed model is the bidirectional one: there the future does leak back
    assert bidirectional[:, :, :3].abs().max() > 1e-3


def test_a_whole_sequence_forward_equals_chunk_by_chunk_forwards_with_the_cache(transformer):
    x, cond = _inputs()
    times = [0.3, 0.6, 0.95]
    with torch.no_grad(), installed(transformer, CHUNK) as causal:
        with causal.attend():
            whole = velocity_per_frame(transformer, x, _chunk_times(2, 5, times), cond)
        cache = causal.new_cache()
        parts = []
        for k, (first, stop) in enumerate(chunk_bounds(5, CHUNK)):
            assert cache.end_frame == first
            with causal.attend(cache, commit=True):  # RoPE at the chunk's absolute frames, cached keys before it
                parts.append(velocity(transformer, x[:, :, first:stop], times[k], cond))
    chunked = torch.cat(parts, dim=2)
    assert (whole - chunked).abs().max() < 1e-5
    # and the cache is what made it so: the last chunk alone at frame 0 is something else
    with torch.no_grad():
        alone = velocity(transformer, x[:, :, 3:], times[2], cond)
    assert (alone - chunked[:, :, 3:]).abs().max() > 1e-3


def test_attention_depends_on_relative_positions_only(transformer):
    """What lets generation go past the training length: the same frames at absolute frame 0 or 8."""
    x, cond = _inputs(frames=3)
    t = torch.full((2, 3), 0.5)
    with torch.no_grad(), installed(transformer, CHUNK) as causal:
        # frames [1, 2] are one chunk, frame 3 the next; from 9: [9, 10] and [11] keep that layout
        with causal.attend(offset=1):
            near = velocity_per_frame(transformer, x, t, cond)
        with causal.attend(offset=9):
            far = velocity_per_frame(transformer, x, t, cond)
        with pytest.raises(ValueError, match="rope_max_seq_len") as refused:
            with causal.attend(offset=31):
                velocity_per_frame(transformer, x, t, cond)
    assert "\n" not in str(refused.value)
    assert (near - far).abs().max() < 1e-5


def test_removing_the_processors_restores_the_bidirectional_model_bit_for_bit(transformer):
    x, cond = _inputs()
    processors = [block.attn1.processor for block in transformer.blocks]
    with torch.no_grad():
        before = velocity(transformer, x, 0.7, cond)
        causal = CausalAttention(transformer, CHUNK).install()
        inactive = velocity(transformer, x, 0.7, cond)
        with causal.attend():
            active = velocity(transformer, x, 0.7, cond)
        causal.remove()
        after = velocity(transformer, x, 0.7, cond)
    assert torch.equal(before, inactive) and torch.equal(before, after)
    assert (active - before).abs().max() > 1e-3
    assert [block.attn1.processor for block in transformer.blocks] == processors
    assert not transformer.rope._forward_hooks


def test_rolling_sampler_goes_past_the_training_length_and_starts_like_a_short_run(transformer):
    """65 frames (17 latent) from a student trained on 17 frames (5 latent), its cache rolling over 3."""
    _, cond = _inputs(batch=2)
    t_list = (0.999, 0.833, 0.0)
    window = default_window(5, CHUNK)
    assert window == 3
    with torch.no_grad():
        long = causal_sample(
            transformer, (2, 4, 17, 8, 8), cond, t_list, seeds=[3, 4], chunk_frames=CHUNK, window_frames=window
        )
        short = causal_sample(transformer, (2, 4, 5, 8, 8), cond, t_list, seeds=[3, 4], chunk_frames=CHUNK)
        other_seed = causal_sample(transformer, (2, 4, 5, 8, 8), cond, t_list, seeds=[3, 5], chunk_frames=CHUNK)
    assert long.shape == (2, 4, 17, 8, 8) and torch.isfinite(long).all()
    assert torch.equal(long[:, :, :5], short)  # within the window, rolling changes nothing
    assert torch.equal(other_seed[0], short[0]) and not torch.equal(other_seed[1], short[1])
    assert not any(block.attn1.processor.__class__.__name__.startswith("_Block") for block in transformer.blocks)


def test_the_sampler_hands_each_chunk_over_in_order_as_it_is_ready(transformer):
    """on_chunk (what the studio's streaming figures time) sees every chunk once, in order, with the latents
    that end up in the video, before the next chunk is sampled."""
    _, cond = _inputs(batch=2)
    seen, steps = [], []
    with torch.no_grad():
        video = causal_sample(
            transformer,
            (2, 4, 5, 8, 8),
            cond,
            (0.999, 0.5, 0.0),
            seeds=[3, 4],
            chunk_frames=CHUNK,
            progress=lambda done, total: steps.append(done),
            on_chunk=lambda index, chunks, x: seen.append((index, chunks, x.clone(), len(steps))),
        )
    assert [(i, n) for i, n, _, _ in seen] == [(0, 3), (1, 3), (2, 3)]
    assert [done for *_, done in seen] == [2, 4, 6]  # chunk k is handed over after its own steps, before k + 1's
    assert torch.equal(torch.cat([x for _, _, x, _ in seen], dim=2), video)


def test_the_rolling_cache_keeps_the_newest_frames_at_their_absolute_positions(transformer):
    x, cond = _inputs(frames=9)
    with torch.no_grad(), installed(transformer, CHUNK) as causal:
        cache = causal.new_cache(window_frames=3)
        for first, stop in chunk_bounds(9, CHUNK):
            with causal.attend(cache, commit=True):
                velocity(transformer, x[:, :, first:stop], 0.0, cond)
            assert cache.end_frame == stop and cache.first_frame == max(0, stop - 3)
            assert all(k.shape[1] == (stop - cache.first_frame) * 16 for k in cache.keys)


def test_gradient_checkpointing_recomputes_a_chunk_against_the_cache_it_saw(transformer):
    """The backward of chunk 1 runs after chunk 2 was committed; with checkpointing the block is recomputed
    then, and must attend to the cache as it was (the snapshot travels with the forward)."""
    x, cond = _inputs()
    grads = []
    for checkpointing in (False, True):
        model = _tiny_transformer()
        model.train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        with installed(model, CHUNK) as causal:
            cache = causal.new_cache()
            outs = []
            for first, stop in chunk_bounds(5, CHUNK):
                with causal.attend(cache):
                    outs.append(velocity(model, x[:, :, first:stop], 0.5, cond))
                with torch.no_grad(), causal.attend(cache, commit=True):
                    velocity(model, x[:, :, first:stop], 0.0, cond)
            torch.cat(outs, dim=2).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert grads[0].abs().max() > 0
    assert (grads[0] - grads[1]).abs().max() < 1e-5
