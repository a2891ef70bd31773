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

from ..shapes import world

# Two-sided 95% quantiles t(0.975, df) for df = 1..30 (beyond: the normal's 1.96 is within 0.04).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
LEVEL = 0.95
# One-sided 95% quantiles t(0.95, df) for df = 1..30 (beyond: the normal's 1.645): the bounds of TOST.
_T95 = (
    6.314,
    2.920,
    2.353,
    2.132,
    2.015,
    1.943,
    1.895,
    1.860,
    1.833,
    1.812,
    1.796,
    1.782,
    1.771,
    1.761,
    1.753,
    1.746,
    1.740,
    1.734,
    1.729,
    1.725,
    1.721,
    1.717,
    1.714,
    1.711,
    1.708,
    1.706,
    1.703,
    1.701,
    1.699,
    1.697,
)
ALPHA = 0.05  # each one-sided test of TOST, and the family-wise level of a Holm family


def t_quantile(df: int) -> float:
    """t(0.975, df): the half-width multiplier of a two-sided 95% interval."""
    if df < 1:
        raise ValueError(f"a t interval needs at least 2 values (df >= 1), got df {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def sign_test_p(n: int) -> float:
    """Two-sided exact sign-test p-value when all n nonzero differences have one sign."""
    return min(1.0, 2.0 * 0.5**n)


def t_interval(values: list[float]) -> dict:
    """Mean and 95% t interval of values (None for fewer than 2 finite values). Values that are all the same
    get no interval; the sign test says whether they are resolved (see the module's note)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) < 2:
        mean = float(v[0]) if len(v) else None
        return {"mean": mean, "low": None, "high": None, "n": int(len(v)), "resolved": False}
    if np.ptp(v) <= 1e-9 * max(1.0, float(np.abs(v).max())):  # equal but for float rounding (0.3 - 0.2 vs 0.1)
        mean = float(v[0])
        return {
            "mean": round(mean, 4),
            "low": None,
            "high": None,
            "n": int(len(v)),
            "all_equal": True,
            "resolved": bool(mean != 0 and sign_test_p(len(v)) < 1 - LEVEL),
        }
    half = t_quantile(len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v))
    mean = float(v.mean())
    return {
        "mean": round(mean, 4),
        "low": round(mean - half, 4),
        "high": round(mean + half, 4),
        "n": int(len(v)),
        "resolved": bool(mean - half > 0 or mean + half < 0),
    }


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


def one_sided_t_quantile(df: int) -> float:
    """t(0.95, df): the multiplier of a one-sided 95% bound (each test of TOST; a 90% two-sided interval)."""
    if df < 1:
        raise ValueError(f"a t bound needs at least 2 values (df >= 1), got df {df}")
    return _T95[df - 1] if df <= len(_T95) else 1.645


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: int) -> float:
    """P(T > t) for Student's t with df degrees of freedom (numpy has no t distribution; scipy is not a
    dependency)."""
    if df < 1:
        raise ValueError(f"Student's t needs df >= 1, got {df}")
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def _finite(values) -> np.ndarray:
    return np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)


def non_inferiority(diffs: list[float], margin: float, better: str = "higher") -> dict:
    """Is a variant no worse than its comparator by more than `margin`? `diffs` are the paired differences
    variant - comparator (one per training seed); `better` says which direction is good.

    One-sided t test of H0: the true difference is margin or more on the bad side, at ALPHA: non-inferior
    when the one-sided 95% bound (`bound`, the 90% interval's end on the bad side) is beyond -margin. When
    every difference is the same value the t test has no spread to go on: the exact one-sided sign test on
    the shifted differences decides (n of one sign: p = 0.5^n, under 0.05 from n = 5)."""
    if margin <= 0:
        raise ValueError(f"a non-inferiority margin must be positive (in the metric's units), got {margin}")
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    sign = 1.0 if better == "higher" else -1.0
    d = sign * _finite(diffs)  # now higher is better
    out = {
        "n": int(len(d)),
        "margin": margin,
        "better": better,
        "mean": None,
        "bound": None,
        "p": None,
        "non_inferior": False,
    }
    if len(d) < 2:
        return out
    mean = float(d.mean())
    out["mean"] = round(sign * mean, 4)
    if np.ptp(d) <= 1e-9 * max(1.0, float(np.abs(d).max())):
        out["p"] = 0.5 ** len(d) if mean > -margin else 1.0
        out["all_equal"] = True
    else:
        se = float(d.std(ddof=1)) / math.sqrt(len(d))
        low = mean - one_sided_t_quantile(len(d) - 1) * se
        out["bound"] = round(sign * low, 4)
        out["p"] = t_sf((mean + margin) / se, len(d) - 1)
    out["p"] = round(out["p"], 5)
    out["non_inferior"] = bool(out["p"] < ALPHA)
    return out


def equivalence(diffs: list[float], margin: float) -> dict:
    """TOST: is the paired difference inside +-margin? Both one-sided tests at ALPHA, i.e. the 90% t
    interval [low, high] lies inside (-margin, margin); p is the larger of the two one-sided p-values."""
    up, down = non_inferiority(diffs, margin, "higher"), non_inferiority(diffs, margin, "lower")
    p = None if up["p"] is None else max(up["p"], down["p"])
    return {
        "n": up["n"],
        "margin": margin,
        "mean": up["mean"],
        "low": up["bound"],
        "high": down["bound"],
        "p": p,
        "equivalent": bool(up["non_inferior"] and down["non_inferior"]),
    }


def paired_non_inferiority(variant: dict, control: dict, margin: float, better: str = "higher") -> dict:
    """non_inferiority over the training seeds both have a value for (seed -> value maps)."""
    seeds = sorted(s for s in variant if s in control and variant[s] is not None and control[s] is not None)
    out = non_inferiority([variant[s] - control[s] for s in seeds], margin, better)
    out["seeds"] = seeds
    return out


def paired_t_p(diffs: list[float], better: str | None = None) -> float | None:
    """p-value of the paired t test of mean difference 0: two-sided, or one-sided toward `better`."""
    d = _finite(diffs)
    if len(d) < 2:
        return None
    sd = float(d.std(ddof=1))
    if sd <= 1e-12:
        return sign_test_p(len(d)) / (2.0 if better else 1.0) if d.mean() != 0 else 1.0
    t = float(d.mean()) / (sd / math.sqrt(len(d)))
    if better is None:
        return min(1.0, 2.0 * t_sf(abs(t), len(d) - 1))
    return t_sf(t if better == "higher" else -t, len(d) - 1)


def holm(p_values: dict[str, float | None]) -> dict[str, float | None]:
    """Holm-adjusted p-values of a family (name -> p): the k-th smallest of m is multiplied by m - k + 1,
    kept monotone, capped at 1. An endpoint is rejected at family-wise ALPHA when its adjusted p < ALPHA.
    Missing p-values (None) stay None and do not count toward m."""
    named = sorted(((p, name) for name, p in p_values.items() if p is not None))
    m, running, out = len(named), 0.0, {name: None for name in p_values}
    for k, (p, name) in enumerate(named):
        running = max(running, min(1.0, (m - k) * p))
        out[name] = round(running, 6)
    return out


def bootstrap_mean(readings: dict[str, list[float]], draws: int = 2000, seed: int = 0) -> dict:
    """Mean over prompts of each prompt's mean reading, with a 95% percentile interval from a two-level
    bootstrap: prompts drawn with replacement, then each drawn prompt's clips (sampling seeds) drawn with
    replacement. A prompt with one reading (a per-prompt metric such as mode TV) varies only at the first
    level. The generator seed is fixed, so the interval is the same on every run."""
    groups = [_finite(v) for v in readings.values()]
    groups = [g for g in groups if len(g)]
    if not groups:
        return {"mean": None, "low": None, "high": None, "prompts": 0}
    rng = np.random.default_rng(seed)
    means = np.empty(draws)
    for i in range(draws):
        picks = rng.integers(0, len(groups), len(groups))
        means[i] = np.mean([groups[j][rng.integers(0, len(groups[j]), len(groups[j]))].mean() for j in picks])
    mean = float(np.mean([g.mean() for g in groups]))
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "mean": round(mean, 4),
        "low": round(float(low), 4),
        "high": round(float(high), 4),
        "prompts": len(groups),
        "clips": int(sum(len(g) for g in groups)),
        "draws": draws,
        "seed": seed,
    }


def clip_readings(per_prompt: dict[str, dict], metric: str, prompts: list[str] | None = None) -> dict[str, list]:
    """Per-clip readings of one model's evaluate rows (prompt -> row), for bootstrap_mean: all_named_correct
    and prompt_fidelity from each clip's recognized factors against the prompt's named ones, saturation from
    clip_saturation; any other metric is the row's one per-prompt value. prompts: a regime's prompts."""
    out = {}
    for prompt, row in per_prompt.items():
        if prompts is not None and prompt not in prompts:
            continue
        named = world.parse_caption(prompt)
        if metric in ("all_named_correct", "prompt_fidelity") and "clip_factors" in row:
            if not named:
                continue  # an empty prompt names nothing to get right
            right = [[clip[k] == v for k, v in named.items()] for clip in row["clip_factors"]]
            out[prompt] = [float(all(r)) if metric == "all_named_correct" else float(np.mean(r)) for r in right]
        elif metric == "saturation" and "clip_saturation" in row:
            out[prompt] = list(row["clip_saturation"])
        elif row.get(metric) is not None:
            out[prompt] = [row[metric]]
    return out
