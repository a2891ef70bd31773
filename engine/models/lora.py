"""A student's LoRA file on a base model: reading it (diffusers' format, or another Wan format that
diffusers converts), refusing one that does not fit the base in one sentence, and switching which
adapter the base runs (`activate`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from peft.utils import get_peft_model_state_dict

from .experts import LOW, LOW_NOISE_LORA_FILE
from .names import ModelError
from .students import LORA_FILE


class LoraMismatch(ValueError):
    """LoRA weights whose layers are not this model's (made for another base); the message says how."""


def wrong_base(lora_dir: str | Path, base: str, how: str = "its layers have other sizes") -> ModelError:
    """The one sentence for a student LoRA made for another base: how it does not fit, which base it was
    trained on."""
    meta = Path(lora_dir) / "lora_config.json"
    trained_on = json.loads(meta.read_text()).get("base") if meta.is_file() else None
    if trained_on and trained_on != base:
        fix = f"it was trained on {trained_on}, use that base"
    elif trained_on:
        fix = "its lora_config.json names this base, so the weights file is not the one that training wrote"
    else:
        fix = "use the base it was trained on"
    return ModelError(f"the student LoRA in {lora_dir} does not fit the base model {base}: {how}; {fix}")


def check_loaded(transformer, name: str, keys: list[str], lora_dir: str | Path, base: str) -> None:
    """Refuse a student whose tensors (`keys`, as given to diffusers) did not all land in adapter `name`:
    diffusers only logs the keys that match no layer (a format it does not convert, other module names),
    and sampling would then run a partial student, or none, without a word. The adapter is removed
    again before refusing."""
    path = Path(lora_dir) / LORA_FILE
    loaded = name in (getattr(transformer, "peft_config", None) or {})
    landed = set(get_peft_model_state_dict(transformer, adapter_name=name)) if loaded else set()
    # One transformer's adapter keys drop diffusers' 'transformer.' prefix; two experts' keep their expert's name.
    unmatched = [k for k in keys if k not in landed and k.removeprefix("transformer.") not in landed]
    if keys and not unmatched:
        return
    if loaded:
        transformer.delete_adapters(name)
    raise ModelError(
        f"{len(unmatched)} of the {len(keys)} tensors in {path} match no LoRA layer of the base model {base} "
        f"(e.g. {unmatched[0] if unmatched else 'none at all'!r}); give a LoRA of this base in diffusers' format "
        "(keys 'transformer.blocks.N...lora_A.weight', as pipe.save_lora_weights writes them) or ComfyUI's"
    )


def activate(transformer, name: str | None) -> None:
    """Run adapter `name` in every LoRA layer of `transformer`, or none (the frozen base) for None.

    The same per-layer calls as diffusers' enable_adapters() + set_adapter(name) / disable_adapters(),
    hence the same requires_grad flips, on a list of the LoRA layers kept on the transformer: diffusers
    walks every module and reads peft's installed version from its metadata on each call, ~10 ms a
    switch on a 2-core CPU, and training switches several times per step."""
    from peft.tuners.tuners_utils import BaseTunerLayer  # peft: only once a LoRA is loaded

    adapters = tuple(getattr(transformer, "peft_config", None) or ())
    cached = getattr(transformer, "_dfd_lora_layers", None)
    if cached is None or cached[0] != adapters:  # a new adapter may wrap layers no earlier one did
        cached = (adapters, [m for m in transformer.modules() if isinstance(m, BaseTunerLayer)])
        transformer._dfd_lora_layers = cached
    if not cached[1]:
        raise ValueError("this transformer has no LoRA adapter loaded")
    for layer in cached[1]:
        if name is None:
            layer.enable_adapters(False)
        else:
            layer.enable_adapters(True)
            layer.set_adapter(name)


def read_lora_file(folder: str | Path) -> dict[str, torch.Tensor]:
    """A student folder's LoRA file in diffusers' keys ('transformer.blocks...lora_A.weight'). diffusers
    converts the other formats it knows for Wan (the ComfyUI file we export, kohya-style files) on the way.
    A two-expert student (Wan2.2-A14B) adds its low-noise expert's file under keys 'transformer_2.blocks...'."""
    path = Path(folder) / LORA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no student LoRA at {folder} (expected {LORA_FILE})")
    state = _read_one(folder, LORA_FILE)
    if (Path(folder) / LOW_NOISE_LORA_FILE).is_file():
        low = _read_one(folder, LOW_NOISE_LORA_FILE)
        state.update({f"{LOW}.{k.removeprefix('transformer.')}": v for k, v in low.items()})
    return state


def _read_one(folder: str | Path, weight_name: str) -> dict[str, torch.Tensor]:
    from diffusers import WanPipeline  # diffusers' pipelines: only when a model is built or loaded

    path = Path(folder) / weight_name
    try:
        state = WanPipeline.lora_state_dict(str(folder), weight_name=weight_name)
    except (KeyError, ValueError, IndexError) as err:  # a format its converters half-recognise
        raise ModelError(
            f"{path} is not a LoRA of a Wan transformer that diffusers can read ({type(err).__name__}: {err})"
        ) from None
    return state[0] if isinstance(state, tuple) else state


def read_student_lora(folder: Path) -> dict[str, torch.Tensor]:
    """The student's LoRA state dict from a saved folder: peft keys without 'transformer.' for one
    transformer, or each expert's name first ('transformer.', 'transformer_2.') for two experts."""
    state = read_lora_file(folder)
    if (Path(folder) / LOW_NOISE_LORA_FILE).is_file():
        return state
    return {k.removeprefix("transformer."): v for k, v in state.items()}
