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
# name -> host link bandwidth in GB/s (1e9 bytes), one direction: PCIe 5.0 x16 for H100/H200 SXM, PCIe 4.0 x16
# for A100, L40S and 4090, the PCI-SIG nominal rate after encoding. Block swap's copies are timed at it: a
# lower bound, pinned host-to-device copies reach less than the nominal rate.
LINK_GBPS = {"H100": 63.0, "H200": 63.0, "A100": 31.5, "L40S": 31.5, "4090": 31.5}
DEFAULT_MFU = 0.40  # the MFU this project's GPU check targets for the student and fake-score updates


def step_seconds(flops: float, gpu: str, mfu: float = DEFAULT_MFU) -> float:
    """Seconds for `flops` on `gpu` at `mfu` of its peak."""
    if gpu not in GPUS:
        raise ValueError(f"--gpu {gpu!r}: choose one of {', '.join(GPUS)}")
    if not 0 < mfu <= 1:
        raise ValueError(f"--mfu {mfu}: give a fraction in (0, 1], e.g. 0.4")
    return flops / (GPUS[gpu][0] * 1e12 * mfu)


def transfer_seconds(nbytes: float, gpu: str) -> float:
    """Seconds to copy `nbytes` from host to `gpu` at its link's nominal rate (block swap: not overlapped)."""
    return nbytes / (LINK_GBPS[gpu] * 1e9)
