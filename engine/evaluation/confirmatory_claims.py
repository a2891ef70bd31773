"""The confirmatory study's verdicts in words (docs/results/preregistration.md): what held and what did not,
each with its difference, interval or bound and p, read from docs/results/study-confirm.json through the
pre-registered analysis (confirmatory.py), for the README's "What it shows" block and docs/results.md.
Torch-free, like claims.py."""

from __future__ import annotations

import json
from pathlib import Path

from .confirmatory import PREREGISTERED_SEEDS, confirmatory

CONFIRM = "study-confirm.json"  # written by the pre-registered command (docs/results/preregistration.md)


def load_confirmatory(folder: Path) -> dict | None:
    """The confirmatory study's JSON, or None while it has not been run (or not on the pre-registered seeds)."""
    path = Path(folder) / CONFIRM
    if not path.is_file():
        return None
    study = json.loads(path.read_text())
    if tuple(study.get("training_seeds", ())) != PREREGISTERED_SEEDS:
        return None
    return study


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3f}"


def _endpoint(e: dict) -> str:
    p = _p(e["p"]) + (f", Holm {_p(e['p_holm'])}" if e.get("p_holm") is not None else "")
    return f"{e['id']} {e['claim']}: {e['text']} (p {p})"


def confirmatory_words(study: dict) -> list[str]:
    """A paragraph and three bullets: the primary endpoints in their fixed sequence, then the secondary
    family's held and not-held endpoints."""
    found = confirmatory(study)
    primary = []
    for e in found["primary"]:
        verdict = "held" if e["held"] else "not held" if e["tested"] else "not tested (the sequence stopped)"
        primary.append(f"{_endpoint(e)}, {verdict}")
    held = [_endpoint(e) for e in found["secondary"] if e["held"]]
    # the claims of the rest are in docs/results.md's table: here their figures, to keep the README short
    not_held = [f"{e['id']} {e['text']} (Holm p {_p(e['p_holm'])})" for e in found["secondary"] if not e["held"]]
    seeds = f"{PREREGISTERED_SEEDS[0]}-{PREREGISTERED_SEEDS[-1]}"
    return [
        f"Confirmatory, pre-registered before its runs (`docs/results/preregistration.md`; fresh training seeds "
        f"{seeds}, one-sided paired tests at 0.05; the figures above, from seeds 0-4, are exploratory):",
        "- Primary: " + "; ".join(primary) + ".",
        f"- Secondary held (Holm over {len(found['secondary'])}): " + ("; ".join(held) if held else "none") + ".",
        "- Secondary not held (claims in `docs/results.md`): " + ("; ".join(not_held) if not_held else "none") + ".",
    ]
