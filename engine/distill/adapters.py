"""One frozen backbone, two LoRA adapters: `student` (the few-step generator) and `fake` (the fake
score). The teacher is the backbone with adapters disabled. This is what lets a 1.3B video model
distill on one GPU: one copy of the weights instead of three.

TRAP: peft's set_adapter / disable_adapters flip requires_grad on LoRA parameters. Switching
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

from ..models.experts import LOW_NOISE_COMFY_FILE, LOW_NOISE_LORA_FILE, Experts, split_experts_state
from ..models.folders import written_files
from ..models.lora import LoraMismatch, activate
from ..models.students import COMFY_FILE, LORA_FILE

STUDENT, FAKE = "student", "fake"
FAKE_FILE = "fake_score.safetensors"  # the fake score that tracked this student: DFD post-training resumes it
# Attention and MLP of every block: Wan names its MLP `ffn`, Cosmos-Predict2.5 `ff` (peft matches a whole
# name part, so neither pair touches the other's blocks).
TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2", "ff.net.0.proj", "ff.net.2"]


class Adapters:
    """The student and fake-score adapters on one frozen WanTransformer3DModel, or on both experts of a
    two-expert base (engine/models/experts.py: each adapter is then one LoRA per expert)."""

    def __init__(self, transformer, rank: int, alpha: float | None = None):
        self.transformer = transformer
        self.rank = rank
        self.config = LoraConfig(
            r=rank, lora_alpha=alpha or rank, target_modules=TARGET_MODULES, init_lora_weights=True
        )
        transformer.requires_grad_(False)
        with warnings.catch_warnings():  # peft warns about a second adapter: two adapters is the design
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            # on an int8 base (base_int8) peft warns that merge() cannot work: the engine never merges adapters
            warnings.filterwarnings("ignore", message="TorchaoLoraLinear was instantiated without")
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
        return {
            k: v.detach().cpu().contiguous()
            for k, v in get_peft_model_state_dict(self.transformer, adapter_name=name).items()
        }

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


def save_student_lora(adapters: Adapters, out: Path, extra: dict | None = None) -> Path:
    """Write the student adapter in diffusers format (WanPipeline.load_lora_weights reads it) and a
    ComfyUI-style export beside it."""
    from diffusers import WanPipeline  # diffusers' pipelines: only when a student is saved

    state = adapters.state_dict(STUDENT)
    # Two experts (Wan2.2-A14B): one diffusers file per expert, as pipe.load_lora_weights takes each
    # (transformer_2's with load_into_transformer_2=True); their keys are each expert's own.
    files = [(state, LORA_FILE, COMFY_FILE)]
    if isinstance(adapters.transformer, Experts):
        high, low = split_experts_state(state)
        files = [(high, LORA_FILE, COMFY_FILE), (low, LOW_NOISE_LORA_FILE, LOW_NOISE_COMFY_FILE)]
    # All files land at once, the diffusers file (what makes a folder a student) last: a crash or a full disk
    # while saving leaves no half-written LoRA where a finished one is expected.
    with written_files(out, last=(LORA_FILE,)) as tmp:
        for layers, weight_name, comfy_name in files:
            WanPipeline.save_lora_weights(
                tmp,
                transformer_lora_layers=layers,
                weight_name=weight_name,
                transformer_lora_adapter_metadata=_metadata(adapters.config),
            )
            save_file(to_comfyui(layers, adapters.config.lora_alpha), tmp / comfy_name)
        save_file(adapters.state_dict(FAKE), tmp / FAKE_FILE)
        (tmp / "lora_config.json").write_text(
            json.dumps(
                {
                    "rank": adapters.rank,
                    "alpha": adapters.config.lora_alpha,
                    "target_modules": TARGET_MODULES,
                    **_experts_info(adapters.transformer),
                    **(extra or {}),
                },
                indent=2,
            )
        )
    return Path(out)


def _experts_info(transformer) -> dict:
    """What a sampler and a card need of a two-expert student: where its experts switch, its second file."""
    if not isinstance(transformer, Experts):
        return {}
    return {"boundary_ratio": transformer.boundary_ratio, "low_noise_lora": LOW_NOISE_LORA_FILE}


def _metadata(config: LoraConfig) -> dict:
    meta = config.to_dict()
    meta["target_modules"] = sorted(meta["target_modules"]) if meta.get("target_modules") else TARGET_MODULES
    return {k: v for k, v in meta.items() if isinstance(v, (int, float, str, bool, list)) or v is None}


def read_fake_score(folder: Path) -> dict[str, torch.Tensor] | None:
    """The fake-score adapter saved beside a student, if any (students uploaded from elsewhere have none)."""
    path = Path(folder) / FAKE_FILE
    return load_file(path) if path.is_file() else None


# Diffusers module names -> the original Wan names that ComfyUI's Wan loader uses.
_COMFY_NAMES = {
    "attn1.to_q": "self_attn.q",
    "attn1.to_k": "self_attn.k",
    "attn1.to_v": "self_attn.v",
    "attn1.to_out.0": "self_attn.o",
    "attn2.to_q": "cross_attn.q",
    "attn2.to_k": "cross_attn.k",
    "attn2.to_v": "cross_attn.v",
    "attn2.to_out.0": "cross_attn.o",
    "ffn.net.0.proj": "ffn.0",
    "ffn.net.2": "ffn.2",
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
