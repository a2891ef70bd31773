"""The confirmatory studies' verdicts in words: what held and what did not, each with its difference, interval
or bound and p, read from docs/results/study-confirm.json (text-to-video, docs/results/preregistration.md) and
docs/results/study-i2v-mixed.json (image-to-video, docs/results/preregistration-i2v.md) through their
pre-registered analyses (confirmatory.py), for the README's "What it shows" block. Torch-free, like claims.py."""

from __future__ import annotations

import json
from pathlib import Path

from .confirmatory import TEXT_TO_VIDEO, Preregistration, confirmatory

CONFIRM = "study-confirm.json"  # written by the pre-registered command (docs/results/preregistration.md)
I2V_CONFIRM = "study-i2v-mixed.json"  # the same for docs/results/preregistration-i2v.md


def load_confirmatory(folder: Path, name: str = CONFIRM, plan: Preregistration = TEXT_TO_VIDEO) -> dict | None:
    """A confirmatory study's JSON, or None while it has not been run (or not on its pre-registered seeds)."""
    path = Path(folder) / name
    if not path.is_file():
        return None
    study = json.loads(path.read_text())
    if tuple(study.get("training_seeds", ())) != plan.seeds:
        return None
    return study


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3f}"


def _endpoint(e: dict) -> str:
    p = _p(e["p"]) + (f", Holm {_p(e['p_holm'])}" if e.get("p_holm") is not None else "")
    return f"{e['id']} {e['claim']}: {e['text']} (p {p})"


def confirmatory_words(study: dict, plan: Preregistration = TEXT_TO_VIDEO, intro: str | None = None) -> list[str]:
    """A paragraph (intro, or the text-to-video one) and three bullets: the primary endpoints in their fixed
    sequence, then the secondary family's held and not-held endpoints."""
    found = confirmatory(study, plan)
    primary = []
    for e in found["primary"]:
        verdict = "held" if e["held"] else "not held" if e["tested"] else "not tested (the sequence stopped)"
        primary.append(f"{_endpoint(e)}, {verdict}")
    held = [_endpoint(e) for e in found["secondary"] if e["held"]]
    # the claims of the rest are in docs/results.md's table: here their figures, to keep the README short
    not_held = [f"{e['id']} {e['text']} (Holm p {_p(e['p_holm'])})" for e in found["secondary"] if not e["held"]]
    seeds = f"{plan.seeds[0]}-{plan.seeds[-1]}"
    return [
        intro
        or f"Confirmatory, pre-registered before its runs (`{plan.document}`; fresh training seeds "
        f"{seeds}, one-sided paired tests at 0.05; the figures above, from seeds 0-4, are exploratory):",
        "- Primary: " + "; ".join(primary) + ".",
        f"- Secondary held (Holm over {len(found['secondary'])}): " + ("; ".join(held) if held else "none") + ".",
        "- Secondary not held (claims in `docs/results.md`): " + ("; ".join(not_held) if not_held else "none") + ".",
    ]
