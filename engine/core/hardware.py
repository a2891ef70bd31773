"""Whether this machine has an accelerator, judged without importing torch, so the worker and a web
page can ask cheaply."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

_DEVICE_NODES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")


def accelerator_present() -> bool:
    """Whether this machine has a GPU (CUDA, ROCm, WSL's, or Apple silicon's MPS)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if sys.platform == "darwin" and platform.machine() == "arm64":  # Apple silicon (MPS)
        return True
    return any(Path(node).exists() for node in _DEVICE_NODES)
