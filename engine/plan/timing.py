"""Step time from FLOPs: a plan's FLOPs per step over a named GPU's peak dense bf16 throughput at a stated
model FLOPs utilisation (MFU). Peak figures are the vendors' datasheet numbers for dense bf16 tensor-core
math with fp32 accumulation (no sparsity): NVIDIA H100 SXM5 and H200 SXM datasheets (989 TFLOPS), A100
SXM4 datasheet (312), L40S datasheet (362), GeForce RTX 4090 in NVIDIA's Ada Lovelace architecture
whitepaper, appendix table (165.2 with fp32 accumulate)."""

from __future__ import annotations

# name -> (peak dense bf16 TFLOPS, memory in GiB as torch.cuda.mem_get_info reports a whole card)
GPUS = {
    "H100": (989.4, 79.1),
    "H200": (989.4, 139.8),
    "A100": (312.0, 79.1),
    "L40S": (362.0, 44.4),
    "4090": (165.2, 23.6),
}
DEFAULT_MFU = 0.40  # the MFU this project's GPU check targets for the student and fake-score updates


def step_seconds(flops: float, gpu: str, mfu: float = DEFAULT_MFU) -> float:
    """Seconds for `flops` on `gpu` at `mfu` of its peak."""
    if gpu not in GPUS:
        raise ValueError(f"--gpu {gpu!r}: choose one of {', '.join(GPUS)}")
    if not 0 < mfu <= 1:
        raise ValueError(f"--mfu {mfu}: give a fraction in (0, 1], e.g. 0.4")
    return flops / (GPUS[gpu][0] * 1e12 * mfu)
