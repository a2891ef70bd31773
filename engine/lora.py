"""One frozen backbone, two LoRA adapters: `student` (the few-step generator) and `fake` (the fake
score). The teacher is the backbone with adapters disabled. This is what lets a 1.3B video model
distill on one GPU: one copy of the weights instead of three.

TRAP (snags.md): peft's set_adapter / disable_adapters flip requires_grad on LoRA parameters. Switching
adapters between the student's forward and its backward silently leaves the student without
gradients, so `Adapters.use(...)` is the only way to switch, and the trainer re-activates the student
before calling backward().
"""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

from .config import COMFY_FILE, LORA_FILE
from .model_names import ModelError

STUDENT, FAKE = "student", "fake"
FAKE_FILE = "fake_score.safetensors"  # the fake score that tracked this student: DFD post-training resumes it
TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"]


class Adapters:
    """The student and fake-score adapters on one frozen WanTransformer3DModel."""

    def __init__(self, transformer, rank: int, alpha: float | None = None):
        self.transformer = transformer
        self.rank = rank
        self.config = LoraConfig(
            r=rank, lora_alpha=alpha or rank, target_modules=TARGET_MODULES, init_lora_weights=True
        )
        transformer.requires_grad_(False)
        with warnings.catch_warnings():  # peft warns about a second adapter: two adapters is the design
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            transformer.add_adapter(self.config, adapter_name=STUDENT)
            transformer.add_adapter(self.config, adapter_name=FAKE)
        self.active = None
        self.use(STUDENT)

    def keep_float32(self) -> None:
        """Hold both adapters in fp32 whatever the base's dtype (forwards then run under autocast)."""
        for n, p in self.transformer.named_parameters():
            if "lora_" in n and p.dtype != torch.float32:
                p.data = p.data.float()

    def parameters(self, name: str) -> list[torch.nn.Parameter]:
        """The LoRA parameters of one adapter (what its optimizer may touch)."""
        return [p for n, p in self.transformer.named_parameters() if f".{name}." in n and "lora_" in n]

    def use(self, name: str | None) -> None:
        """Make `student`, `fake` or the teacher (None) the network that the next forward runs."""
        if name == self.active:
            return
        activate(self.transformer, name)
        self.active = name

    @contextmanager
    def teacher(self):
        """Run the frozen backbone alone, then return to the adapter that was active."""
        previous = self.active
        self.use(None)
        try:
            yield
        finally:
            self.use(previous)

    @contextmanager
    def using(self, name: str):
        previous = self.active
        self.use(name)
        try:
            yield
        finally:
            self.use(previous)

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.transformer, adapter_name=name).items()}

    def load_state_dict(self, name: str, state: dict[str, torch.Tensor]) -> None:
        try:
            result = set_peft_model_state_dict(self.transformer, state, adapter_name=name)
        except RuntimeError as err:
            if "size mismatch" not in str(err):
                raise
            raise LoraMismatch("its layers have other sizes") from None
        unexpected = getattr(result, "unexpected_keys", None) or []
        if unexpected:
            raise LoraMismatch(f"{len(unexpected)} of its tensors match no layer (e.g. {unexpected[0]})")


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
    unmatched = [k for k in keys if k.removeprefix("transformer.") not in landed]
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
    from peft.tuners.tuners_utils import BaseTunerLayer

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


def save_student_lora(adapters: Adapters, out: Path, extra: dict | None = None) -> Path:
    """Write the student adapter in diffusers format (WanPipeline.load_lora_weights reads it) and a
    ComfyUI-style export beside it."""
    from diffusers import WanPipeline

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = adapters.state_dict(STUDENT)
    WanPipeline.save_lora_weights(
        out, transformer_lora_layers=state, weight_name=LORA_FILE,
        transformer_lora_adapter_metadata=_metadata(adapters.config),
    )
    save_file(to_comfyui(state, adapters.config.lora_alpha), out / COMFY_FILE)
    save_file(adapters.state_dict(FAKE), out / FAKE_FILE)
    (out / "lora_config.json").write_text(json.dumps({"rank": adapters.rank, "alpha": adapters.config.lora_alpha,
                                                      "target_modules": TARGET_MODULES, **(extra or {})}, indent=2))
    return out


def _metadata(config: LoraConfig) -> dict:
    meta = config.to_dict()
    meta["target_modules"] = sorted(meta["target_modules"]) if meta.get("target_modules") else TARGET_MODULES
    return {k: v for k, v in meta.items() if isinstance(v, (int, float, str, bool, list)) or v is None}


def read_lora_file(folder: str | Path) -> dict[str, torch.Tensor]:
    """A student folder's LoRA file in diffusers' keys ('transformer.blocks...lora_A.weight'). diffusers
    converts the other formats it knows for Wan (the ComfyUI file we export, kohya-style files) on the way."""
    from diffusers import WanPipeline

    path = Path(folder) / LORA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no student LoRA at {folder} (expected {LORA_FILE})")
    try:
        state = WanPipeline.lora_state_dict(str(folder), weight_name=LORA_FILE)
    except (KeyError, ValueError, IndexError) as err:  # a format its converters half-recognise
        raise ModelError(f"{path} is not a LoRA of a Wan transformer that diffusers can read ({type(err).__name__}: {err})") from None
    return state[0] if isinstance(state, tuple) else state


def read_student_lora(folder: Path) -> dict[str, torch.Tensor]:
    """The student's LoRA state dict (peft keys, no 'transformer.' prefix) from a saved folder."""
    return {k.removeprefix("transformer."): v for k, v in read_lora_file(folder).items()}


def read_fake_score(folder: Path) -> dict[str, torch.Tensor] | None:
    """The fake-score adapter saved beside a student, if any (students uploaded from elsewhere have none)."""
    path = Path(folder) / FAKE_FILE
    return load_file(path) if path.is_file() else None


# Diffusers module names -> the original Wan names that ComfyUI's Wan loader uses.
_COMFY_NAMES = {
    "attn1.to_q": "self_attn.q", "attn1.to_k": "self_attn.k", "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o", "attn2.to_q": "cross_attn.q", "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v", "attn2.to_out.0": "cross_attn.o", "ffn.net.0.proj": "ffn.0", "ffn.net.2": "ffn.2",
}


def to_comfyui(state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft keys (blocks.N.attn1.to_q.lora_A.weight) -> ComfyUI keys
    (diffusion_model.blocks.N.self_attn.q.lora_down.weight, plus .alpha)."""
    out = {}
    for key, value in state.items():
        module, _, kind = key.rpartition(".lora_")
        name = module
        for ours, theirs in _COMFY_NAMES.items():
            if module.endswith(ours):
                name = module[: -len(ours)] + theirs
                break
        direction = "lora_down" if kind.startswith("A") else "lora_up"
        out[f"diffusion_model.{name}.{direction}.weight"] = value
        out[f"diffusion_model.{name}.alpha"] = torch.tensor(float(alpha))
    return out
