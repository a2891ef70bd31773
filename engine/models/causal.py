"""Block-causal self-attention on diffusers' WanTransformer3DModel, for an autoregressive (causal) student
on the same frozen backbone as the bidirectional teacher, and the key-value cache it generates with.

Latent frames are grouped into chunks: the first latent frame alone (Wan's causal VAE codes pixel frame 0
alone), then `chunk_frames` frames each (a shorter last chunk when the count does not divide). Every token
attends to the tokens of its own chunk and of all earlier chunks; cross-attention to the text is unchanged.

What diffusers gives, and what is written here:
- The attention-processor interface: each WanAttention calls `self.processor`. `CausalAttention.install`
  gives the self-attention (attn1) of every block a processor of ours and `remove` puts the original
  objects back; no weight is touched, LoRA layers included. The projections are diffusers' own
  (`_get_qkv_projections`, the q/k norms, `to_out`) and the attention is `dispatch_attention_fn`; what
  our processor adds is the mask and the cache. A forward outside `CausalAttention.attend` runs the
  original processor, so the installed model is the bidirectional model bit for bit.
- The block-causal mask is SkyReels-V2's diffusion-forcing mask (`SkyReelsV2Transformer3DModel` with
  `num_frame_per_block`): a chunk index per frame, key chunk <= query chunk, repeated over each frame's
  tokens. That class has other weights (fps embeddings) and no cache, so the idea is reused, not the class.
- Per-chunk noise levels use Wan2.2's per-token timestep (a timestep of shape (B, seq_len)), which
  WanTransformer3DModel takes as it is (`velocity_per_frame`).
- RoPE is the transformer's own WanRotaryPosEmbed table, read from the input's absolute first frame
  instead of frame 0 (a forward hook on `transformer.rope`, the one call per forward that knows the shape).
- The KV cache is written here: diffusers 0.42 has none for this class (WanAnimate2's cache holds
  reference-frame keys for its own transformer class).

Why the per-forward state rides on the rotary embedding: diffusers hands that one object to every
attention processor of the forward, and gradient checkpointing hands the same object back when it
recomputes a block in the backward pass; by then the cache has grown (later chunks were committed), so
the snapshot of the cache each forward attended to must travel with the forward, not live in a global.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .conditioning import with_condition

CAUSAL_ATTR = "_dfd_causal"  # where an installed CausalAttention hangs on its transformer


def chunk_of_frame(frame: int, chunk_frames: int) -> int:
    """The chunk an absolute latent frame belongs to: frame 0 alone, then chunk_frames frames each."""
    return 0 if frame == 0 else 1 + (frame - 1) // chunk_frames


def chunk_bounds(num_frames: int, chunk_frames: int, start: int = 0) -> list[tuple[int, int]]:
    """The chunks of the absolute latent frames [start, start + num_frames), as (first, stop) pairs."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
    bounds, first = [], start
    for frame in range(start + 1, start + num_frames + 1):
        if frame == start + num_frames or chunk_of_frame(frame, chunk_frames) != chunk_of_frame(first, chunk_frames):
            bounds.append((first, frame))
            first = frame
    return bounds


class KVCache:
    """The keys and values (after RoPE) of committed chunks, per self-attention layer.

    `end_frame` is the absolute latent frame the next chunk starts at. With `window_frames`, only the
    newest window_frames committed frames are kept (a rolling cache); keys keep the absolute positions they
    were rotated at, so a query sees the same relative positions it would have seen without eviction."""

    def __init__(self, num_layers: int, window_frames: int | None = None):
        if window_frames is not None and window_frames < 1:
            raise ValueError(f"the cache window must hold at least 1 frame, got {window_frames}")
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.window_frames = window_frames
        self.end_frame = 0
        self._tokens = 1  # tokens per frame, known from the first commit

    @property
    def first_frame(self) -> int:
        """The oldest frame still cached."""
        return self.end_frame if self.keys[0] is None else self.end_frame - self.keys[0].shape[1] // self._tokens

    def snapshot(self) -> list[tuple[torch.Tensor | None, torch.Tensor | None]]:
        return list(zip(self.keys, self.values))

    def _store(self, layer: int, key: torch.Tensor, value: torch.Tensor, tokens_per_frame: int) -> None:
        # New tensors, never in-place: a snapshot taken earlier keeps seeing what it saw.
        if self.keys[layer] is not None:
            key, value = torch.cat([self.keys[layer], key], 1), torch.cat([self.values[layer], value], 1)
        if self.window_frames is not None:
            key, value = (
                key[:, -self.window_frames * tokens_per_frame :],
                value[:, -self.window_frames * tokens_per_frame :],
            )
        self.keys[layer], self.values[layer] = key.detach(), value.detach()
        self._tokens = tokens_per_frame


@dataclass
class _Forward:
    """What one causal forward attends to; created by the rope hook when the forward starts."""

    mask: torch.Tensor | None  # (1, 1, S, S_past + S) bool, True = attend; None: everything visible
    past: list | None  # per layer (keys, values) of the cache as it was when this forward started
    commit_to: KVCache | None  # the cache this forward's own keys and values are appended to
    tokens_per_frame: int
    committed: set = field(default_factory=set)  # layers already written (a recomputed block writes once)


class _Rotary(tuple):
    """The (cos, sin) RoPE pair of one forward, carrying that forward's causal state to the processors."""

    forward_state: _Forward


@dataclass
class _Request:
    offset: int
    cache: KVCache | None
    commit: bool


def _rotary_at(rope, offset: int, frames: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """WanRotaryPosEmbed.forward for patch-frames [offset, offset + frames) instead of [0, frames)."""
    table = rope.freqs_cos.shape[0]
    if offset + frames > table:
        raise ValueError(
            f"latent frames up to {offset + frames} need RoPE positions past the model's {table} "
            "(rope_max_seq_len): generate fewer frames"
        )
    split = [rope.t_dim, rope.h_dim, rope.w_dim]
    out = []
    for freqs in (rope.freqs_cos, rope.freqs_sin):
        f, h, w = freqs.split(split, dim=1)
        parts = [
            f[offset : offset + frames].view(frames, 1, 1, -1).expand(frames, height, width, -1),
            h[:height].view(1, height, 1, -1).expand(frames, height, width, -1),
            w[:width].view(1, 1, width, -1).expand(frames, height, width, -1),
        ]
        out.append(torch.cat(parts, dim=-1).reshape(1, frames * height * width, 1, -1))
    return out[0], out[1]


def block_causal_mask(
    first_frame: int, num_frames: int, chunk_frames: int, tokens_per_frame: int, past_tokens: int = 0, device=None
) -> torch.Tensor | None:
    """(1, 1, S, past + S) bool for the frames [first_frame, first_frame + num_frames) after `past_tokens`
    cached ones (all visible): key chunk <= query chunk, as SkyReels-V2 builds it. None when all is visible."""
    chunk = torch.tensor(
        [chunk_of_frame(f, chunk_frames) for f in range(first_frame, first_frame + num_frames)], device=device
    ).repeat_interleave(tokens_per_frame)
    mask = chunk[None, :] <= chunk[:, None]
    if bool(mask.all()):
        return None
    if past_tokens:
        mask = torch.cat([mask.new_ones(mask.shape[0], past_tokens), mask], dim=1)
    return mask[None, None]


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on interleaved pairs, as WanAttnProcessor applies it (its helper is local to its __call__)."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = cos[..., 0::2], sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


class _BlockCausalProcessor:
    """Self-attention of one block: block-causal within the input, everything cached before it visible."""

    def __init__(self, layer: int, bidirectional):
        self.layer = layer
        self.bidirectional = bidirectional  # the processor it replaces, used for every non-causal forward

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None, **kwargs):
        state = getattr(rotary_emb, "forward_state", None)
        if state is None:
            return self.bidirectional(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb, **kwargs)
        # diffusers' attention internals: only when the processor runs
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        from diffusers.models.transformers.transformer_wan import _get_qkv_projections

        query, key, value = _get_qkv_projections(attn, hidden_states, None)
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))
        query, key = _rotate(query, *rotary_emb), _rotate(key, *rotary_emb)
        keys, values = key, value
        if state.past is not None and state.past[self.layer][0] is not None:
            past_keys, past_values = state.past[self.layer]
            keys = torch.cat([past_keys.to(key.dtype), key], 1)
            values = torch.cat([past_values.to(value.dtype), value], 1)
        if state.commit_to is not None and self.layer not in state.committed:
            state.committed.add(self.layer)
            state.commit_to._store(self.layer, key, value, state.tokens_per_frame)
        out = dispatch_attention_fn(
            query,
            keys,
            values,
            attn_mask=state.mask,
            dropout_p=0.0,
            is_causal=False,
            backend=getattr(self.bidirectional, "_attention_backend", None),
        )
        out = out.flatten(2, 3).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))


class CausalAttention:
    """Block-causal attention installed on one WanTransformer3DModel (see the module's docstring)."""

    def __init__(self, transformer, chunk_frames: int):
        if transformer.config.patch_size[0] != 1:
            raise ValueError(
                f"causal chunks need a temporal patch size of 1, this transformer's is "
                f"{transformer.config.patch_size[0]}"
            )
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
        self.transformer = transformer
        self.chunk_frames = chunk_frames
        self._request: _Request | None = None
        self._originals = None
        self._hook = None

    @property
    def num_layers(self) -> int:
        return len(self.transformer.blocks)

    def install(self) -> CausalAttention:
        if getattr(self.transformer, CAUSAL_ATTR, None) is not None:
            raise ValueError("this transformer already has causal attention installed; remove it first")
        self._originals = [block.attn1.processor for block in self.transformer.blocks]
        for layer, block in enumerate(self.transformer.blocks):
            block.attn1.set_processor(_BlockCausalProcessor(layer, self._originals[layer]))
        self._hook = self.transformer.rope.register_forward_hook(self._rope_hook)
        setattr(self.transformer, CAUSAL_ATTR, self)
        return self

    def remove(self) -> None:
        """Put the original processors back and drop the rope hook: the bidirectional model, exactly."""
        if self._originals is None:
            return
        for block, original in zip(self.transformer.blocks, self._originals):
            block.attn1.set_processor(original)
        self._hook.remove()
        self._originals = self._hook = None
        setattr(self.transformer, CAUSAL_ATTR, None)

    def new_cache(self, window_frames: int | None = None) -> KVCache:
        return KVCache(self.num_layers, window_frames)

    @contextmanager
    def attend(self, cache: KVCache | None = None, offset: int = 0, commit: bool = False):
        """Forwards inside are causal. Without a cache: the whole input block-causally, its first frame at
        absolute latent frame `offset`. With a cache: the input is the frames right after the cache's end,
        attending to every cached frame and block-causally to itself; `commit` appends its keys and values."""
        if commit and cache is None:
            raise ValueError("committing needs a cache to commit to")
        previous = self._request
        self._request = _Request(cache.end_frame if cache is not None else offset, cache, commit)
        try:
            yield
        finally:
            self._request = previous

    def _rope_hook(self, rope, args, output):
        request = self._request
        if request is None:
            return output
        _, _, frames, height, width = args[0].shape
        p_h, p_w = rope.patch_size[1], rope.patch_size[2]
        tokens = (height // p_h) * (width // p_w)
        cache = request.cache
        past = cache.snapshot() if cache is not None else None
        past_tokens = 0 if past is None or past[0][0] is None else past[0][0].shape[1]
        state = _Forward(
            mask=block_causal_mask(request.offset, frames, self.chunk_frames, tokens, past_tokens, args[0].device),
            past=past,
            commit_to=cache if request.commit else None,
            tokens_per_frame=tokens,
        )
        if request.commit:
            cache.end_frame = request.offset + frames
        rotary = _Rotary(_rotary_at(rope, request.offset, frames, height // p_h, width // p_w))
        rotary.forward_state = state
        return rotary


def causal_attention(transformer) -> CausalAttention | None:
    """The CausalAttention installed on a transformer, if any."""
    return getattr(transformer, CAUSAL_ATTR, None)


@contextmanager
def installed(transformer, chunk_frames: int):
    """Causal attention on `transformer` for the duration (reusing one already there with the same chunks)."""
    present = causal_attention(transformer)
    if present is not None:
        if present.chunk_frames != chunk_frames:
            raise ValueError(
                f"the transformer has causal attention with {present.chunk_frames}-frame chunks "
                f"installed, not {chunk_frames}"
            )
        yield present
        return
    causal = CausalAttention(transformer, chunk_frames).install()
    try:
        yield causal
    finally:
        causal.remove()


def velocity_per_frame(
    transformer,
    x: torch.Tensor,
    t_frames: torch.Tensor,
    prompt_embeds: torch.Tensor,
    condition: torch.Tensor | None = None,
) -> torch.Tensor:
    """The network's velocity with each latent frame at its own time t_frames (B, F) in [0, 1], through
    the transformer's per-token timestep (B, seq_len); `condition`: an I2V model's channels for these frames."""
    p_h, p_w = transformer.config.patch_size[1:]
    tokens = (x.shape[3] // p_h) * (x.shape[4] // p_w)
    timestep = (t_frames.to(device=x.device, dtype=torch.float32) * 1000.0).repeat_interleave(tokens, dim=1)
    dtype = transformer.patch_embedding.weight.dtype
    v = transformer(
        hidden_states=with_condition(x, condition).to(dtype),
        timestep=timestep,
        encoder_hidden_states=prompt_embeds.to(dtype),
        return_dict=False,
    )[0]
    return v.to(x.dtype)
