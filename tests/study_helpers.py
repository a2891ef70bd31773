"""What the study tests build their inputs from."""

from __future__ import annotations


def evaluate_result(models: dict[str, dict[str, float]], regime: str = "detailed") -> dict:
    """An evaluate result with the given regime's metrics per model name."""
    return {"models": {name: {"nfe": 4, "by_regime": {regime: dict(metrics)}} for name, metrics in models.items()}}
