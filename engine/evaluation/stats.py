"""Confidence intervals for the training-seed study: is a variant's difference from the control resolved?

Every post-training run of a seed starts from that seed's DMD2 student, so a variant and the control are
paired by training seed. The interval is the paired t interval over seeds: the differences d_s = variant_s
- control_s of the seeds both ran, mean(d) +- t(0.975, n - 1) * sd(d) / sqrt(n). A bootstrap over seeds is
not used: with 3 to 5 seeds it has 10 to 126 distinct resamples and its percentile interval is too narrow.
A difference is resolved when its interval excludes 0. Against a reference without training seeds (a
teacher row), the same interval is taken over the variant's seeds minus the reference's one value.

When every seed's difference is the same value (a discrete metric, such as modes over a few prompts, can
do that on 3 seeds), sd(d) is 0 and the t interval has no width: it would call any such difference
resolved, though 3 equal values say nothing about how much seeds vary. Then the exact two-sided sign test
decides instead: n differences of one sign have p = 2 * 0.5^n, under 0.05 from n = 6 seeds on. The interval
is not shown for such a difference.
"""

from __future__ import annotations

import math

import numpy as np

# Two-sided 95% quantiles t(0.975, df) for df = 1..30 (beyond: the normal's 1.96 is within 0.04).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
LEVEL = 0.95


def t_quantile(df: int) -> float:
    """t(0.975, df): the half-width multiplier of a two-sided 95% interval."""
    if df < 1:
        raise ValueError(f"a t interval needs at least 2 values (df >= 1), got df {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def sign_test_p(n: int) -> float:
    """Two-sided exact sign-test p-value when all n nonzero differences have one sign."""
    return min(1.0, 2.0 * 0.5 ** n)


def t_interval(values: list[float]) -> dict:
    """Mean and 95% t interval of values (None for fewer than 2 finite values). Values that are all the same
    get no interval; the sign test says whether they are resolved (see the module's note)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) < 2:
        mean = float(v[0]) if len(v) else None
        return {"mean": mean, "low": None, "high": None, "n": int(len(v)), "resolved": False}
    if np.ptp(v) <= 1e-9 * max(1.0, float(np.abs(v).max())):  # equal but for float rounding (0.3 - 0.2 vs 0.1)
        mean = float(v[0])
        return {"mean": round(mean, 4), "low": None, "high": None, "n": int(len(v)), "all_equal": True,
                "resolved": bool(mean != 0 and sign_test_p(len(v)) < 1 - LEVEL)}
    half = t_quantile(len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v))
    mean = float(v.mean())
    return {"mean": round(mean, 4), "low": round(mean - half, 4), "high": round(mean + half, 4), "n": int(len(v)),
            "resolved": bool(mean - half > 0 or mean + half < 0)}


def paired_difference(variant: dict[int, float | None], control: dict[int, float | None]) -> dict:
    """Variant minus control over the training seeds both have a value for (seed -> value maps)."""
    seeds = sorted(s for s in variant if s in control and variant[s] is not None and control[s] is not None)
    out = t_interval([variant[s] - control[s] for s in seeds])
    out["seeds"] = seeds
    return out


def difference_from_value(variant: dict[int, float | None], value: float | None) -> dict:
    """Variant minus one fixed value (a reference row without training seeds)."""
    seeds = sorted(s for s, v in variant.items() if v is not None)
    if value is None:
        return {"mean": None, "low": None, "high": None, "n": 0, "resolved": False, "seeds": []}
    out = t_interval([variant[s] - value for s in seeds])
    out["seeds"] = seeds
    return out


def verdict(diff: dict, better: str) -> str:
    """In words: 'better', 'worse' (resolved at 95%) or 'not resolved'; `better` is 'higher' or 'lower'."""
    if diff.get("mean") is None or not diff.get("resolved"):
        return "not resolved"
    up = diff["mean"] > 0
    return "better" if up == (better == "higher") else "worse"


def interval_text(diff: dict, digits: int = 3) -> str:
    """'+0.123 [+0.010, +0.236]' (or the mean alone without an interval, '-' without a value)."""
    if diff.get("mean") is None:
        return "-"
    text = f"{diff['mean']:+.{digits}f}"
    if diff.get("low") is not None:
        text += f" [{diff['low']:+.{digits}f}, {diff['high']:+.{digits}f}]"
    elif diff.get("all_equal"):
        text += f" (the same on all {diff['n']} seeds: sign test)"
    return text
