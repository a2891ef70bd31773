"""What one Jobs-tab refresh of a long job costs: a synthetic job with `--steps` steps of `--terms` metric terms
(25k x 8 = 200k points, a long Wan run's worth), then the median time of

    every point: read all the job's points and make the plot frames (what each refresh did before),
    first:       the page's first refresh (every point read once, each curve downsampled),
    next:        a later refresh after one more step was reported (only the new points read).

    OMP_NUM_THREADS=1 python scripts/bench_jobs_refresh.py [--steps 25000] [--terms 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

import engine.jobs as jobs_api  # noqa: E402
import storage  # noqa: E402
from storage.models import MetricPointRow  # noqa: E402
from studio import jobs  # noqa: E402

TERMS = (
    "loss_student",
    "loss_fake",
    "real_gap",
    "data_forcing",
    "grad_norm_student",
    "grad_norm_fake",
    "it_per_s",
    "eta_s",
)


def synthetic_job(data_dir: Path, steps: int, terms: int) -> str:
    db = storage.open_database(data_dir)
    job = storage.jobs.create_job(db, "distill", {"steps": steps})
    storage.jobs.claim_next(db)
    names = TERMS[:terms]
    with db.write() as session:  # one transaction: 25k reports would take minutes and measure nothing here
        session.add_all(
            MetricPointRow(job_id=job.id, step=step, name=name, value=1.0 / step, time=float(step))
            for step in range(1, steps + 1)
            for name in names
        )
    storage.outputs.record_progress(db, job.id, steps, steps + 1000, {name: 0.5 for name in names})
    return job.id


def every_point(data_dir: Path, job_id: str) -> None:
    points = jobs_api.metrics(data_dir, job_id)
    frame = pd.DataFrame(
        [(p.step, p.value, p.name) for p in points if p.name not in jobs.NOT_PLOTTED], columns=["step", "value", "name"]
    )
    frame[frame.name.isin(jobs.LOSS_NAMES)], frame[~frame.name.isin(jobs.LOSS_NAMES)]


def timed(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=25_000)
    parser.add_argument("--terms", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, public = Path(tmp) / "studio", Path(tmp) / "public"
        job_id = synthetic_job(data_dir, args.steps, args.terms)
        points = len(jobs_api.metrics(data_dir, job_id))
        before = timed(lambda: every_point(data_dir, job_id), args.repeats)
        first = timed(lambda: jobs.detail(data_dir, public, job_id), args.repeats)
        held = jobs.detail(data_dir, public, job_id).held
        db, step = storage.open_database(data_dir), args.steps

        def next_refresh():
            nonlocal held, step
            step += 1
            storage.outputs.record_progress(db, job_id, step, args.steps + 1000, {n: 0.4 for n in TERMS[: args.terms]})
            start = time.perf_counter()
            d = jobs.detail(data_dir, public, job_id, held)
            held = d.held
            return time.perf_counter() - start, len(d.losses) + len(d.diagnostics)

        runs = [next_refresh() for _ in range(args.repeats)]
        nxt, plotted = statistics.median(t for t, _ in runs), runs[-1][1]
        storage.close_all()
    print(f"{points} metric points ({args.steps} steps x {args.terms} terms); median of {args.repeats}:")
    print(f"  every point, as each refresh read them before: {before * 1000:8.1f} ms")
    print(f"  first refresh (all read once, downsampled):     {first * 1000:8.1f} ms")
    print(f"  next refresh (only the new step's points):      {nxt * 1000:8.1f} ms  ({plotted} points plotted)")


if __name__ == "__main__":
    main()
