"""Sampling a line-up through `sample` jobs instead of in the web process: the path for GPU-scale bases,
where the worker (one accelerator job at a time) does the work and the page polls until every job is done.
Compare and Diversity use it when "Run as sample jobs" is ticked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import engine.jobs as jobs_api
from engine import Rendered, clip_fps, read_mp4, student_t_list

from .lineup import Contender

FAILED = ("failed", "cancelled", "interrupted")
STREAM = ("first_chunk_seconds", "all_chunks_seconds")  # a causal student's, as the sample job measured them


@dataclass
class Pending:
    """Sample jobs queued for one request: job ids in line-up order, and what is needed to finish it."""

    job_ids: list[str]
    request: dict


def submit(
    data_dir,
    contenders: list[Contender],
    prompt: str,
    seeds: list[int],
    steps: int,
    guidance: float,
    image=None,
    num_frames: int | None = None,
    submitted_by: str | None = None,
) -> list[str]:
    """Queue one sample job per contender (same prompt, seeds, length `num_frames` (None: the model's own) and,
    for an image-to-video base, first frame `image`: a file the worker's process can read), each recorded as
    `submitted_by`'s (None: the owner's). Raises ValueError before queuing any if a setting is bad."""
    configs = []
    for contender in contenders:
        config = {
            "base": contender.base,
            "prompt": prompt,
            "seeds": list(seeds),
            "steps": int(steps),
            "guidance": float(guidance),
        }
        if image is not None:
            config["image"] = str(image)
        if num_frames:
            config["num_frames"] = int(num_frames)
        if contender.lora_dir is not None:
            config["lora"] = str(contender.lora_dir)
        configs.append(config)
    return [jobs_api.submit(data_dir, "sample", config, submitted_by=submitted_by).id for config in configs]


def _nfe(job) -> int:
    """Network evaluations per video, as the engine's samplers count them (for a job that did not record its
    own: a causal student's would be per chunk)."""
    config = job.config
    if config.get("lora"):
        return len(config.get("t_list") or student_t_list(config["lora"])) - 1
    return int(config["steps"]) * (1 if float(config["guidance"]) == 1.0 else 2)


def collect(data_dir, job_ids: list[str]) -> tuple[list[Rendered] | None, str]:
    """(the results in order, "") once every job succeeded; (None, "2 of 3 sample jobs done") before.
    Raises ValueError naming a job that failed, was cancelled or interrupted."""
    jobs = [jobs_api.get(data_dir, job_id) for job_id in job_ids]
    for job in jobs:
        if job.state in FAILED:
            raise ValueError(
                f"the sample job {job.id} is {job.state} ({job.error or 'no reason recorded'}); "
                "resume it in the Jobs tab or run again"
            )
    done = sum(job.state == "succeeded" for job in jobs)
    if done < len(jobs):
        running = next((j for j in jobs if j.state == "running"), None)
        where = f", {running.id} at step {running.step}/{running.total or '?'}" if running else ""
        return None, f"{done} of {len(jobs)} sample jobs done{where}; the worker runs one at a time."
    results = []
    for job in jobs:
        paths = [artifact.path for artifact in jobs_api.artifacts(data_dir, job.id, "video")]
        if not paths:
            raise ValueError(f"the sample job {job.id} finished without videos; see its log in the Jobs tab")
        clips = np.stack([read_mp4(path) for path in paths])
        seconds = (job.finished_at or 0.0) - (job.started_at or 0.0)
        recorded = {p.name: p.value for p in jobs_api.metrics(data_dir, job.id, ["nfe", *STREAM])}
        stream = {name: recorded[name] for name in STREAM if name in recorded} or None
        results.append(
            Rendered(
                clips=clips,
                nfe=int(recorded.get("nfe", _nfe(job))),
                seconds=max(0.0, seconds),
                fps=round(clip_fps(paths[0])),
                stream=stream,
            )
        )
    return results, ""


def queue(
    data_dir,
    plan,
    request,
    contenders: list[Contender],
    seeds: list[int],
    read_results: Callable,
    before: Callable[[int], None] | None = None,
    submitted_by: str | None = None,
):
    """A tab's job path: (its cached result, None) when the plan's folder already holds this request's
    results, else (None, the sample jobs queued for it, recorded as `submitted_by`'s). before: called with the
    number of jobs just before queuing them (studio/admission.py check_room: the visitor's cap, the public
    queue's cap, the free disk; it raises ValueError)."""
    if (plan.folder / "meta.json").is_file():
        return read_results(plan), None
    if before is not None:
        before(len(contenders))
    ids = submit(
        data_dir,
        contenders,
        plan.prompt,
        seeds,
        plan.steps,
        plan.guidance,
        plan.image,
        plan.num_frames,
        submitted_by=submitted_by,
    )
    return None, Pending(ids, {"request": list(request)})


def finish(data_dir, pending: Pending, replan: Callable, write_results: Callable, read_results: Callable):
    """(the tab's result, "") once every job is done, its outputs written as the in-process path writes
    them; (None, how far the jobs are) before. Raises ValueError for a failed job."""
    rendered, progress = collect(data_dir, pending.job_ids)
    if rendered is None:
        return None, progress
    plan = replan(*pending.request["request"])
    write_results(plan, rendered)
    return read_results(plan), ""
