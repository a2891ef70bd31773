"""Keep freed memory inside the process while sampling on a CPU (glibc's mallopt).

By default glibc serves large blocks with fresh mmaps and hands freed memory at the top of the heap back
to the OS, so each of the sampler's short-lived activation and video tensors (megabytes each) faults
new pages in: on a 2-core machine, half of an 8-video decode's time. With the thresholds raised, freed
blocks are reused, and `python -m engine bench sampling` runs about 15% faster (docs/performance.md).
Training gains nothing measurable from it and holds 0.3-0.6 GB more, so only sampling asks for it.

Process-wide and permanent (malloc has one set of settings per process); a no-op where the C library
is not glibc. The cost is a resident size that stays at its high-water mark.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_SETTINGS = ((_M_MMAP_THRESHOLD, 256 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))
_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if they are set."""
    global _done
    if _done:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt): leave malloc as it is
        return False
    _done = all(mallopt(param, value) == 1 for param, value in _SETTINGS)
    return _done
