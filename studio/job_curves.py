"""The Jobs tab's curves: the metric points a page keeps for a job (only newer ones are read on each tick),
each curve downsampled to MAX_PLOTTED points with its extremes kept, the count of student updates a real clip
was used on, and the names the plots' legends use."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import engine.jobs as jobs_api

# data_forcing_used is counted instead (real clips used); data_done/total: the data set's first pass, at step 0
NOT_PLOTTED = ("it_per_s", "eta_s", "data_forcing_used", "data_done", "data_total")
MAX_PLOTTED = 2000  # points per curve: a plot is no clearer with more, and each one costs every viewer


EMPTY = pd.DataFrame({"step": [], "value": [], "name": []})


def downsample(points: list[tuple[int, float]], limit: int = MAX_PLOTTED) -> list[tuple[int, float]]:
    """At most `limit` (+1) of a curve's (step, value) points, in step order: the steps are cut into limit/2
    equal ranges and each keeps its lowest and highest value (a spike stays visible), and the last point
    stays. Downsampling a downsampled curve with new points after it keeps the same guarantees."""
    if len(points) <= limit:
        return points
    first, last = points[0][0], points[-1][0]
    buckets = max(1, limit // 2)
    width = (last - first) / buckets or 1
    kept: list[tuple[int, float]] = []
    bucket: list[tuple[int, float]] = []
    current = 0
    for point in points[:-1]:
        index = min(buckets - 1, int((point[0] - first) / width))
        if index != current and bucket:
            kept.extend(_extremes(bucket))
            bucket = []
        current = index
        bucket.append(point)
    kept.extend(_extremes(bucket))
    kept.append(points[-1])
    return kept


def _extremes(bucket: list[tuple[int, float]]) -> list[tuple[int, float]]:
    if len(bucket) <= 2:
        return bucket
    low, high = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
    return sorted({low, high})


def curves(data_dir: Path, job, held: dict | None) -> dict:
    """The job's curves to plot, {"key", "after", "series": {name: [(step, value), ...]}}: what `held`
    already has (for this run of this job) plus the points stored since, each curve downsampled."""
    key = [job.id, job.started_at]  # a resumed job starts again and drops the points after its checkpoint
    if not isinstance(held, dict) or held.get("key") != key:
        held = {"key": key, "after": None, "series": {}, "real_clips": [0, 0], "newest": None}
    new = jobs_api.metrics(data_dir, job.id, after_id=held["after"])
    if not new:
        return held
    series = {name: list(points) for name, points in held["series"].items()}
    grown = set()
    real_clips = list(held.get("real_clips") or [0, 0])  # [updates a real clip pulled on, student updates]
    for point in new:
        if point.name == "data_forcing_used":
            real_clips = [real_clips[0] + (point.value > 0), real_clips[1] + 1]
        if point.name not in NOT_PLOTTED:
            series.setdefault(point.name, []).append((point.step, point.value))
            grown.add(point.name)
    for name in grown:
        points = series[name]
        if any(a[0] > b[0] for a, b in zip(points, points[1:])):
            points.sort(key=lambda p: p[0])
        series[name] = downsample(points)
    return {
        "key": key,
        "after": max(point.id for point in new),
        "series": series,
        "real_clips": real_clips,
        "newest": max(point.time for point in new),
    }  # when the run last reported a step


def curve_name(name: str) -> str:
    """How a plot's legend names a metric: the words the rest of the studio uses (the validity gap
    ||x_real - G||^2 is stored as real_gap, per student time as real_gap@tT), the stored name beside them."""
    if name == "real_gap":
        return "validity gap (real_gap)"
    if name.startswith("real_gap@t"):
        return f"validity gap at t={name[len('real_gap@t') :]}"
    return name


def frame(series: dict, names) -> pd.DataFrame:
    rows = [(step, value, curve_name(name)) for name in names for step, value in series.get(name, [])]
    return pd.DataFrame(rows, columns=["step", "value", "name"]) if rows else EMPTY
