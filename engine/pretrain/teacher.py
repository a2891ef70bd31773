"""Building and pretraining the built-in teacher `shapes-tiny` on the shapes world.

The teacher is a Wan2.1-family text-to-video pipeline in miniature: WanTransformer3DModel, a UMT5
encoder with a word-level tokenizer, a flow-match Euler scheduler, and our patch-PCA autoencoder.
It is trained by flow matching (velocity target eps - x0) on clips with captions at mixed levels of
detail, so it models both the narrow detailed-caption conditionals and the multi-modal
underspecified ones, plus the unconditional branch that CFG needs. With task i2v it is a
WanImageToVideoPipeline that also sees each clip's first frame (engine/models/conditioning.py).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

from ..config.fields import ConfigError
from ..config.teacher import TeacherConfig
from ..core.flow import shifted_time
from ..models.base import STUDIO_META, BaseModel, load_base_model
from ..models.conditioning import condition_of_clips, image_to_video_pipeline, task_of, with_condition
from ..models.folders import written_folder
from ..models.frame_replacement import FrameCondition, frame_velocity
from ..shapes import world
from ..shapes.autoencoder import PatchPCAAutoencoder, frames_to_tensor
from ..shapes.text import build_text_encoder, build_tokenizer, encode_prompts


def build_pipeline(cfg: TeacherConfig, fit_clips: np.ndarray):
    """An untrained WanPipeline for the shapes world, with the autoencoder already fitted."""
    tokenizer = build_tokenizer(world.vocabulary(), cfg.text_len)
    text_encoder = build_text_encoder(len(tokenizer), cfg.text_dim, seed=cfg.seed)
    vae = PatchPCAAutoencoder(z_dim=cfg.z_dim).fit(frames_to_tensor(fit_clips), seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=cfg.num_attention_heads,
        attention_head_dim=cfg.attention_head_dim,
        in_channels=cfg.z_dim,
        out_channels=cfg.z_dim,
        text_dim=cfg.text_dim,
        freq_dim=64,
        ffn_dim=cfg.ffn_dim,
        num_layers=cfg.num_layers,
        rope_max_seq_len=64,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=cfg.flow_shift)
    return WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer
    )


def _lr_at(step: int, cfg: TeacherConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak rate (or constant)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


class _CaptionBank:
    """Embeddings of every caption the world can produce (and the empty one), computed once."""

    def __init__(self, pipe, text_len: int):
        captions = [""] + [world.caption(named) for named in world.all_namings()]
        self.index = {c: i for i, c in enumerate(captions)}
        chunks = [
            encode_prompts(pipe.tokenizer, pipe.text_encoder, captions[i : i + 256], text_len)
            for i in range(0, len(captions), 256)
        ]
        self.embeddings = torch.cat(chunks)

    def lookup(self, captions: list[str]) -> torch.Tensor:
        return self.embeddings[[self.index[c] for c in captions]]


def save_pipeline_atomically(pipe, out: Path, meta: dict) -> None:
    """save_pretrained into a temp folder, then swap it in: a crash never leaves a half-written model."""
    with written_folder(out) as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        (tmp / STUDIO_META).write_text(json.dumps(meta, indent=2) + "\n")


def pretrain_teacher(cfg: TeacherConfig, out: Path, command: str, save_every: int = 0, progress=None) -> dict:
    """Train the tiny teacher by flow matching and save it as a diffusers pipeline folder at `out`.

    `progress(step, total, loss)` is called every step. Returns the recorded metadata.
    """
    started = time.time()
    rng = np.random.default_rng(cfg.seed)
    lineage = []
    if cfg.init:
        pipe, lineage = _continued_pipeline(cfg)
    else:
        fit_clips, _ = world.sample_clips({}, cfg.ae_fit_clips, seed=cfg.seed + 1)
        pipe = build_pipeline(cfg, fit_clips)
    pipe, first_frames = _for_task(pipe, cfg)
    renamed = _renamed_words(pipe, cfg.text_len)  # {} for a new teacher: it was built from today's words
    vae, transformer = pipe.vae, pipe.transformer
    bank = _CaptionBank(pipe, cfg.text_len)

    # Pre-render and encode the clip pool once; captions are re-drawn every time a clip is used.
    pool_factors = [
        world.draw_factors(rng, start=world.draw_start_law(rng, cfg.i2v_frames)) for _ in range(cfg.pool_clips)
    ]
    pool = _encoded(vae, pool_factors)
    balanced_pool, balanced_captions = _balanced_pool(cfg, vae, rng)
    pool_condition, balanced_condition = first_frames(pool), first_frames(balanced_pool)
    n_balanced = round(cfg.batch_size * cfg.balanced_detailed)
    frame_given = cfg.task == "i2v" and cfg.i2v_conditioning == "frame"

    ema = {k: v.detach().clone() for k, v in transformer.state_dict().items()}
    transformer.requires_grad_(True)  # a loaded model comes frozen
    transformer.train()
    optimizer = torch.optim.AdamW(transformer.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    meta = {}
    loss_avg = None
    for step in range(cfg.steps):
        idx = rng.integers(0, len(pool), size=cfg.batch_size - n_balanced)
        x0, condition = pool[idx], None if pool_condition is None else pool_condition[idx]
        captions = [world.training_caption(rng, pool_factors[i]) for i in idx]
        if n_balanced:
            extra = rng.integers(0, len(balanced_pool), size=n_balanced)
            x0 = torch.cat([x0, balanced_pool[extra]])
            condition = None if condition is None else torch.cat([condition, balanced_condition[extra]])
            captions += [balanced_captions[i] for i in extra]
        cond = bank.lookup(captions)
        t = shifted_time(torch.rand(cfg.batch_size, generator=gen), cfg.time_shift, t_min=0.0, t_max=1.0)
        eps = torch.randn(x0.shape, generator=gen)
        tt = t.view(-1, 1, 1, 1, 1)
        x_t = (1 - tt) * x0 + tt * eps
        if frame_given:  # the clip's own first latent frame, clean at timestep 0; the loss on the frames generated
            given = FrameCondition.first_frame(x0[:, :, :1], x0.shape[2])
            v = frame_velocity(transformer, x_t, t, cond, given)
            loss = torch.nn.functional.mse_loss(v[:, :, 1:], (eps - x0)[:, :, 1:])
        else:
            v = transformer(
                hidden_states=with_condition(x_t, condition),
                timestep=t * 1000.0,
                encoder_hidden_states=cond,
                return_dict=False,
            )[0]
            loss = torch.nn.functional.mse_loss(v, eps - x0)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(transformer.parameters(), cfg.grad_clip)
        optimizer.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v_ in transformer.state_dict().items():
                ema[k].lerp_(v_, 1 - decay) if v_.is_floating_point() else ema[k].copy_(v_)
        loss_value = float(loss.detach())
        loss_avg = loss_value if loss_avg is None else 0.98 * loss_avg + 0.02 * loss_value
        if progress:
            progress(step + 1, cfg.steps, loss_avg)
        last = step + 1 == cfg.steps
        if last or (save_every and (step + 1) % save_every == 0):
            meta = _save(pipe, ema, out, cfg, command, step + 1, loss_avg, time.time() - started, lineage, renamed)
    return meta


def _balanced_pool(cfg: TeacherConfig, vae, rng: np.random.Generator):
    """Latents and detailed captions of clips whose factors are all uniform (cfg.balanced_detailed of the
    main pool's size), or (None, []) when the option is off: then no random draw is spent, so runs
    without it repeat exactly."""
    if not cfg.balanced_detailed:
        return None, []
    namings = [world.uniform_naming(rng) for _ in range(max(1, round(cfg.pool_clips * cfg.balanced_detailed)))]
    factors = [world.draw_factors(rng, n, start=world.draw_start_law(rng, cfg.i2v_frames)) for n in namings]
    return _encoded(vae, factors), [world.caption(n) for n in namings]


def _encoded(vae, factors: list) -> torch.Tensor:
    """The normalized latents of the clips with these factors, rendered and encoded 500 at a time."""
    latents = []
    for start in range(0, len(factors), 500):
        clips = np.stack([world.render(f) for f in factors[start : start + 500]])
        with torch.no_grad():
            latents.append(vae.normalize(vae.encode(frames_to_tensor(clips)).latent_dist.mode()))
    return torch.cat(latents)


def _for_task(pipe, cfg: TeacherConfig):
    """The pipeline for cfg.task (a T2V one widened for i2v) and a function giving the first-frame
    condition channels of encoded clips (None for t2v: nothing extra is computed or drawn)."""
    task = task_of(pipe.transformer.config, pipe.vae.config)
    frame_init = bool(getattr(pipe.config, "expand_timesteps", False))
    if cfg.task == "t2v":
        if task == "i2v" or frame_init:
            raise ConfigError("task", f"{{init}} {cfg.init} is an image-to-video teacher: give task i2v")
        return pipe, lambda latents: None
    if (cfg.i2v_conditioning == "frame") != frame_init and (task == "i2v" or frame_init):
        kind = "frame replacement" if frame_init else "condition channels"
        raise ConfigError(
            "i2v_conditioning",
            f"{{init}} {cfg.init} takes its first frame by {kind}: give the same {{i2v_conditioning}} "
            "or a text-to-video init",
            refers=("init",),
        )
    if cfg.i2v_conditioning == "frame":
        return (pipe if frame_init else frame_replacement_pipeline(pipe)), lambda latents: None
    pipe = image_to_video_pipeline(pipe) if task == "t2v" else pipe
    model = BaseModel(
        pipe=pipe, source="teacher", meta={"num_frames": world.NUM_FRAMES, "height": world.HEIGHT, "width": world.WIDTH}
    )

    def first_frames(latents):
        if latents is None:
            return None
        return torch.cat([condition_of_clips(model, latents[i : i + 500]) for i in range(0, len(latents), 500)])

    return pipe, first_frames


def frame_replacement_pipeline(pipe):
    """A WanImageToVideoPipeline with expand_timesteps (Wan2.2-TI2V's frame replacement) around a text-to-video
    WanPipeline's parts: the same transformer, no new input channels, so at step 0 it is the T2V teacher given
    a clean first frame."""
    # diffusers' I2V pipeline: only for a frame-replacement stage
    from diffusers import WanImageToVideoPipeline

    return WanImageToVideoPipeline(
        tokenizer=pipe.tokenizer,
        text_encoder=pipe.text_encoder,
        vae=pipe.vae,
        scheduler=pipe.scheduler,
        transformer=pipe.transformer,
        expand_timesteps=True,
    )


def _continued_pipeline(cfg: TeacherConfig):
    """Load the teacher named by cfg.init to train further; its size settings replace cfg's."""
    model = load_base_model(cfg.init)
    meta = model.meta
    if meta.get("world") != "shapes" or "teacher_config" not in meta:
        raise ConfigError(
            "init", f"{{init}} {cfg.init} is not a shapes teacher made by pretrain-teacher; give such a folder"
        )
    previous = meta["teacher_config"]
    for key in ("num_layers", "num_attention_heads", "attention_head_dim", "ffn_dim", "text_dim", "text_len", "z_dim"):
        setattr(cfg, key, previous[key])
    # Provenance: the chain of commands that made the starting weights, oldest first.
    earlier = meta.get("lineage", [])
    # Each stage keeps the world it trained on: the world's sizes have changed once (docs/results.md).
    step = {
        k: meta[k] for k in ("made_by", "trained_steps", "train_seconds", "final_loss_ema", "world_ranges") if k in meta
    }
    return model.pipe, earlier + [step]


def _renamed_words(pipe, text_len: int) -> dict[str, str]:
    """Give the teacher the world's current words; returns {old word: new word}.

    A factor value renamed in the world (e.g. the fourth shape, cross -> diamond) keeps its token
    id, so the new word inherits the old one's frozen random embedding: a distinct code that the
    transformer then learns to draw anew. Adding or removing words would change the text encoder's size:
    that needs a new teacher."""
    tokenizer = build_tokenizer(world.vocabulary(), text_len)
    old, new = pipe.tokenizer.get_vocab(), tokenizer.get_vocab()
    if len(old) != len(new):
        raise ValueError(
            f"the world's vocabulary has {len(new)} words but this teacher's tokenizer has {len(old)}; "
            "a teacher can only continue when words are renamed, not added or removed: train a new one "
            "(pretrain-teacher without init)"
        )
    word_at = {i: w for w, i in old.items()}
    renamed = {word_at[i]: w for w, i in new.items() if word_at[i] != w}
    if renamed:
        pipe.register_modules(tokenizer=tokenizer)
    return renamed


def _save(
    pipe,
    ema,
    out: Path,
    cfg: TeacherConfig,
    command: str,
    step: int,
    loss: float,
    seconds: float,
    lineage,
    renamed: dict[str, str],
):
    live = {k: v.detach().clone() for k, v in pipe.transformer.state_dict().items()}
    pipe.transformer.load_state_dict(ema)  # ship the EMA weights
    meta = {
        "world": "shapes",
        "world_ranges": world.continuous_ranges(),
        "num_frames": world.NUM_FRAMES,
        "height": world.HEIGHT,
        "width": world.WIDTH,
        "fps": world.FPS,
        "text_len": cfg.text_len,
        **({"task": "i2v"} if cfg.task == "i2v" else {}),
        # The image-to-video frames' law (world.FRAME_LAWS) and how the frame enters: the evaluation's truth.
        **({"i2v_frames": cfg.i2v_frames, "i2v_conditioning": cfg.i2v_conditioning} if cfg.task == "i2v" else {}),
        "made_by": command,
        "teacher_config": asdict(cfg),
        "trained_steps": step,
        "total_trained_steps": step + sum(earlier["trained_steps"] for earlier in lineage),
        "lineage": lineage,
        **({"renamed_words": renamed} if renamed else {}),  # words this stage gave a new meaning
        # An intermediate save of a constant-rate run is exactly what a run of this length writes.
        **(
            {"same_as": re.sub(r"--steps[ =]\d+", f"--steps {step}", command)}
            if cfg.lr_schedule == "constant" and step < cfg.steps
            else {}
        ),
        "final_loss_ema": round(loss, 5),
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    try:
        save_pipeline_atomically(pipe, out, meta)
    finally:
        pipe.transformer.load_state_dict(live)
    return meta
