"""The stages of a DMD2/DFD run, each as the trainer runs it (engine.distill.trainer: the same velocity,
losses and adapter switches), on fake tensors: text encoding, latent encoding, a fake-score update, a
student update with its fake and teacher forwards (DMD2), the same with DFD's real-clip branch, few-step
sampling and a preview's VAE decode. Each is a function of (models, inputs) that the planner runs under
its memory counter."""

from __future__ import annotations

import torch

from ..core.flow import guided
from ..distill import losses
from ..distill.adapters import FAKE, STUDENT
from ..generation.sampling import velocity
from ..models.frame_replacement import FrameCondition

STAGES = (
    "text_encoding",
    "latent_encoding",
    "fake_update",
    "student_update_dmd2",
    "student_update_dfd",
    "sampling",
    "preview_decode",
)
TRAINING = ("fake_update", "student_update_dmd2", "student_update_dfd")


class Inputs:
    """A batch as the trainer holds it: cached latents and prompt embeddings, the I2V condition."""

    def __init__(self, spec, dtype):
        self.latents = torch.randn(spec.latent_shape())
        self.cond = torch.randn(spec.batch, 512, spec.text_width(), dtype=dtype)
        self.uncond = torch.randn(1, 512, spec.text_width(), dtype=dtype)
        extra = spec.condition_channels()
        self.condition = torch.randn(self.latents.shape[0], extra, *self.latents.shape[2:]) if extra > 0 else None
        if spec.frame_condition():  # the given first frame replaces the first latent frame, as the trainer's
            b, z, frames, h, w = self.latents.shape
            first = torch.randn(b, z, 1, h, w)
            self.condition = FrameCondition.first_frame(first, frames, mask_channel=spec.frame_condition() == "channel")
        self.t = torch.full((spec.batch,), 0.5)


def _x0(net, x_t, t, cond, condition):
    return losses.x0_from_velocity(x_t, t, velocity(net, x_t, t, cond, condition))


def _teacher_x0(run, x_t, t):
    net, inputs = run.transformer, run.inputs
    with run.adapters.teacher():
        v = velocity(
            net,
            torch.cat([x_t, x_t]),
            t.repeat(2),
            torch.cat([inputs.cond, inputs.uncond.expand_as(inputs.cond)]),
            inputs.condition,
        )
    v_cond, v_uncond = v.chunk(2)
    return losses.x0_from_velocity(x_t, t, guided(v_cond, v_uncond, run.spec.guidance))  # as the trainer's _x0


def _optimizer_step(run, name, optimizer):
    counter = run.counter
    with counter.labelled("lora_optimizer"):
        for p in run.adapters.parameters(name):
            if p.grad is not None:
                counter.add(p.grad, "lora_optimizer")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def fake_update(run):
    inputs = run.inputs
    with run.counter.labelled("temporaries"), torch.no_grad(), run.autocast():
        run.adapters.use(STUDENT)
        x = _x0(run.transformer, torch.randn_like(inputs.latents), inputs.t, inputs.cond, inputs.condition).float()
    eps = torch.randn_like(x)
    run.adapters.use(FAKE)
    with run.counter.labelled("activations"), run.autocast():
        v = velocity(run.transformer, losses.add_noise(x, eps, inputs.t), inputs.t, inputs.cond, inputs.condition)
        loss = losses.fake_score_loss(v.float(), x, eps)
    with run.counter.labelled("temporaries"):
        loss.backward()
    del v, loss, x, eps
    _optimizer_step(run, FAKE, run.opt_fake)
    run.adapters.use(STUDENT)


def _student_update(run, data_forcing: bool):
    inputs = run.inputs
    run.adapters.use(STUDENT)
    with run.counter.labelled("activations"), run.autocast():
        x_in = losses.add_noise(inputs.latents, torch.randn_like(inputs.latents), inputs.t)
        x = _x0(run.transformer, x_in, inputs.t, inputs.cond, inputs.condition).float()
        eps = torch.randn_like(x)
        # losses.generator_loss's forwards, without its blend-variant branch (a data-dependent `if`, which fake
        # tensors cannot take): the fake score on the noised sample, the teacher on the noised sample (DMD2)
        # or on the noised real clip (DFD, paper Eq. 9-10).
        with run.counter.labelled("temporaries"), torch.no_grad():
            x_d = x.detach()
            with run.adapters.using(FAKE):
                x0_fake = _x0(
                    run.transformer, losses.add_noise(x_d, eps, inputs.t), inputs.t, inputs.cond, inputs.condition
                ).float()
            teacher_in = inputs.latents if data_forcing else x_d
            x0_teacher = _teacher_x0(run, losses.add_noise(teacher_in, eps, inputs.t), inputs.t).float()
        loss = losses.dmd_loss(x, x0_fake, x0_teacher)
    run.adapters.use(STUDENT)  # the trainer's trap: the student's LoRA requires grad again before backward
    with run.counter.labelled("temporaries"):
        loss.backward()
    del loss, x, x_in, eps, x0_fake, x0_teacher
    _optimizer_step(run, STUDENT, run.opt_student)


def student_update_dmd2(run):
    _student_update(run, data_forcing=False)


def student_update_dfd(run):
    _student_update(run, data_forcing=True)


def sampling(run):
    """One of the student's few steps (each step holds the same memory) for a batch of previews."""
    inputs = run.inputs
    with run.counter.labelled("temporaries"), torch.no_grad(), run.autocast(), run.adapters.using(STUDENT):
        _x0(run.transformer, torch.randn_like(inputs.latents), inputs.t, inputs.cond, inputs.condition)


def preview_decode(run):
    """One clip's decode, in tiles, as BaseModel.decode runs it."""
    vae = run.vae
    with run.counter.labelled("temporaries"), torch.no_grad():
        z = torch.randn(1, *run.inputs.latents.shape[1:], dtype=run.dtype)
        vae.enable_tiling()
        vae.decode(z, return_dict=False)


def latent_encoding(run):
    """One clip's pixels to latents (the first pass over a data set does this for every window), whole or in
    tiles (BaseModel.tiled_encode)."""
    spec = run.spec
    with run.counter.labelled("temporaries"), torch.no_grad():
        pixels = torch.randn(1, 3, spec.frames, spec.height, spec.width, dtype=run.dtype)
        if spec.vae_tiling:
            run.vae.enable_tiling()
        try:
            run.vae.encode(pixels)
        finally:
            run.vae.disable_tiling()


def text_encoding(run):
    """A batch of captions through the text encoder (run once per prompt, its embeddings then cached)."""
    with run.counter.labelled("temporaries"), torch.no_grad():
        ids = torch.zeros(run.spec.batch, 512, dtype=torch.long)
        if hasattr(run.text_encoder, "lm_head"):  # Cosmos' Qwen2.5-VL: every layer's state, normalized, joined
            _qwen_prompt_states(run.text_encoder, ids)
        else:
            run.text_encoder(input_ids=ids, attention_mask=torch.ones_like(ids))


def _qwen_prompt_states(encoder, ids):
    """Cosmos2_5_PredictBasePipeline._get_prompt_embeds on a text-only prompt: the whole model's forward (its
    logits too) with every hidden state kept, each normalized, concatenated (28 x 3584 wide). The positions
    are given as the model makes them for text (one arange on its three rotary axes), not computed from the
    token ids, which fake tensors do not hold."""
    positions = torch.arange(ids.shape[1]).view(1, 1, -1).expand(3, ids.shape[0], -1)
    out = encoder.model.language_model(input_ids=ids, position_ids=positions, output_hidden_states=True)
    encoder.lm_head(out.last_hidden_state)
    states = [(h - h.mean(-1, keepdim=True)) / (h.std(-1, keepdim=True) + 1e-8) for h in out.hidden_states[1:]]
    return torch.cat(states, dim=-1)
