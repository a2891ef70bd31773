"""Runs each stage of a run on fake tensors under the memory counter and FLOP counter, and returns the
plan: per stage the device peak and its parts, the host memory it needs, and the FLOPs."""

from __future__ import annotations

import contextlib
import functools
import gc
import time
from dataclasses import dataclass, field

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from ..distill.base_int8 import INT8_SCALE_BYTES
from ..distill.block_swap import BlockSwap
from ..models.experts import networks_of
from . import build, stages
from .attention import FLOPS, planned_attention
from .spec import COSMOS, EXPERTS, PlanSpec
from .tracker import PARTS, MemoryCounter, count_module

GiB = 2**30


@dataclass
class StagePlan:
    name: str
    peak: int  # bytes on one device
    parts: dict  # part -> bytes at the peak
    host: int  # bytes of host memory the stage needs
    flops: int  # FLOPs of the stage on one device
    resident: int = 0  # bytes already on the device when the stage starts (weights, adapters, state, batch)
    note: str = ""
    transfer: int = 0  # bytes copied from host to device during the stage (block swap)


@dataclass
class Plan:
    spec: PlanSpec
    stages: list[StagePlan] = field(default_factory=list)
    seconds: float = 0.0  # how long planning took

    def stage(self, name: str) -> StagePlan | None:
        return next((s for s in self.stages if s.name == name), None)

    def peak(self) -> int:
        """The run's device peak: its highest stage (text encoding runs once, before, and is then freed)."""
        return max((s.peak for s in self.stages if s.name != "text_encoding"), default=0)

    def step_flops(self) -> float:
        """Mean FLOPs of one training step: student_update_freq - 1 fake updates to one student update."""
        fake, student = self.stage("fake_update"), self.stage("student_update_dfd")
        if fake is None or student is None:
            return 0.0
        k = self.spec.student_update_freq
        return ((k - 1) * fake.flops + student.flops) / k

    def step_transfer(self) -> float:
        """Mean bytes copied host to device per training step (block swap), weighted as step_flops."""
        fake, student = self.stage("fake_update"), self.stage("student_update_dfd")
        if fake is None or student is None:
            return 0.0
        k = self.spec.student_update_freq
        return ((k - 1) * fake.transfer + student.transfer) / k

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "peak_bytes": self.peak(),
            "step_flops": self.step_flops(),
            "step_transfer_bytes": self.step_transfer(),
            "stages": [s.__dict__ for s in self.stages],
            "planning_seconds": round(self.seconds, 1),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        """The plan `to_dict` wrote (engine.plan.cache keeps plans so)."""
        stages_ = [StagePlan(**s) for s in data["stages"]]
        return cls(PlanSpec(**data["spec"]), stages_, data.get("planning_seconds", 0.0))


class _Run:
    """What a stage function sees: the networks, optimizers, inputs and the counter."""

    def __init__(self, spec, dtype):
        self.spec, self.dtype = spec, dtype
        self.counter = None

    def autocast(self):
        if self.dtype == torch.bfloat16:  # the trainer's forwards run under bf16 autocast on a bf16 base
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def make_plan(spec: PlanSpec, only: tuple[str, ...] | None = None) -> Plan:
    """The plan of `spec` (checked); `only`: the stages to plan (all by default)."""

    spec.check()
    wanted = [s for s in stages.STAGES if only is None or s in only]
    started = time.perf_counter()
    dtype = torch.bfloat16 if spec.precision == "bf16" else torch.float32
    run = _Run(spec, dtype)
    run.transformer, run.adapters = build.transformer_with_adapters(spec, dtype)
    swap = None
    vae_meta = build.vae(spec, dtype) if spec.vae else None
    # The data encodes every caption before any clip and the trainer frees the text encoder in between
    # (engine.distill.data.load_data's text_done): only the text-encoding stage holds it.
    text_meta = build.text_encoder(spec, dtype) if spec.text_encoder and "text_encoding" in wanted else None
    plan = Plan(spec)
    with FakeTensorMode(allow_non_fake_inputs=True), planned_attention():
        build.to_fake(run.transformer)
        if spec.block_swap:
            swap = BlockSwap(run.transformer, spec.block_swap, "cpu")
        run.vae = build.to_fake(vae_meta) if vae_meta is not None else None
        run.text_encoder = build.to_fake(text_meta) if text_meta is not None else None
        run.opt_student = _adamw(run.adapters.parameters(stages.STUDENT))
        run.opt_fake = _adamw(run.adapters.parameters(stages.FAKE))
        run.inputs = stages.Inputs(spec, dtype)
        weights = _bytes(p for n, p in run.transformer.named_parameters() if "lora_" not in n)
        weights += swap.swapped_bytes() if swap is not None else 0
        vae_bytes = _bytes(run.vae.parameters()) if run.vae is not None else 0
        for name in wanted:
            if name in ("latent_encoding", "preview_decode") and run.vae is None:
                continue
            if name == "text_encoding" and run.text_encoder is None:
                continue

            counter = MemoryCounter()
            run.counter = counter
            loaded = 0
            if swap is not None:  # each stage starts with every swapped block on the host
                if swap.resident is not None:
                    swap.offload(swap.resident)
                swap.loading = functools.partial(counter.labelled, "weights")
                loaded = swap.loaded_bytes
            FLOPS["attention"] = 0
            flop_counter = FlopCounterMode(display=False)
            with counter:
                resident = (
                    [run.text_encoder]
                    if name == "text_encoding"
                    else [run.transformer] + ([run.vae] if run.vae is not None else [])
                )
                for module in resident:
                    count_module(counter, module)
                if name != "text_encoding":
                    for opt in (run.opt_student, run.opt_fake):
                        for state in opt.state.values():
                            for value in state.values():
                                if isinstance(value, torch.Tensor):
                                    counter.add(value, "lora_optimizer")
                    for value in vars(run.inputs).values():  # the batch is on the device before the stage
                        if isinstance(value, torch.Tensor):
                            counter.add(value, "activations")
                counter.reset_peak()
                resident_bytes = counter.total()
                with flop_counter, _no_cycle_collection():
                    getattr(stages, name)(run)
            host = _host_bytes(name, spec, run, weights, vae_bytes)
            parts = {p: int(counter.peak_parts[p]) for p in PARTS}
            plan.stages.append(
                StagePlan(
                    name,
                    int(counter.peak),
                    parts,
                    host,
                    int(flop_counter.get_total_flops() + FLOPS["attention"]),
                    resident=resident_bytes,
                    note=_note(spec, swap, name),
                    transfer=swap.loaded_bytes - loaded if swap is not None else 0,
                )
            )
            run.counter = None
    if spec.base_int8:
        _int8(plan, run)
    _shard(plan, spec, weights, run)
    plan.seconds = time.perf_counter() - started
    return plan


@contextlib.contextmanager
def _no_cycle_collection():
    """Python's cycle collector off while a stage runs, after one collection: a storage held in a reference
    cycle (autograd's graph makes some) is then freed at the stage's end rather than whenever the collector
    happens to run, so the same spec gives the same peak every time (with the collector on, the peak moved by
    one such storage between identical plans). A cycle's storage is thus counted as long as it could live."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _note(spec: PlanSpec, swap: BlockSwap | None, name: str) -> str:
    """What the stage's figures assume beyond the table: the two experts, Cosmos' text encoder, block swap."""
    notes = []
    if name == "text_encoding":
        if spec.base in COSMOS:
            notes.append("Qwen2.5-VL-7B with its vision tower; every layer's state kept, joined 100352 wide")
        return "; ".join(notes)
    if spec.base in EXPERTS:
        notes.append("both experts' weights and adapters on the device (as the engine loads them), one runs a forward")
    if swap is not None:
        notes.append(
            f"block swap: {spec.block_swap} blocks' weights ({swap.swapped_bytes() / GiB:.2f} GiB) on the host, "
            "one on the device at a time"
        )
    return "; ".join(notes)


def _int8(plan: Plan, run) -> None:
    """The blocks' Linear weights as torchao's Int8Tensor (DistillConfig.base_int8): 1 byte per parameter plus
    one fp32 scale per output row instead of the base's dtype. Counted from the parameter shapes rather than by
    quantizing under FakeTensorMode (torchao's quantize_ computes its scales from the values); the largest
    Linear's weight dequantized for its matmul is added as a temporary."""
    linears = [  # the base's Linears (peft's base_layer), not the adapters' lora_A/lora_B; both experts' blocks
        m
        for network in networks_of(run.transformer)
        for n, m in network.blocks.named_modules()
        if isinstance(m, torch.nn.Linear) and "lora_" not in n
    ]
    full = _bytes(m.weight for m in linears)
    stored = sum(m.weight.numel() + m.out_features * INT8_SCALE_BYTES for m in linears)
    widest = max(m.weight.numel() * m.weight.element_size() for m in linears)
    for s in plan.stages:
        if s.name == "text_encoding":
            continue
        s.parts["weights"] -= full - stored
        s.resident -= full - stored  # resident before the stage too: the stage's increment is unchanged by it
        s.parts["temporaries"] += widest
        s.peak += widest - (full - stored)
        s.note = "; ".join(
            filter(
                None,
                [
                    s.note,
                    f"int8 frozen base: block Linear weights {stored / GiB:.2f} GiB instead of {full / GiB:.2f}; "
                    "speed on a GPU unmeasured",
                ],
            )
        )


def _adamw(params):
    # Adam's two fp32 moments per LoRA parameter; created by one (fake) step so that every stage sees them.
    opt = torch.optim.AdamW(params, lr=1e-4, foreach=False)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt


def _host_bytes(name, spec, run, weights, vae_bytes) -> int:
    """Host memory: the weights of the stage's networks pass through it when loaded (safetensors to CPU,
    then to the device), plus the stage's pixels for encoding and decoding."""
    pixels = spec.frames * spec.height * spec.width * 3 * 4  # one clip as float32 before it moves
    if name == "text_encoding":
        return _bytes(run.text_encoder.parameters())
    if name in ("latent_encoding", "preview_decode"):
        return max(weights, vae_bytes) + pixels
    return weights


def _shard(plan: Plan, spec: PlanSpec, weights: int, run) -> None:
    """Per-device figures under DDP or FSDP2 over spec.gpus processes (batch is per process either way).
    DDP adds a bucket copy of the trained adapter's gradients; FSDP2 holds 1/N of the frozen weights plus
    two whole blocks (the one running and the one prefetched); the adapters and their state stay whole."""
    if spec.sharding == "none" or spec.gpus == 1:
        return
    blocks = run.transformer.blocks
    block = _bytes(p for n, p in blocks[0].named_parameters() if "lora_" not in n)
    lora = _bytes(run.adapters.parameters(stages.STUDENT))
    for s in plan.stages:
        if s.name == "text_encoding":
            continue
        if spec.sharding == "ddp":
            extra = lora * 2 if s.name in stages.TRAINING else 0
            s.parts["temporaries"] += extra
            s.peak += extra
            s.note = "; ".join(filter(None, [s.note, "DDP: + a gradient bucket copy"]))
        else:
            saved = weights - (weights // spec.gpus + 2 * block)  # the adapters stay whole (engine.distill.sharding)
            s.parts["weights"] -= saved
            s.peak -= saved
            s.note = f"FSDP2 over {spec.gpus}: 1/{spec.gpus} of the weights + 2 gathered blocks"
