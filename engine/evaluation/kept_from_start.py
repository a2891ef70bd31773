"""How far post-training moves a student's draws: the share of clips whose recognized factor (the motion, say)
a post-trained student keeps from the student it started from. The evaluation gives every model the same
prompts, first frames and sampling seeds, so clip k of a prompt is the same noise for both; a post-training
can change a factor's mix by no more than the share of clips whose factor it changes. Read from a
study's records or run folder (seed*/<run>/eval.json). Torch-free."""

from __future__ import annotations

import json
from pathlib import Path

from ..shapes.world import parse_caption


class KeptError(ValueError):
    """A folder that holds no evaluation of the runs asked for."""


def _clips(run: Path, factor: str) -> dict[str, list[str]]:
    """The run's recognized `factor` per clip, for the prompts that leave it free."""
    path = run / "eval.json"
    if not path.is_file():
        raise KeptError(f"{path}: no evaluation there; run the study (or copy its records) first")
    per_prompt = json.loads(path.read_text()).get("per_prompt", {})
    models = [k for k in per_prompt if k != "real"]
    if len(models) != 1:
        raise KeptError(f"{path}: expected one evaluated model beside 'real', found {models or 'none'}")
    return {
        prompt: [clip[factor] for clip in readings.get("clip_factors", [])]
        for prompt, readings in per_prompt[models[0]].items()
        if factor not in parse_caption(prompt) and readings.get("clip_factors")
    }


def _by_chance(before: list[str], after: list[str]) -> float:
    """Clips expected to agree if `after` drew its clips' factors afresh from its own mix, unpaired."""
    n = len(before)
    return sum(before.count(v) * after.count(v) for v in set(before)) / n if n else 0.0


def kept_from_start(folder: str | Path, name: str, factor: str = "motion", start: str = "dmd2") -> dict[int, tuple]:
    """Training seed -> (clips whose `factor` `name` reads as `start` does, clips compared, clips that would
    agree by chance: the same two mixes per prompt, unpaired), over the prompts that leave the factor free.
    A seed lacking either run is left out; none at all is a KeptError."""
    kept = {}
    for seed_dir in sorted(Path(folder).glob("seed*")):
        if not (seed_dir / start).is_dir() or not (seed_dir / name).is_dir():
            continue
        before, after = _clips(seed_dir / start, factor), _clips(seed_dir / name, factor)
        shared = [p for p in before if len(after.get(p, [])) == len(before[p])]
        same = sum(a == b for p in shared for a, b in zip(before[p], after[p]))
        chance = sum(_by_chance(before[p], after[p]) for p in shared)
        kept[int(seed_dir.name.removeprefix("seed"))] = (same, sum(len(before[p]) for p in shared), chance)
    if not kept:
        raise KeptError(f"{folder}: no seed*/ folder holds both '{start}' and '{name}'")
    return kept
