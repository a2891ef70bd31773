"""The dtype a published LoRA is stored in. The trainer saves fp32 (what it trained); users of a bf16 or
fp16 base expect the adapter in that dtype (half the download). Only a staged copy is converted."""

from __future__ import annotations

import os
from pathlib import Path

DTYPES = ("fp32", "bf16", "fp16")


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} for the LoRA weights; use one of {', '.join(DTYPES)}")
    return dtype


def convert_weights(path: str | Path, dtype: str) -> Path:
    """Rewrite a safetensors file with its floating-point tensors cast to `dtype`, in place and
    atomically, keeping the file's metadata; integer tensors and fp32 requests are left as they are."""
    import torch  # torch: only when a dtype is converted, so publishing stays light
    from safetensors import safe_open
    from safetensors.torch import save_file

    target = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[check_dtype(dtype)]
    path = Path(path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    if all(t.dtype == target or not t.is_floating_point() for t in tensors.values()):
        return path
    cast = {key: t.to(target).contiguous() if t.is_floating_point() else t for key, t in tensors.items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file(cast, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path
