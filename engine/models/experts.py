"""Wan2.2-A14B's two experts as one network: `transformer` denoises the high-noise times, `transformer_2` the
low-noise ones, switched at boundary_ratio * 1000 timesteps (diffusers' WanPipeline rule: the high-noise
expert takes every timestep >= the boundary). `Experts` takes the same call as one WanTransformer3DModel, so
the samplers, the trainer and the LoRA adapters pass it to velocity() unchanged; a batch whose samples sit
on both sides of the boundary is split, each part run by its expert, and joined again in the batch's order.

LoRA adapters (the student, the fake score, a loaded student) are added to both experts under one name, so
adapter `student` is one LoRA per expert, each trained only where its expert runs (docs/distillation.md,
"Wan2.2-A14B"). A student folder holds them as two diffusers files: LORA_FILE for `transformer`, and
LOW_NOISE_LORA_FILE for `transformer_2`, which diffusers loads with `load_into_transformer_2=True`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.files import LOW_NOISE_COMFY_FILE, LOW_NOISE_LORA_FILE  # noqa: F401  (named here too: a student's files)
from .names import ModelError

HIGH, LOW = "transformer", "transformer_2"  # the experts' names, as pipelines and state-dict keys name them


class Experts(torch.nn.Module):
    """The high-noise expert (`transformer`) and the low-noise one (`transformer_2`) behind one forward.

    guidance_2: the teacher's CFG scale on the low-noise expert (Wan's recipe gives each expert its own);
    None: the scale the caller gives, diffusers' rule when `guidance_scale_2` is not set."""

    def __init__(self, transformer, transformer_2, boundary_ratio: float, guidance_2: float | None = None):
        super().__init__()
        if not 0.0 < float(boundary_ratio) < 1.0:
            raise ValueError(f"boundary_ratio must be between 0 and 1 (exclusive), got {boundary_ratio}")
        self.transformer = transformer
        self.transformer_2 = transformer_2
        self.boundary_ratio = float(boundary_ratio)
        self.guidance_2 = guidance_2

    # --- what callers read of one WanTransformer3DModel ------------------------------------------------
    @property
    def config(self):
        return self.transformer.config

    @property
    def patch_embedding(self):  # velocity() reads the dtype the base runs in from it
        return self.transformer.patch_embedding

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.dtype

    @property
    def peft_config(self) -> dict:
        """The adapters both experts carry (added through `add_adapter`, so the same on both)."""
        return getattr(self.transformer, "peft_config", None) or {}

    @property
    def boundary_timestep(self) -> float:
        return self.boundary_ratio * 1000.0

    def high_noise(self, timestep: torch.Tensor) -> torch.Tensor:
        """Per sample: True where the high-noise expert runs (a per-token timestep: its largest)."""
        timestep = torch.as_tensor(timestep)
        per_sample = timestep.reshape(timestep.shape[0], -1).amax(1) if timestep.ndim else timestep[None]
        return per_sample >= self.boundary_timestep

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict: bool = True, **kwargs):
        high = self.high_noise(timestep)
        if bool(high.all()) or bool((~high).all()):
            expert = self.transformer if bool(high.all()) else self.transformer_2
            return expert(hidden_states, timestep, encoder_hidden_states, return_dict=return_dict, **kwargs)
        out = None
        for expert, rows in ((self.transformer, high), (self.transformer_2, ~high)):
            index = rows.nonzero().squeeze(1).to(hidden_states.device)
            part = expert(
                hidden_states.index_select(0, index),
                _rows(timestep, index),
                encoder_hidden_states.index_select(0, index),
                return_dict=False,
                **{k: _rows(v, index) for k, v in kwargs.items()},
            )[0]
            if out is None:
                out = part.new_zeros((hidden_states.shape[0], *part.shape[1:]))
            out = out.index_copy(0, index, part)  # out of place: autograd reaches both experts' parts
        if return_dict:
            from diffusers.models.modeling_outputs import Transformer2DModelOutput  # diffusers: the loaded base's

            return Transformer2DModelOutput(sample=out)
        return (out,)

    # --- what the trainer and the LoRA loaders call on a WanTransformer3DModel ----------------------------
    def add_adapter(self, config, adapter_name: str) -> None:
        self.transformer.add_adapter(config, adapter_name=adapter_name)
        self.transformer_2.add_adapter(config, adapter_name=adapter_name)

    def load_lora_adapter(self, state: dict, adapter_name: str, prefix: str = "transformer", **kwargs) -> None:
        """A student's tensors (read_lora_file's keys: 'transformer.' for the high-noise expert, 'transformer_2.'
        for the low-noise one) into adapter `adapter_name` of both experts."""
        low = {f"{prefix}.{k.removeprefix(LOW + '.')}": v for k, v in state.items() if k.startswith(LOW + ".")}
        high = {k: v for k, v in state.items() if not k.startswith(LOW + ".")}
        if high and not low:  # a one-transformer student would leave the low-noise times to the bare teacher
            raise ModelError(
                f"this student has no LoRA for the low-noise expert ({LOW_NOISE_LORA_FILE}), so it was not "
                "trained on a two-expert base (Wan2.2-A14B); use it on the base it was trained on"
            )
        for expert, part in ((self.transformer, high), (self.transformer_2, low)):
            if part:
                expert.load_lora_adapter(part, adapter_name=adapter_name, prefix=prefix, **kwargs)

    def delete_adapters(self, name: str) -> None:
        for expert in (self.transformer, self.transformer_2):
            if name in (getattr(expert, "peft_config", None) or {}):
                expert.delete_adapters(name)

    def enable_gradient_checkpointing(self) -> None:
        self.transformer.enable_gradient_checkpointing()
        self.transformer_2.enable_gradient_checkpointing()

    def teacher_guidance(self, t, guidance: float):
        """The teacher's CFG scale at time t in [0, 1] (a float, or a tensor of per-sample times: a tensor
        shaped to broadcast over a video batch)."""
        low = guidance if self.guidance_2 is None else self.guidance_2
        if not torch.is_tensor(t) or t.ndim == 0:
            return guidance if float(t) * 1000.0 >= self.boundary_timestep else low
        scale = torch.where(self.high_noise(t * 1000.0).to(t.device), guidance, low)
        return scale.view(-1, *([1] * 4)).to(torch.float32)


def networks_of(transformer) -> list:
    """The networks that hold a base's blocks: both experts of a two-expert base, else the one network."""
    return [transformer.transformer, transformer.transformer_2] if isinstance(transformer, Experts) else [transformer]


def _rows(value, index: torch.Tensor):
    """The rows `index` of a per-sample tensor; anything else (a scalar timestep, None, a flag) as it is."""
    if torch.is_tensor(value) and value.ndim > 0 and value.shape[0] > 1:
        return value.index_select(0, index.to(value.device))
    return value


def two_experts(pipe) -> Experts | None:
    """The pipeline's experts as one network, or None for a one-transformer pipeline (Wan2.1, Wan2.2-5B)."""
    if getattr(pipe, "transformer_2", None) is None:
        return None
    ratio = pipe.config.get("boundary_ratio") if hasattr(pipe.config, "get") else None
    if ratio is None:
        raise ValueError(
            "the pipeline has a second transformer (transformer_2) but no boundary_ratio in its model_index.json, "
            "so when to switch experts is not known; set boundary_ratio (Wan2.2-T2V-A14B: 0.875, I2V-A14B: 0.9)"
        )
    return Experts(pipe.transformer, pipe.transformer_2, ratio)


def teacher_guidance(transformer, t, guidance: float):
    """The teacher's CFG at time t: `guidance` for one transformer, the owning expert's for Experts."""
    return transformer.teacher_guidance(t, guidance) if isinstance(transformer, Experts) else guidance


def split_experts_state(state: dict[str, torch.Tensor]) -> tuple[dict, dict]:
    """An Experts adapter's state dict (keys 'transformer.blocks...', 'transformer_2.blocks...') as each
    expert's own (keys 'blocks...'), the high-noise expert's first."""
    high = {k.removeprefix(HIGH + "."): v for k, v in state.items() if k.startswith(HIGH + ".")}
    low = {k.removeprefix(LOW + "."): v for k, v in state.items() if k.startswith(LOW + ".")}
    return high, low


def has_low_noise_lora(folder: str | Path) -> bool:
    return (Path(folder) / LOW_NOISE_LORA_FILE).is_file()


def check_experts_run(task: str, t_list, world: int, boundary: float, log) -> None:
    """What a two-expert base does not train yet, refused before any work: the causal student (its attention
    is installed on one transformer) and several processes (DDP wants every adapter weight used in each
    backward, and a batch whose student times all fall on one side of the boundary leaves the other
    expert's LoRA out). A t_list on one side of the boundary is allowed but noted: one expert then learns."""
    if task == "ar":
        raise ValueError("task ar (the causal student) is not available on a two-expert base; use t2v or i2v")
    if world > 1:
        raise ValueError(
            f"a two-expert base trains in one process (this run has {world}); "
            "launch it with plain `python -m engine distill`"
        )
    if len({t >= boundary for t in t_list[:-1]}) == 1:
        log(f"note: every student time of t_list {t_list} is on one side of the experts' boundary {boundary}")
