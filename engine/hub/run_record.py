"""What a student's run folder records about the run, for its model card: the run's folder (a studio job's
student sits in jobs/<id>/lora), its last training previews with their prompts, the training figures of
distill_config.json and lora_config.json, whether real clips were used (metrics.jsonl), and a causal
student's layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..models.students import PREVIEWS_FILE

PREVIEW_NAME = re.compile(r"step(\d+)-prompt(\d+)-seed(\d+)\.mp4")  # engine/distill/previews.py names them so


def run_folder(lora_dir: str | Path) -> Path:
    """The folder of the run that made a student: the student's own folder (`distill --out`), or for a
    studio job's student (jobs/<id>/lora) the job folder above it, which holds the run's config and
    samples/."""
    lora_dir = Path(lora_dir)
    if (
        not (lora_dir / "samples").is_dir()
        and lora_dir.name == "lora"
        and (lora_dir.parent / "distill_config.json").is_file()
    ):
        return lora_dir.parent
    return lora_dir


def training_previews(lora_dir: str | Path) -> list[tuple[Path, str]]:
    """The run's preview videos of its last training step, with a caption each: "PROMPT (step N, seed S)"
    from the run's samples/previews.json, or "training preview I at step N (seed S)" for a run that
    recorded no prompts."""
    samples = run_folder(lora_dir) / "samples"
    found = [(m, p) for p in samples.glob("*.mp4") if (m := PREVIEW_NAME.fullmatch(p.name))]
    if not found:
        return []
    try:
        prompts = json.loads((samples / PREVIEWS_FILE).read_text())["prompts"]
    except (OSError, ValueError, KeyError, TypeError):
        prompts = []
    prompts = prompts if isinstance(prompts, list) else []
    last = max(int(m.group(1)) for m, _ in found)
    chosen = sorted((int(m.group(2)), int(m.group(3)), p) for m, p in found if int(m.group(1)) == last)
    return [
        (
            p,
            f"{prompts[i]} (step {last}, seed {seed})"
            if i < len(prompts) and isinstance(prompts[i], str)
            else f"training preview {i + 1} at step {last} (seed {seed})",
        )
        for i, seed, p in chosen
    ]


def training_record(lora_dir: str | Path) -> dict:
    """CardInfo fields a student folder records about its run (distill_config.json, lora_config.json):
    steps, student_update_freq, task, data_forcing_prob (DFD only). Missing files give fewer fields."""
    record = {}
    for path in (Path(lora_dir) / "lora_config.json", run_folder(lora_dir) / "distill_config.json"):  # the run's wins
        if path.is_file():
            try:
                record.update(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
    out = {key: record[key] for key in ("steps", "student_update_freq") if record.get(key) is not None}
    if isinstance(record.get("task"), str):
        out["task"] = record["task"]
    if isinstance(record.get("boundary_ratio"), (int, float)):  # a two-expert (Wan2.2-A14B) student
        out["boundary_ratio"] = float(record["boundary_ratio"])
    if record.get("method") == "dfd" and record.get("data_forcing_prob") is not None:
        out["data_forcing_prob"] = record["data_forcing_prob"]
    causal = causal_record(lora_dir)
    if causal is not None:
        out["causal"] = causal
    if record.get("method") == "dfd" and isinstance(record.get("init"), str) and record["init"]:
        init = Path(record["init"])  # only its name: a server's path says nothing to a reader
        out["started_from"] = init.parent.name if init.name == "lora" else init.name  # a job's: jobs/<id>/lora
    if record.get("method") == "dfd":
        used = real_clip_updates(run_folder(lora_dir) / "metrics.jsonl")
        if used is not None:
            out["real_clip_updates"] = used
    return out


def real_clip_updates(metrics_file: Path) -> tuple[int, int] | None:
    """(k, n): on how many of a run's n student updates a real clip was used (the trainer's data_forcing_used
    points, the last one per step: a resumed run writes its steps again). None when the run recorded none."""
    used: dict[int, float] = {}
    try:
        lines = metrics_file.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            point = json.loads(line)
            used[int(point["step"])] = float(point["data_forcing_used"])
        except (ValueError, KeyError, TypeError):
            continue
    return (sum(v > 0 for v in used.values()), len(used)) if used else None


CAUSAL_KEYS = ("chunk_frames", "trained_latent_frames", "window_frames")


def causal_record(lora_dir: str | Path) -> dict | None:
    """The layout of a causal student from its own lora_config.json (the LoRA's, not the run's: a run's
    distill_config.json has a chunk_frames for every task), or None for a bidirectional student."""
    try:
        info = json.loads((Path(lora_dir) / "lora_config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("causal") is not True:
        return None
    return {key: info[key] for key in CAUSAL_KEYS if isinstance(info.get(key), int)}
