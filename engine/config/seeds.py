"""Seed lists as users type them: '3', '1-8', '1,4,9' (torch-free: the jobs CLI parses them)."""

from __future__ import annotations

MAX_SEEDS = 256


def parse_seeds(text: str) -> list[int]:
    """'1-8' -> [1..8]; '3' -> [3]; '1,4,9' -> [1, 4, 9]. Raises ValueError with a one-line reason."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                low, high = (int(end) for end in part.split("-", 1))
                if high < low:
                    raise ValueError(f"bad seed range {part!r}: the end is before the start")
                if high - low >= MAX_SEEDS:
                    raise ValueError(f"too many seeds in {part!r}; at most {MAX_SEEDS}")
                seeds += range(low, high + 1)
            else:
                seeds.append(int(part))
        except ValueError as err:
            if "seed" in str(err):
                raise
            raise ValueError(f"bad seeds {text!r}: use a number (3), a range (1-8) or a list (1,4,9)") from None
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"bad seeds {text!r}: seeds must be non-negative integers")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"too many seeds ({len(seeds)}); at most {MAX_SEEDS}")
    return seeds
