"""The plan checked against reality: one stage of a plan's spec run for real, with real tensors and
torch's own attention kernel, and its peak measured. On a GPU: torch.cuda.max_memory_allocated. On a CPU:
the process's peak resident memory (VmHWM, reset through /proc/self/clear_refs) in a fresh process whose
allocator returns every large block to the system at once (MALLOC_MMAP_THRESHOLD_), so that the peak seen
is the peak of live tensors. Both give the stage's increment over what was resident when it started."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from transformers import UMT5Config, UMT5EncoderModel

from ..distill.adapters import Adapters
from ..distill.base_int8 import quantize_blocks
from ..distill.block_swap import BlockSwap
from . import stages
from .planner import _Run
from .spec import BASES, UMT5_XXL, PlanSpec


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} missing from /proc/self/status")


def measure_stage(spec, name: str, device: str = "cpu", timing: dict | None = None) -> int:
    """Bytes the stage `name` of `spec` adds at its peak over what was resident before it, run for real
    (with spec.block_swap, through the engine's BlockSwap); on a GPU, `timing` gets the stage's "seconds"
    and the "transfer_bytes" block swap copied in it."""

    dtype = torch.bfloat16 if spec.precision == "bf16" else torch.float32
    run = _Run(spec, dtype)
    run.counter = _NoCounter()
    run.transformer, run.adapters, run.vae, run.text_encoder = _real_models(spec, dtype, name, device)
    swap = BlockSwap(run.transformer, spec.block_swap, device) if spec.block_swap else None
    run.opt_student = _adamw_real(run.adapters.parameters(stages.STUDENT))
    run.opt_fake = _adamw_real(run.adapters.parameters(stages.FAKE))
    with torch.device(device):
        run.inputs = stages.Inputs(spec, dtype)
    if device.startswith("cuda"):
        run.autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
    fn = getattr(stages, name)
    with torch.device(device):
        fn(run)  # once first: lazy allocations (thread pools, kernel workspaces) are not the stage's
        if swap is not None and swap.resident is not None:  # as planned: every swapped block on the host
            swap.offload(swap.resident)
        loaded = swap.loaded_bytes if swap is not None else 0
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            started = time.perf_counter()
            fn(run)
            torch.cuda.synchronize()
            if timing is not None:
                timing["seconds"] = time.perf_counter() - started
                timing["transfer_bytes"] = (swap.loaded_bytes if swap is not None else 0) - loaded
            return torch.cuda.max_memory_allocated() - before
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status("VmRSS")
        fn(run)
        return _status("VmHWM") - before


def measure_in_subprocess(spec_dict: dict, name: str, extra_bases: dict | None = None, timeout: float = 600) -> int:
    """measure_stage in a fresh CPU process (its own allocator settings, nothing else resident)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0", OMP_NUM_THREADS="1")
    payload = json.dumps({"spec": spec_dict, "stage": name, "bases": extra_bases or {}})
    out = subprocess.run(
        [sys.executable, "-m", "engine.plan.measure"],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"measuring {name} failed: {out.stderr[-2000:]}")
    return int(out.stdout.strip().splitlines()[-1])


class _NoCounter:
    def labelled(self, part):
        return contextlib.nullcontext()

    def add(self, tensor, part):
        pass


def _real_models(spec, dtype, name, device):

    transformer_cfg, vae_cfg = spec.configs()[:2]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = WanTransformer3DModel(**transformer_cfg)
            vae = AutoencoderKLWan(**(vae_cfg or {})) if name in ("latent_encoding", "preview_decode") else None
            text = UMT5EncoderModel(UMT5Config(**spec_text(spec, UMT5_XXL))) if name == "text_encoding" else None
    finally:
        torch.set_default_dtype(previous)
    if spec.base_int8:  # as the trainer does: quantized before the adapters, which peft then wraps around it
        quantize_blocks(transformer)
    adapters = Adapters(transformer, spec.rank)
    adapters.keep_float32()
    if spec.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    return transformer, adapters, vae, text


def spec_text(spec, default: dict) -> dict:
    return getattr(spec, "text_config", None) or default


def _adamw_real(params):

    opt = torch.optim.AdamW(params, lr=1e-4, foreach=False)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt


def _main() -> None:

    request = json.loads(sys.stdin.read())
    for base, value in request["bases"].items():
        BASES[base] = tuple(value)
    spec = PlanSpec(**request["spec"]).check()
    print(measure_stage(spec, request["stage"]))


if __name__ == "__main__":
    _main()
