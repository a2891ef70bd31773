"""The distill runs of the training-seed study (engine/evaluation/study.py), and how each one is run.

Per training seed s: a DMD2 student from the teacher, then post-training runs that all start from it (the
same number of steps each). Each variant runs on the first `SEED_COUNTS[name]` of the study's seeds (or
`name@N` in --variants): the headline trio needs more seeds to resolve its differences than the others.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..models.names import base_task
from ..models.students import LORA_FILE
from .i2v_frames import i2v_frames_of

DFD = ["--method", "dfd", "--data-forcing-prob"]
# Post-training variants: name -> distill options on top of --init <the seed's dmd2>.
VARIANTS = {
    "dmd2-continued": ["--method", "dmd2"],  # the fair control: without it a DFD gain may just be more training
    "dfd-p0.25": [*DFD, "0.25"],
    "dfd-p0.5": [*DFD, "0.5"],
    "dfd-p1": [*DFD, "1"],
    "dmd2-continued-backward": ["--method", "dmd2", "--student-input", "backward"],
    "dfd-p0.5-backward": [*DFD, "0.5", "--student-input", "backward"],
    "dmd2-continued-underspecified": ["--method", "dmd2", "--caption-regime", "underspecified"],
    "dfd-p0.5-underspecified": [*DFD, "0.5", "--caption-regime", "underspecified"],
    # beyond the paper (docs/method.md, "Variants")
    "dfd-tmin0.5": [*DFD, "0.5", "--dfd-t-min", "0.5"],
    "dfd-tmin0.8": [*DFD, "0.5", "--dfd-t-min", "0.8"],
    "dfd-p0.5-decay": [*DFD, "0.5", "--data-forcing-schedule", "decay"],
    "dfd-p0.5-rise": [*DFD, "0.5", "--data-forcing-schedule", "rise"],
    "dfd-p0.5-sample": [*DFD, "0.5", "--data-forcing-granularity", "sample"],
    "dfd-blend0.5": [*DFD, "0.5", "--data-forcing-blend"],
    "dfd-blend0.25": [*DFD, "0.25", "--data-forcing-blend"],
}
PAPER_VARIANTS = tuple(list(VARIANTS)[:8])  # the default plan: the paper's comparison and its regimes
SWEEP_VARIANTS = (
    "dmd2-continued",
    "dfd-p0.5",
    "dfd-tmin0.5",
    "dfd-tmin0.8",
    "dfd-p0.5-decay",
    "dfd-p0.5-rise",
    "dfd-p0.5-sample",
    "dfd-blend0.5",
    "dfd-blend0.25",
)
CONTROL = "dmd2-continued"
# Training seeds per run name (the first N of --seeds); the rest get DEFAULT_SEED_COUNT.
SEED_COUNTS = {"dmd2": 5, "dmd2-continued": 5, "dfd-p0.5": 5}
DEFAULT_SEED_COUNT = 3
RECORDED = ("summary.json", "metrics.jsonl", "made_by.json", "distill_config.json", "eval.json")  # re-derive a table


@dataclass
class Run:
    name: str  # dmd2 or a VARIANTS key
    seed: int
    out: Path
    command: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return (self.out / LORA_FILE).is_file() and (self.out / "made_by.json").is_file()


def parse_variants(variants: list[str] | None) -> dict[str, int]:
    """Variant name -> training seeds it runs on: `name` (SEED_COUNTS, else DEFAULT_SEED_COUNT) or `name@N`."""
    counts = {}
    for text in variants or PAPER_VARIANTS:
        name, _, n = text.strip().partition("@")
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        if n and not (n.isdigit() and int(n) >= 1):
            raise ValueError(f"bad seed count in {text!r}: write {name}@N with N a whole number of at least 1")
        counts[name] = int(n) if n else SEED_COUNTS.get(name, DEFAULT_SEED_COUNT)
    return counts


def plan(
    out: Path,
    seeds: list[int],
    base: str,
    dmd2_steps: int,
    post_steps: int,
    variants: list[str] | None = None,
    causal: bool = False,
) -> list[Run]:
    """Every distill run of the study, in an order where each run's --init exists before it starts. causal:
    the students are autoregressive (task ar, a text-to-video base)."""
    counts = parse_variants(variants)
    # a frame-replacement shapes base is "t2v" by its channels: its record (i2v_frames_of) says image-to-video
    i2v = base_task(base) == "i2v" or i2v_frames_of(base) is not None
    task = ["--task", "ar"] if causal else ["--task", "i2v"] if i2v else []
    if causal and i2v:
        raise ValueError(f"{base} is an image-to-video teacher: causal (ar) students need a text-to-video one")
    runs = []
    for i, seed in enumerate(seeds):
        names = [name for name, n in counts.items() if i < n]
        if not names:
            continue
        folder = Path(out) / f"seed{seed}"
        dmd2 = folder / "dmd2"
        common = ["--base", base, *task, "--data", "shapes", "--seed", str(seed)]
        runs.append(
            Run(
                "dmd2",
                seed,
                dmd2,
                ["distill", "--method", "dmd2", *common, "--steps", str(dmd2_steps), "--out", str(dmd2)],
            )
        )
        for name in names:
            runs.append(
                Run(
                    name,
                    seed,
                    folder / name,
                    [
                        "distill",
                        *VARIANTS[name],
                        "--init",
                        str(dmd2),
                        *common,
                        "--steps",
                        str(post_steps),
                        "--out",
                        str(folder / name),
                    ],
                )
            )
    return runs


def execute(run: Run, log) -> float:
    """Run one distill command (fresh folder), record its command and wall time; returns seconds."""
    if run.out.exists():
        shutil.rmtree(run.out)  # an unfinished run restarts from scratch, as its recorded time must be whole
    command = [sys.executable, "-m", "engine", *run.command]
    log(f"$ python -m engine {shlex.join(run.command)}")
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{run.name} (seed {run.seed}) failed: {result.stderr.strip().splitlines()[-1:]}")
    (run.out / "made_by.json").write_text(
        json.dumps(
            {
                "made_by": "python -m engine " + shlex.join(run.command),
                "wall_seconds": round(seconds, 1),
                "note": f"a run of `python -m engine study` (training seed {run.seed}); "
                "wall time on the machine it ran on",
            },
            indent=2,
        )
        + "\n"
    )
    return seconds


def keep_records(run: Run, records: Path) -> Path:
    """Copy the run's small files (RECORDED) to records/seed<s>/<name>: enough to re-derive the tables
    without its checkpoints or LoRA."""
    folder = Path(records) / f"seed{run.seed}" / run.name
    folder.mkdir(parents=True, exist_ok=True)
    for name in RECORDED:
        if (run.out / name).is_file():
            shutil.copyfile(run.out / name, folder / name)
    return folder
